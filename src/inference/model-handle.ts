import { ServiceError } from '../errors';
import { linkedAborter } from '../lifecycle';
import type { Logger } from '../logger';
import { firstOutside, LATENT_LIMIT, latentInterval } from '../models/latent-range';
import type { Manifest } from '../models/manifest';
import { latentNoise } from '../sampler/philox';
import { rowsPerEvaluation, sample } from '../sampler/sampler';
import type {
  ClassInfo,
  GenerateParams,
  GenerateProgress,
  GenerateResult,
  ImageSpec,
  ModelHandle,
  ProviderReport,
  Tensor,
} from '../types';
import type { Batcher } from './batcher';
import { checkGenerateParams, type GenerateLimits } from './generate-params';
import type { RowBudget } from './row-budget';
import { checkBatch, checkFinite, isFloat32Array } from './validate';

/**
 * One loaded model over ONNX Runtime: checks what clients hand it, sends the tensors through
 * the per-graph batchers (which run them in worker threads), and drives the sampler.
 */

export interface HandleParts {
  manifest: Manifest;
  providers: ProviderReport[];
  batchers: { encoder: Batcher; decoder: Batcher; generator: Batcher; classifier?: Batcher };
  /**
   * Generation's own admission budget (GENERATE_QUEUE_MAX_IMAGES), apart from the one encode
   * and decode draw on, so long generations can never make those answer queue_full.
   */
  generationBudget: RowBudget;
  limits: GenerateLimits;
  /** GENERATE_TIMEOUT_MS: wall time one generation may take, queueing included; 0 = none. */
  generateTimeoutMs: number;
  logger: Logger;
}

export class OnnxModelHandle implements ModelHandle {
  readonly name: string;
  readonly manifest: Manifest;
  readonly imageSpec: ImageSpec;
  readonly latentShape: [number, number, number];
  readonly classes: ClassInfo[];
  readonly providers: ProviderReport[];
  private readonly imageShape: number[];
  private readonly latentSize: number;

  constructor(private readonly parts: HandleParts) {
    const m = parts.manifest;
    this.name = m.name;
    this.manifest = m;
    this.imageSpec = { height: m.image.height, width: m.image.width, channels: m.image.channels };
    this.latentShape = [...m.latent.shape];
    this.classes = m.classes.map((c) => ({ id: c.id, name: c.name }));
    this.providers = parts.providers;
    this.imageShape = [m.image.channels, m.image.height, m.image.width];
    this.latentSize = this.latentShape.reduce((a, b) => a * b, 1);
  }

  async encode(images: Tensor, signal?: AbortSignal): Promise<Tensor> {
    checkBatch(images, this.imageShape, 'image batch', 'invalid_request');
    checkFinite(images, 'image batch', 'invalid_request');
    const out = await this.parts.batchers.encoder.submit(
      { image: { type: 'float32', data: images.data, dims: images.shape } },
      { signal },
    );
    return this.output(out.latent, 'encoder', 'latent', this.latentShape);
  }

  async decode(latents: Tensor, signal?: AbortSignal): Promise<Tensor> {
    const undecodable = (row: number) =>
      new ServiceError(
        'invalid_latent',
        `latent ${row} decodes to non-finite pixel values: this model cannot decode it`,
        { index: row },
      );
    return this.decodeRaw(latents, { signal }, undecodable);
  }

  /** Classifier logits [N, num_classes]; only when the registry loaded the classifier. */
  async classify(images: Tensor, signal?: AbortSignal): Promise<Tensor> {
    const classifier = this.parts.batchers.classifier;
    if (!classifier) throw new Error(`classifier of ${this.name} was not loaded (withClassifier)`);
    checkBatch(images, this.imageShape, 'image batch', 'invalid_request');
    const out = await classifier.submit(
      { image: { type: 'float32', data: images.data, dims: images.shape } },
      { signal },
    );
    return this.output(out.logits, 'classifier', 'logits', [this.classes.length]);
  }

  async generate(
    params: GenerateParams,
    onProgress?: (p: GenerateProgress) => void,
    signal?: AbortSignal,
  ): Promise<GenerateResult> {
    // Transports have checked already; this guards direct callers with the same messages.
    checkGenerateParams(params, this.classes, this.parts.limits);
    const { count } = params;
    // The whole generation counts against its budget from start to end, so it cannot be
    // refused half-way; its own generator and decoder submissions are then "reserved".
    const rows = rowsPerEvaluation(count, params.cfgScale);
    this.parts.generationBudget.acquire(rows);
    const started = performance.now();
    const limited = this.withTimeLimit(signal, params);
    try {
      const normalised = await sample({
        noise: latentNoise(params.seed, count, this.latentSize),
        count,
        classId: params.classId,
        nullClass: this.manifest.null_class,
        method: params.method,
        steps: params.steps,
        cfgScale: params.cfgScale,
        cfgInterval: params.cfgInterval,
        shift: params.shift,
        onProgress,
        signal: limited.signal,
        velocity: async (x, t, y) => {
          const v = await this.predictVelocity(
            { data: x, shape: [t.length, ...this.latentShape] },
            t,
            y,
            {
              signal: limited.signal,
              reserved: true,
            },
          );
          return v.data;
        },
      });
      // The sampled latents must lie where client latents may (models/latent-range): past that,
      // these parameters (a large cfgScale, few steps) or the model made the ODE blow up.
      const diverged = (what: string) =>
        new ServiceError(
          'generation_diverged',
          `Sampling diverged: ${what} (cfgScale ${params.cfgScale}, steps ${params.steps}, ` +
            `sampler ${params.method}, shift ${params.shift}); try a lower cfgScale or more steps`,
        );
      const at = firstOutside(normalised, latentInterval(this.manifest.latent, 'normalized'));
      if (at >= 0) {
        throw diverged(`sampled latent value ${normalised[at]} is beyond +-${LATENT_LIMIT}`);
      }
      const latents = this.denormalizeLatents({
        data: normalised,
        shape: [count, ...this.latentShape],
      });
      const images = await this.decodeRaw(
        latents,
        { signal: limited.signal, reserved: true },
        (row) => diverged(`sample ${row} decodes to non-finite pixel values`),
      );
      const ms = Math.round(performance.now() - started);
      this.parts.logger.debug({ model: this.name, ...params, ms }, 'generated');
      return { latents, images };
    } finally {
      limited.dispose();
      this.parts.generationBudget.release(rows);
    }
  }

  /**
   * The caller's signal, also aborted with generation_timeout once GENERATE_TIMEOUT_MS has
   * passed: the sampler stops at its next evaluation, so a long request cannot hold its rows
   * of the generation budget for ever. `dispose` must run when the generation ends.
   */
  private withTimeLimit(signal: AbortSignal | undefined, params: GenerateParams) {
    const { controller, release } = linkedAborter(signal);
    const ms = this.parts.generateTimeoutMs;
    const timer =
      ms > 0
        ? setTimeout(() => {
            const what = `${params.count} images, ${params.steps} ${params.method} steps`;
            controller.abort(
              new ServiceError(
                'generation_timeout',
                `Generation (${what}) ran past GENERATE_TIMEOUT_MS = ${ms} ms, waiting for ` +
                  'the queue included; ask for fewer images or steps, or retry when less busy',
                { limit: ms, setting: 'GENERATE_TIMEOUT_MS' },
              ),
            );
          }, ms)
        : undefined;
    return {
      signal: controller.signal,
      dispose: () => {
        clearTimeout(timer);
        release();
      },
    };
  }

  /**
   * One generator evaluation: normalised x [N, Cz, h, w], t [N] in [0, 1], labels y [N] in
   * 0..null_class (the null class is allowed here: the sampler and tests use it for CFG).
   */
  async predictVelocity(
    x: Tensor,
    t: Float32Array,
    y: BigInt64Array,
    opts: { signal?: AbortSignal; reserved?: boolean } = {},
  ): Promise<Tensor> {
    const n = checkBatch(x, this.latentShape, 'generator input x', 'invalid_latent');
    if (t.length !== n || y.length !== n) {
      throw new ServiceError(
        'invalid_request',
        `t and y need ${n} values, got ${t.length} and ${y.length}`,
      );
    }
    const out = await this.parts.batchers.generator.submit(
      {
        x: { type: 'float32', data: x.data, dims: x.shape },
        t: { type: 'float32', data: t, dims: [n] },
        y: { type: 'int64', data: y, dims: [n] },
      },
      opts,
    );
    return this.output(out.v, 'generator', 'v', this.latentShape);
  }

  /** Batcher counters per graph (runs, rows run, rows queued), for benchmarks and tests. */
  batchStats() {
    const { encoder, decoder, generator } = this.parts.batchers;
    return { encoder: encoder.stats(), decoder: decoder.stats(), generator: generator.stats() };
  }

  /** z_norm = (z - mean) * scale, elementwise in float32. */
  normalizeLatents(raw: Tensor): Tensor {
    checkBatch(raw, this.latentShape, 'latent batch', 'invalid_latent');
    const [mean, scale] = this.latentStats();
    const data = new Float32Array(raw.data.length);
    for (let i = 0; i < data.length; i++) data[i] = Math.fround(raw.data[i] - mean) * scale;
    return { data, shape: [...raw.shape] };
  }

  /** z = z_norm / scale + mean, elementwise in float32. */
  denormalizeLatents(normalized: Tensor): Tensor {
    checkBatch(normalized, this.latentShape, 'latent batch', 'invalid_latent');
    const [mean, scale] = this.latentStats();
    const data = new Float32Array(normalized.data.length);
    for (let i = 0; i < data.length; i++) data[i] = Math.fround(normalized.data[i] / scale) + mean;
    return { data, shape: [...normalized.shape] };
  }

  /** Mean and scale as float32, as torch applies Python scalars to float32 tensors. */
  private latentStats(): [number, number] {
    return [Math.fround(this.manifest.latent.mean), Math.fround(this.manifest.latent.scale)];
  }

  /**
   * Decoder run plus the clamp to [-1, 1]. A non-finite output pixel (NaN passes a clamp) is
   * reported as `undecodable(row)`, whose code says whose input it was, never as a 500.
   */
  private async decodeRaw(
    latents: Tensor,
    opts: { signal?: AbortSignal; reserved?: boolean },
    undecodable: (row: number) => ServiceError,
  ) {
    checkBatch(latents, this.latentShape, 'latent batch', 'invalid_latent');
    checkFinite(latents, 'latent batch', 'invalid_latent');
    const out = await this.parts.batchers.decoder.submit(
      { latent: { type: 'float32', data: latents.data, dims: latents.shape } },
      opts,
    );
    const images = this.output(out.image, 'decoder', 'image', this.imageShape);
    const data = images.data;
    const rowSize = data.length / images.shape[0];
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) throw undecodable(Math.floor(i / rowSize));
      data[i] = data[i] < -1 ? -1 : data[i] > 1 ? 1 : data[i];
    }
    return images;
  }

  /** A graph output as a Tensor, after checking it has the shape the manifest promises. */
  private output(
    t: { data: unknown; dims: number[] } | undefined,
    graph: string,
    name: string,
    row: number[],
  ): Tensor {
    const dims = t?.dims ?? [];
    const ok =
      isFloat32Array(t?.data) &&
      dims.length === row.length + 1 &&
      row.every((d, i) => dims[i + 1] === d);
    if (!ok) {
      throw new ServiceError(
        'inference_failed',
        `${graph} returned ${name} of shape [${dims.join(', ')}], expected [N, ${row.join(', ')}]`,
      );
    }
    return { data: t.data as Float32Array, shape: dims };
  }
}
