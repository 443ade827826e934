import { loadConfig, type Config } from '../../src/config';
import { abortError, ServiceError } from '../../src/errors';
import { createLogger } from '../../src/logger';
import type {
  GenerateParams,
  GenerateProgress,
  GenerateResult,
  ModelHandle,
  ModelRegistry,
  Tensor,
} from '../../src/types';
import type { Logger } from 'pino';
import { Writable } from 'node:stream';

/**
 * A small stand-in for a loaded model, for transport tests that must not depend on ONNX: a
 * 28x28 grey "encoder" that average-pools 4x4 blocks into 4 channels, a "decoder" that
 * upsamples channel 0 back, and a "sampler" whose output is a pure function of the seed.
 */
export const CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
].map((name, id) => ({ id, name }));

export interface FakeCalls {
  encode: Tensor[];
  decode: Tensor[];
  generate: GenerateParams[];
  lastSignal?: AbortSignal;
}

export function fakeModel(
  name = 'fake',
  opts: { failGenerateAt?: number; slowMs?: number; busy?: boolean } = {},
) {
  const calls: FakeCalls = { encode: [], decode: [], generate: [] };
  const manifest = {
    name,
    description: 'fake model for transport tests',
    latent: { shape: [4, 7, 7], mean: 0.5, scale: 2 },
    sampler: { method: 'heun', steps: 4, cfg_scale: 3, cfg_interval: [0, 1], shift: 2.5 },
  };
  const wait = (ms: number, signal?: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, ms);
      signal?.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(abortError(signal, 'Fake work'));
      });
    });

  const handle: ModelHandle = {
    name,
    manifest: manifest as unknown as ModelHandle['manifest'],
    imageSpec: { height: 28, width: 28, channels: 1 },
    latentShape: [4, 7, 7],
    classes: CLASSES,
    providers: [{ graph: 'encoder', requested: ['cpu'], actual: 'cpu' }],
    async encode(images, signal) {
      calls.encode.push(images);
      calls.lastSignal = signal;
      if (opts.slowMs) await wait(opts.slowMs, signal);
      const n = images.shape[0];
      const out = new Float32Array(n * 4 * 49);
      for (let i = 0; i < n; i++)
        for (let y = 0; y < 7; y++)
          for (let x = 0; x < 7; x++) {
            let sum = 0;
            for (let dy = 0; dy < 4; dy++)
              for (let dx = 0; dx < 4; dx++)
                sum += images.data[i * 784 + (4 * y + dy) * 28 + 4 * x + dx];
            for (let c = 0; c < 4; c++) out[i * 196 + c * 49 + y * 7 + x] = (sum / 16) * (c + 1);
          }
      return { data: out, shape: [n, 4, 7, 7] };
    },
    async decode(latents, signal) {
      calls.decode.push(latents);
      calls.lastSignal = signal;
      return upsample(latents);
    },
    async generate(params, onProgress, signal): Promise<GenerateResult> {
      calls.generate.push(params);
      calls.lastSignal = signal;
      if (opts.busy) throw new ServiceError('queue_full', 'generation queue full (fake)');
      const total = params.steps;
      for (let step = 1; step <= total; step++) {
        if (opts.slowMs) await wait(opts.slowMs, signal);
        if (step === opts.failGenerateAt) throw new Error('boom: fake failure with secrets');
        onProgress?.({ step, totalSteps: total, t: step / total } satisfies GenerateProgress);
      }
      const n = params.count;
      const latents = new Float32Array(n * 196);
      for (let i = 0; i < latents.length; i++) {
        latents[i] = Math.sin(params.seed * 0.001 + i * 0.37 + params.classId) * 0.9;
      }
      const raw = { data: latents, shape: [n, 4, 7, 7] };
      return { latents: raw, images: upsample(raw) };
    },
    normalizeLatents: (t) => ({ data: t.data.map((v) => (v - 0.5) * 2), shape: t.shape }),
    denormalizeLatents: (t) => ({ data: t.data.map((v) => v / 2 + 0.5), shape: t.shape }),
  };
  return { handle, calls };
}

function upsample(latents: Tensor): Tensor {
  const n = latents.shape[0];
  const out = new Float32Array(n * 784);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < 28; y++)
      for (let x = 0; x < 28; x++) {
        out[i * 784 + y * 28 + x] = Math.max(
          -1,
          Math.min(1, latents.data[i * 196 + (y >> 2) * 7 + (x >> 2)]),
        );
      }
  return { data: out, shape: [n, 1, 28, 28] };
}

export function fakeRegistry(handles: ModelHandle[], ready = { value: true }): ModelRegistry {
  return {
    list: () => (ready.value ? handles : []),
    get(name) {
      if (!ready.value) throw new ServiceError('not_ready', 'Models are still loading');
      const h = handles.find((m) => m.name === name);
      if (!h) {
        throw new ServiceError('model_not_found', `No model "${name}"`, {
          available: handles.map((m) => m.name),
        });
      }
      return h;
    },
    isReady: () => ready.value,
    close: async () => undefined,
  };
}

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ LOG_LEVEL: 'silent', PORT: '0', GRPC_PORT: '0', ...env }, []);
}

/** A logger whose JSON lines land in `lines`, so tests can read the access log. */
export function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), lines };
}
