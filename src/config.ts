import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

/**
 * Service configuration: read once at startup from the environment and CLI flags (flags win),
 * validated as a whole so one message lists every bad value, then frozen.
 *
 * Every setting has an env name (PORT) and a flag (--port 8080 or --port=8080).
 */

/** An execution provider as requested, e.g. "cuda:0" -> { name: 'cuda', deviceId: 0 }. */
export interface ProviderRequest {
  name: string;
  deviceId?: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

const KNOWN_PROVIDERS = ['cpu', 'cuda', 'tensorrt', 'webgpu', 'dml', 'coreml'];
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'must be an integer')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be >= ${min}`).max(max, `must be <= ${max}`));

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .refine((s) => ['true', 'false', '1', '0', 'yes', 'no'].includes(s), 'must be true or false')
  .transform((s) => ['true', '1', 'yes'].includes(s));

const providers = z
  .string()
  .trim()
  .transform((s, ctx): ProviderRequest[] => {
    const out: ProviderRequest[] = [];
    for (const part of s.split(',').map((p) => p.trim())) {
      const m = /^([a-z]+)(?::(\d+))?$/.exec(part);
      if (!m || !KNOWN_PROVIDERS.includes(m[1])) {
        ctx.addIssue({
          code: 'custom',
          message: `"${part}" is not a provider (one of ${KNOWN_PROVIDERS.join(', ')}, e.g. cuda:0)`,
        });
        return z.NEVER;
      }
      out.push(m[2] === undefined ? { name: m[1] } : { name: m[1], deviceId: Number(m[2]) });
    }
    return out;
  });

/** Env name -> [schema, default]. Defaults are strings so they pass the same parsing. */
const SETTINGS = {
  HOST: [z.string().trim().min(1), '0.0.0.0'],
  PORT: [int(0, 65535), '8080'],
  GRPC_PORT: [int(0, 65535), '50051'],
  MODELS_DIR: [
    z
      .string()
      .trim()
      .min(1)
      .transform((p) => path.resolve(p)),
    'models',
  ],
  EXECUTION_PROVIDERS: [providers, 'cpu'],
  PROVIDER_FALLBACK: [bool, 'true'],
  ORT_WORKERS: [int(1, 64), '1'],
  // 0 = one share of the machine's cores per worker (set below, once ORT_WORKERS is known)
  ORT_INTRA_OP_THREADS: [int(0, 256), '0'],
  BATCH_MAX_IMAGES: [int(1, 65536), '32'],
  BATCH_MAX_WAIT_MS: [int(0, 10_000), '5'],
  QUEUE_MAX_IMAGES: [int(1, 1_000_000), '1024'],
  // Two CFG generations of MAX_GENERATE_COUNT at its default (64 images, 128 rows each)
  GENERATE_QUEUE_MAX_IMAGES: [int(1, 1_000_000), '256'],
  MAX_BODY_BYTES: [int(1024), String(16 * 1024 * 1024)],
  // Request bodies held in memory at once, all requests together (16 bodies at the default)
  BODY_QUEUE_MAX_BYTES: [int(1024), String(256 * 1024 * 1024)],
  MAX_IMAGE_PIXELS: [int(1), String(25_000_000)],
  MAX_IMAGES_PER_REQUEST: [int(1, 100_000), '64'],
  MAX_GENERATE_COUNT: [int(1, 100_000), '64'],
  MAX_STEPS: [int(1, 10_000), '250'],
  REQUEST_TIMEOUT_MS: [int(0), '120000'],
  // Wall time one generation may run, queueing included (0 = no limit)
  GENERATE_TIMEOUT_MS: [int(0), '300000'],
  SHUTDOWN_TIMEOUT_MS: [int(0), '10000'],
  LOG_LEVEL: [z.enum(LOG_LEVELS), 'info'],
} as const;

type SettingName = keyof typeof SETTINGS;
type Parsed = { [K in SettingName]: z.output<(typeof SETTINGS)[K][0]> };

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly grpcPort: number;
  /** Absolute path. */
  readonly modelsDir: string;
  readonly executionProviders: readonly ProviderRequest[];
  /** true: an unavailable provider is logged at warn and the next one (or cpu) is used. */
  readonly providerFallback: boolean;
  readonly ortWorkers: number;
  readonly ortIntraOpThreads: number;
  /** Rows (images or latents, not requests) per ONNX run. */
  readonly batchMaxImages: number;
  readonly batchMaxWaitMs: number;
  /** Encode and decode rows queued or running across all models before queue_full. */
  readonly queueMaxImages: number;
  /**
   * Generator rows held by generations in progress (count, doubled by CFG) before queue_full;
   * a budget of its own, so generations never crowd encode and decode out.
   */
  readonly generateQueueMaxImages: number;
  readonly maxBodyBytes: number;
  readonly bodyQueueMaxBytes: number;
  readonly maxImagePixels: number;
  readonly maxImagesPerRequest: number;
  readonly maxGenerateCount: number;
  readonly maxSteps: number;
  readonly requestTimeoutMs: number;
  readonly generateTimeoutMs: number;
  readonly shutdownTimeoutMs: number;
  readonly logLevel: (typeof LOG_LEVELS)[number];
}

const flagOf = (name: string) => '--' + name.toLowerCase().replace(/_/g, '-');
const FLAGS = new Map(Object.keys(SETTINGS).map((k) => [flagOf(k), k as SettingName]));

/** Flags as env-style names: ["--port", "9000", "--log-level=debug"] -> { PORT: "9000", ... }. */
function parseArgv(argv: readonly string[], problems: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const name = FLAGS.get(flag);
    if (!name) {
      problems.push(`unknown flag "${arg}" (known: ${[...FLAGS.keys()].join(' ')})`);
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) problems.push(`flag ${flag} needs a value`);
    else out[name] = value;
  }
  return out;
}

/**
 * Reads, validates and freezes the configuration; throws ConfigError listing every problem.
 * @example loadConfig({ PORT: '0', LOG_LEVEL: 'silent' }, ['--ort-workers', '2'])
 */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  argv: readonly string[] = process.argv.slice(2),
): Config {
  const problems: string[] = [];
  const flags = parseArgv(argv, problems);
  const parsed: Partial<Parsed> = {};
  for (const [name, [schema, fallback]] of Object.entries(SETTINGS)) {
    const fromFlag = flags[name] !== undefined;
    // An empty variable counts as unset: deploy tools often template "PORT=" when unused.
    const raw = fromFlag ? flags[name] : env[name] || fallback;
    const result = (schema as z.ZodType).safeParse(raw);
    if (result.success) (parsed as Record<string, unknown>)[name] = result.data;
    else {
      const why = result.error.issues.map((i) => i.message).join('; ');
      const where = fromFlag ? `flag ${flagOf(name)}` : name;
      problems.push(`${where}=${JSON.stringify(raw)}: ${why}`);
    }
  }
  if (problems.length === 0) crossCheck(parsed as Parsed, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(toConfig(parsed as Parsed));
}

function crossCheck(p: Parsed, problems: string[]): void {
  // A request its queue can never hold would be refused as "busy" forever; say so at boot.
  if (p.QUEUE_MAX_IMAGES < p.MAX_IMAGES_PER_REQUEST) {
    problems.push(
      `QUEUE_MAX_IMAGES=${p.QUEUE_MAX_IMAGES} must be >= MAX_IMAGES_PER_REQUEST = ` +
        `${p.MAX_IMAGES_PER_REQUEST}`,
    );
  }
  if (p.BODY_QUEUE_MAX_BYTES < p.MAX_BODY_BYTES) {
    problems.push(
      `BODY_QUEUE_MAX_BYTES=${p.BODY_QUEUE_MAX_BYTES} must be >= MAX_BODY_BYTES = ` +
        `${p.MAX_BODY_BYTES}`,
    );
  }
  if (p.GENERATE_QUEUE_MAX_IMAGES < 2 * p.MAX_GENERATE_COUNT) {
    problems.push(
      `GENERATE_QUEUE_MAX_IMAGES=${p.GENERATE_QUEUE_MAX_IMAGES} must be >= 2 * ` +
        `MAX_GENERATE_COUNT = ${2 * p.MAX_GENERATE_COUNT} (CFG doubles generation rows)`,
    );
  }
}

function toConfig(p: Parsed): Config {
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  return {
    host: p.HOST,
    port: p.PORT,
    grpcPort: p.GRPC_PORT,
    modelsDir: p.MODELS_DIR,
    executionProviders: Object.freeze(p.EXECUTION_PROVIDERS.map((r) => Object.freeze(r))),
    providerFallback: p.PROVIDER_FALLBACK,
    ortWorkers: p.ORT_WORKERS,
    ortIntraOpThreads: p.ORT_INTRA_OP_THREADS || Math.max(1, Math.floor(cores / p.ORT_WORKERS)),
    batchMaxImages: p.BATCH_MAX_IMAGES,
    batchMaxWaitMs: p.BATCH_MAX_WAIT_MS,
    queueMaxImages: p.QUEUE_MAX_IMAGES,
    generateQueueMaxImages: p.GENERATE_QUEUE_MAX_IMAGES,
    maxBodyBytes: p.MAX_BODY_BYTES,
    bodyQueueMaxBytes: p.BODY_QUEUE_MAX_BYTES,
    maxImagePixels: p.MAX_IMAGE_PIXELS,
    maxImagesPerRequest: p.MAX_IMAGES_PER_REQUEST,
    maxGenerateCount: p.MAX_GENERATE_COUNT,
    maxSteps: p.MAX_STEPS,
    requestTimeoutMs: p.REQUEST_TIMEOUT_MS,
    generateTimeoutMs: p.GENERATE_TIMEOUT_MS,
    shutdownTimeoutMs: p.SHUTDOWN_TIMEOUT_MS,
    logLevel: p.LOG_LEVEL,
  };
}
