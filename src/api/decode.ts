import type { Config } from '../config';
import { checkLatent, encodeImage } from '../intake';
import type { ImageFormat, ModelHandle, Tensor } from '../types';
import type { LatentSpace } from './options';

type Limits = Pick<Config, 'maxImagesPerRequest'>;

/** [N, Cz, h, w] or [Cz, h, w] matched to the model and MAX_IMAGES_PER_REQUEST; returns 4-D. */
export function checkLatentsFor(handle: ModelHandle, latents: Tensor, limits: Limits): Tensor {
  return checkLatent(latents, handle.latentShape, { maxBatch: limits.maxImagesPerRequest });
}

/** Latents in the given space (checked as above) -> decoded images [N, C, H, W] in [-1, 1]. */
export async function decodeLatents(
  handle: ModelHandle,
  latents: Tensor,
  space: LatentSpace,
  limits: Limits,
  signal?: AbortSignal,
): Promise<Tensor> {
  const checked = checkLatentsFor(handle, latents, limits);
  const raw = space === 'normalized' ? handle.denormalizeLatents(checked) : checked;
  return handle.decode(raw, signal);
}

/** An image tensor [N, C, H, W] -> one encoded file per image. */
export function imagesToFiles(
  handle: ModelHandle,
  images: Tensor,
  format: ImageFormat,
): Promise<Buffer[]> {
  const [count, channels, height, width] = images.shape;
  const size = channels * height * width;
  const files: Promise<Buffer>[] = [];
  for (let i = 0; i < count; i++) {
    const data = images.data.subarray(i * size, (i + 1) * size);
    files.push(encodeImage(data, handle.imageSpec, format));
  }
  return Promise.all(files);
}
