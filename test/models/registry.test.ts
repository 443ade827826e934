import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ModelLoadError } from '../../src/models/manifest';
import { Registry } from '../../src/models/registry';
import { silentLogger } from '../../src/logger';
import { captureLogger, shippedModelDir, testConfig } from './helpers';

/**
 * Startup checks of model folders: each broken copy of the shipped model must stop the load
 * with a message that names the file and what is wrong with it.
 */

const SOURCE = shippedModelDir();
const NAME = path.basename(SOURCE);
const roots: string[] = [];

/** A fresh MODELS_DIR holding a copy of the shipped model; returns the copy's folder. */
function copyModel(): { root: string; dir: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dmvae-registry-'));
  roots.push(root);
  const dir = path.join(root, NAME);
  fs.cpSync(SOURCE, dir, { recursive: true });
  return { root, dir };
}

function editManifest(dir: string, edit: (m: Record<string, any>) => void): void {
  const file = path.join(dir, 'manifest.json');
  const m = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(m);
  fs.writeFileSync(file, JSON.stringify(m));
}

async function loadError(root: string): Promise<string> {
  const registry = new Registry({ config: testConfig({ MODELS_DIR: root }), logger: silentLogger });
  try {
    await registry.load();
  } catch (err) {
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(registry.isReady()).toBe(false);
    return (err as Error).message;
  } finally {
    await registry.close();
  }
  throw new Error('the registry loaded a broken model folder');
}

const manifestOf = (dir: string) =>
  JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));

afterAll(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

describe('model folder checks at startup', () => {
  test('a flipped byte in a graph is named with the expected and the actual sha256', async () => {
    const { root, dir } = copyModel();
    const file = manifestOf(dir).graphs.encoder.file;
    const bytes = fs.readFileSync(path.join(dir, file));
    bytes[bytes.length >> 1] ^= 0xff;
    fs.writeFileSync(path.join(dir, file), bytes);
    const actual = createHash('sha256').update(bytes).digest('hex');
    const message = await loadError(root);
    expect(message).toContain(
      `${file} sha256 is ${actual}, manifest expects ${manifestOf(dir).files[file].sha256}`,
    );
    expect(message).toContain(dir);
  });

  test('a truncated file is reported by its size', async () => {
    const { root, dir } = copyModel();
    const file = manifestOf(dir).graphs.decoder.file;
    const full = path.join(dir, file);
    fs.truncateSync(full, 100);
    expect(await loadError(root)).toMatch(
      new RegExp(`${file} has 100 bytes, manifest expects \\d+`),
    );
  });

  test('a missing listed file is named', async () => {
    const { root, dir } = copyModel();
    const file = manifestOf(dir).graphs.generator.file;
    fs.rmSync(path.join(dir, file));
    expect(await loadError(root)).toContain(`listed file ${file} is missing`);
  });

  test('a manifest that is not JSON is reported as unreadable', async () => {
    const { root, dir } = copyModel();
    fs.writeFileSync(path.join(dir, 'manifest.json'), '{ "schema_version": 1,');
    expect(await loadError(root)).toMatch(/cannot read manifest.json/);
  });

  test('schema problems are listed field by field', async () => {
    const { root, dir } = copyModel();
    editManifest(dir, (m) => {
      m.schema_version = 2;
      delete m.latent.scale;
    });
    const message = await loadError(root);
    expect(message).toContain('invalid manifest.json');
    expect(message).toMatch(/schema_version: .*expected 1/);
    expect(message).toMatch(/latent\.scale: /);
  });

  test('fields that disagree with each other are refused (null class, colour vs channels)', async () => {
    const { root, dir } = copyModel();
    editManifest(dir, (m) => {
      m.null_class = 3;
      m.image.color = m.image.channels === 1 ? 'rgb' : 'grey';
    });
    const message = await loadError(root);
    expect(message).toMatch(/null_class: must equal the number of classes/);
    expect(message).toMatch(/image\.color: .* does not match channels/);
  });

  test('a graph file not covered by "files" cannot be verified and is refused', async () => {
    const { root, dir } = copyModel();
    editManifest(dir, (m) => {
      delete m.files[m.graphs.encoder.file];
    });
    expect(await loadError(root)).toMatch(/graphs\.encoder\.file: .* is not listed in "files"/);
  });

  test('the manifest name must be the folder name (the model id)', async () => {
    const { root, dir } = copyModel();
    editManifest(dir, (m) => {
      m.name = 'someone-else';
    });
    expect(await loadError(root)).toContain(
      'manifest name "someone-else" differs from the folder name',
    );
  });

  test('sampler defaults past a service limit are a startup error naming both', async () => {
    const { root } = copyModel();
    const steps = manifestOf(path.join(root, NAME)).sampler.steps as number;
    const registry = new Registry({
      config: testConfig({ MODELS_DIR: root, MAX_STEPS: String(steps - 1) }),
      logger: silentLogger,
    });
    await expect(registry.load()).rejects.toThrow(
      `manifest sampler defaults do not pass: steps = ${steps} is over the limit MAX_STEPS`,
    );
    await registry.close();
  });

  test('an empty MODELS_DIR is a startup error, not an empty service', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dmvae-empty-'));
    roots.push(root);
    expect(await loadError(root)).toContain('no model folder');
  });
});

describe('registry', () => {
  test('is not ready before load, answers not_ready, then serves the model after warm-up', async () => {
    const { logger, lines } = captureLogger('info');
    const registry = new Registry({ config: testConfig(), logger });
    try {
      expect(registry.isReady()).toBe(false);
      expect(() => registry.get(NAME)).toThrow(expect.objectContaining({ code: 'not_ready' }));
      await registry.load();
      expect(registry.isReady()).toBe(true);
      expect(registry.list().map((m) => m.name)).toContain(NAME);
      expect(() => registry.get('nope')).toThrow(
        expect.objectContaining({ code: 'model_not_found' }),
      );
      expect(lines.filter((l) => l.msg === 'ORT session ready').map((l) => l.graph)).toEqual(
        expect.arrayContaining(['encoder', 'decoder', 'generator']),
      );
      expect(
        lines.some((l) => l.msg === 'ORT worker ready' && typeof l.warmupMs === 'number'),
      ).toBe(true);
    } finally {
      await registry.close();
    }
  });
});
