/**
 * The seams between the three parts of the service:
 *   intake/     bytes from clients -> validated tensors (images, latents, labels)
 *   inference/  tensors -> ONNX Runtime (worker threads, batching) and the sampler
 *   http/ grpc/ transports: parse requests, call the two above, shape replies
 * Transports depend on these types only, never on each other.
 */

/** A dense float32 tensor in C order. */
export interface Tensor {
  data: Float32Array;
  shape: number[];
}

export type ResizePolicy = 'center-crop' | 'pad' | 'stretch';
export type SamplerMethod = 'euler' | 'heun';
export type ImageFormat = 'png' | 'jpeg' | 'webp';

/** What the model expects of an image, from its manifest. */
export interface ImageSpec {
  height: number;
  width: number;
  channels: 1 | 3;
}

/** An image ready for the encoder, plus what the client should be told about it. */
export interface PreparedImage {
  /** [C, H, W] in [-1, 1], exactly the model's size and channel count. */
  data: Float32Array;
  /** Size as seen by the client: after EXIF orientation, before resizing. */
  sourceWidth: number;
  sourceHeight: number;
  sourceFormat: string;
  /** Frames in the file; only frame 1 is used. */
  frames: number;
  /** Things we did that the client may not expect (frames dropped, alpha flattened...). */
  warnings: string[];
}

export interface ClassInfo {
  id: number;
  name: string;
}

/** Effective sampling parameters, echoed back to the client. */
export interface GenerateParams {
  classId: number;
  count: number;
  steps: number;
  method: SamplerMethod;
  cfgScale: number;
  cfgInterval: [number, number];
  shift: number;
  seed: number;
}

export interface GenerateProgress {
  /** Sampler steps done so far and in all (Heun: two evaluations, one step); t reached. */
  step: number;
  totalSteps: number;
  t: number;
}

export interface GenerateResult {
  /** Raw (un-normalised) latents [count, Cz, h, w]. */
  latents: Tensor;
  /** Decoded images [count, C, H, W] in [-1, 1]. */
  images: Tensor;
}

export interface ProviderReport {
  graph: string;
  requested: string[];
  /** The provider the session really runs on. */
  actual: string;
}

/** One loaded model: the inference layer implements this, transports consume it. */
export interface ModelHandle {
  readonly name: string;
  readonly manifest: import('./models/manifest').Manifest;
  readonly imageSpec: ImageSpec;
  /** [Cz, h, w] */
  readonly latentShape: [number, number, number];
  readonly classes: ClassInfo[];
  readonly providers: ProviderReport[];

  /** images [N, C, H, W] in [-1, 1] -> raw latents [N, Cz, h, w]. */
  encode(images: Tensor, signal?: AbortSignal): Promise<Tensor>;
  /** raw latents [N, Cz, h, w] -> images [N, C, H, W] in [-1, 1]. */
  decode(latents: Tensor, signal?: AbortSignal): Promise<Tensor>;
  /** Runs the sampler; onProgress fires after every sampler step. */
  generate(
    params: GenerateParams,
    onProgress?: (p: GenerateProgress) => void,
    signal?: AbortSignal,
  ): Promise<GenerateResult>;
  /** raw <-> normalised latent space (manifest latent.mean / latent.scale). */
  normalizeLatents(raw: Tensor): Tensor;
  denormalizeLatents(normalized: Tensor): Tensor;
}

export interface ModelRegistry {
  list(): ModelHandle[];
  /** Throws ServiceError('model_not_found') naming the known models. */
  get(name: string): ModelHandle;
  /** True once every model is loaded and warmed up. */
  isReady(): boolean;
  close(): Promise<void>;
}
