import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

/**
 * manifest.json, schema_version 1, exactly as docs/model-format.md describes it, plus the
 * checks that tie its parts together (class ids, null class, listed files).
 */

const finite = z.number().refine(Number.isFinite, 'must be finite');
const positiveInt = z.number().int().positive();
const fileName = z
  .string()
  .min(1)
  .refine(
    (f) => !path.isAbsolute(f) && !f.split(/[\\/]/).includes('..'),
    'must stay in the folder',
  );

const GRAPH_NAMES = ['encoder', 'decoder', 'generator', 'classifier'] as const;
export type GraphName = (typeof GRAPH_NAMES)[number];

export const ManifestSchema = z
  .object({
    schema_version: z.literal(1),
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be a plain folder name'),
    description: z.string().default(''),
    created: z.string().optional(),
    image: z.object({
      height: positiveInt,
      width: positiveInt,
      channels: z.union([z.literal(1), z.literal(3)]),
      color: z.enum(['grey', 'rgb']),
      value_range: z.tuple([z.literal(-1), z.literal(1)]),
      layout: z.literal('NCHW'),
    }),
    latent: z.object({
      shape: z.tuple([positiveInt, positiveInt, positiveInt]),
      layout: z.literal('NCHW'),
      dtype: z.literal('float32'),
      mean: finite,
      scale: finite.refine((s) => s !== 0, 'must not be 0'),
    }),
    classes: z.array(z.object({ id: z.number().int().min(0), name: z.string().min(1) })).min(1),
    null_class: z.number().int(),
    sampler: z.object({
      method: z.enum(['euler', 'heun']),
      steps: positiveInt,
      cfg_scale: finite,
      cfg_interval: z.tuple([finite, finite]),
      shift: finite.refine((s) => s > 0, 'must be > 0'),
    }),
    noise: z.object({ generator: z.literal('philox4x32-10-box-muller'), version: z.literal(1) }),
    graphs: z.object({
      encoder: z.object({ file: fileName }),
      decoder: z.object({ file: fileName }),
      generator: z.object({ file: fileName }),
      classifier: z.object({ file: fileName }).optional(),
    }),
    files: z.record(
      fileName,
      z.object({
        sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits'),
        bytes: z.number().int().min(0),
      }),
    ),
    golden: fileName.optional(),
    training: z.record(z.string(), z.unknown()).optional(),
    metrics: z.record(z.string(), z.unknown()).optional(),
  })
  .superRefine((m, ctx) => {
    const issue = (p: (string | number)[], message: string) =>
      ctx.addIssue({ code: 'custom', path: p, message });
    if ((m.image.channels === 1) !== (m.image.color === 'grey')) {
      issue(['image', 'color'], `"${m.image.color}" does not match channels ${m.image.channels}`);
    }
    m.classes.forEach((c, i) => {
      if (c.id !== i)
        issue(['classes', i, 'id'], `ids must be 0..${m.classes.length - 1} in order`);
    });
    if (m.null_class !== m.classes.length) {
      issue(['null_class'], `must equal the number of classes (${m.classes.length})`);
    }
    const [lo, hi] = m.sampler.cfg_interval;
    if (!(0 <= lo && lo <= hi && hi <= 1)) {
      issue(['sampler', 'cfg_interval'], 'must satisfy 0 <= lo <= hi <= 1');
    }
    for (const [graph, entry] of Object.entries(m.graphs)) {
      if (entry && !(entry.file in m.files)) {
        issue(['graphs', graph, 'file'], `"${entry.file}" is not listed in "files"`);
      }
    }
  });

export type Manifest = z.output<typeof ManifestSchema>;

/** A model folder whose manifest parsed and whose files all have the listed size and hash. */
export interface ModelFolder {
  dir: string;
  manifest: Manifest;
  /** Absolute paths of the graphs the manifest names. */
  graphPaths: Partial<Record<GraphName, string>>;
  /** Files present in the folder but not listed in the manifest (logged, not fatal). */
  unlisted: string[];
}

/** Startup failure of one model folder; the message names the folder and the file. */
export class ModelLoadError extends Error {
  constructor(
    readonly dir: string,
    detail: string,
  ) {
    super(`model folder ${dir}: ${detail}`);
    this.name = 'ModelLoadError';
  }
}

/** Parses `<dir>/manifest.json` and checks every listed file's size and sha256. */
export async function loadModelFolder(dir: string): Promise<ModelFolder> {
  const manifest = await readManifest(dir);
  const folderName = path.basename(dir);
  if (manifest.name !== folderName) {
    throw new ModelLoadError(dir, `manifest name "${manifest.name}" differs from the folder name`);
  }
  for (const [file, expected] of Object.entries(manifest.files)) {
    await verifyFile(dir, file, expected);
  }
  const graphPaths: ModelFolder['graphPaths'] = {};
  for (const graph of GRAPH_NAMES) {
    const entry = manifest.graphs[graph];
    if (entry) graphPaths[graph] = path.join(dir, entry.file);
  }
  const present = await listFiles(dir);
  const unlisted = present.filter((f) => f !== 'manifest.json' && !(f in manifest.files));
  return { dir, manifest, graphPaths, unlisted };
}

async function readManifest(dir: string): Promise<Manifest> {
  const file = path.join(dir, 'manifest.json');
  let json: unknown;
  try {
    json = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    throw new ModelLoadError(dir, `cannot read manifest.json: ${(err as Error).message}`);
  }
  const result = ManifestSchema.safeParse(json);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ModelLoadError(dir, `invalid manifest.json:\n    ${lines.join('\n    ')}`);
  }
  return result.data;
}

async function verifyFile(dir: string, file: string, expected: { sha256: string; bytes: number }) {
  const full = path.join(dir, file);
  const stat = await fs.stat(full).catch(() => null);
  if (!stat?.isFile()) throw new ModelLoadError(dir, `listed file ${file} is missing`);
  if (stat.size !== expected.bytes) {
    throw new ModelLoadError(
      dir,
      `${file} has ${stat.size} bytes, manifest expects ${expected.bytes} (truncated or replaced?)`,
    );
  }
  const actual = await sha256File(full);
  if (actual !== expected.sha256) {
    throw new ModelLoadError(
      dir,
      `${file} sha256 is ${actual}, manifest expects ${expected.sha256}`,
    );
  }
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** Relative paths of every regular file under dir, with '/' separators. */
async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else if (entry.isFile()) out.push(rel);
  }
  return out;
}
