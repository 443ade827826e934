import os from 'node:os';
import type { Config } from '../config';
import { ServiceError } from '../errors';
import { prepareImage, stackImages, type WarnLogger } from '../intake';
import type { ModelHandle, PreparedImage, ResizePolicy, Tensor } from '../types';
import { createLimiter } from './limiter';
import type { LatentSpace } from './options';

/** What the client is told about each input image. */
export interface ImageInfo {
  sourceWidth: number;
  sourceHeight: number;
  sourceFormat: string;
  frames: number;
  warnings: string[];
}

export interface EncodeOutcome {
  /** [N, Cz, h, w] in the requested space. */
  latents: Tensor;
  images: ImageInfo[];
}

type Limits = Pick<Config, 'maxImagesPerRequest' | 'maxImagePixels'>;

// One core stays free for the event loop; the rest decode (see limiter.ts for why).
const decodeSlot = createLimiter(Math.max(1, os.availableParallelism() - 1));

/** Refuses an empty request or one over MAX_IMAGES_PER_REQUEST before any image is read. */
export function checkImageCount(count: number, limits: Limits): void {
  if (count === 0) throw new ServiceError('invalid_request', 'No images in the request');
  if (count > limits.maxImagesPerRequest) {
    throw new ServiceError(
      'too_many_items',
      `${count} images in one request; the limit is MAX_IMAGES_PER_REQUEST = ` +
        `${limits.maxImagesPerRequest}`,
      { limit: limits.maxImagesPerRequest, actual: count },
    );
  }
}

/**
 * Images (any supported file format) -> latents. A failure names the image's index, so a
 * client sending a batch knows which one to fix.
 */
export async function encodeImages(
  handle: ModelHandle,
  files: Buffer[],
  options: { resize: ResizePolicy; space: LatentSpace },
  limits: Limits,
  signal?: AbortSignal,
  log?: WarnLogger,
): Promise<EncodeOutcome> {
  checkImageCount(files.length, limits);
  const prepare = { resize: options.resize, maxPixels: limits.maxImagePixels, log };
  type Settled = { image?: PreparedImage; error?: unknown };
  const pending = files.map((bytes, index) =>
    decodeSlot(() => prepareImage(bytes, handle.imageSpec, prepare)).then(
      (image): Settled => ({ image }),
      (error: unknown): Settled => ({ error: withIndex(error, index, files.length) }),
    ),
  );
  const results = await Promise.all(pending);
  const failed = results.find((r) => r.error !== undefined);
  if (failed) throw failed.error;
  const prepared = results.map((r) => r.image as PreparedImage);
  const raw = await handle.encode(stackImages(prepared, handle.imageSpec), signal);
  const latents = options.space === 'normalized' ? handle.normalizeLatents(raw) : raw;
  return { latents, images: prepared.map(infoOf) };
}

function infoOf(image: PreparedImage): ImageInfo {
  const { sourceWidth, sourceHeight, sourceFormat, frames, warnings } = image;
  return { sourceWidth, sourceHeight, sourceFormat, frames, warnings };
}

/** Prefixes "image i: " in a batch, keeping code and details; other errors pass unchanged. */
export function withIndex(err: unknown, index: number, total: number): unknown {
  if (!(err instanceof ServiceError) || total === 1) return err;
  return new ServiceError(err.code, `image ${index}: ${err.message}`, { ...err.details, index });
}
