import type { Config } from '../config';
import { ServiceError } from '../errors';
import { checkLatent, encodeImage } from '../intake';
import { firstOutside, LATENT_LIMIT, latentInterval } from '../models/latent-range';
import type { ImageFormat, ModelHandle, Tensor } from '../types';
import type { LatentSpace } from './options';

type Limits = Pick<Config, 'maxImagesPerRequest'>;

/**
 * Client latents, [N, Cz, h, w] or [Cz, h, w], checked once for everything decoding needs:
 * the model's shape, MAX_IMAGES_PER_REQUEST, finite values (intake), and the model's latent
 * range in the space they are given in (models/latent-range). Returns them as 4-D.
 */
export function checkLatentsFor(
  handle: ModelHandle,
  latents: Tensor,
  space: LatentSpace,
  limits: Limits,
): Tensor {
  const checked = checkLatent(latents, handle.latentShape, { maxBatch: limits.maxImagesPerRequest });
  const range = latentInterval(handle.manifest.latent, space);
  const at = firstOutside(checked.data, range);
  if (at >= 0) {
    const [lo, hi] = range.map((v) => Number(v.toPrecision(6)));
    throw new ServiceError(
      'invalid_latent',
      `latent value ${checked.data[at]} at flat index ${at} (C order) is outside this model's ` +
        `range for ${space} latents, [${lo}, ${hi}] (|z - mean| * scale <= ${LATENT_LIMIT})`,
      { index: at, value: String(checked.data[at]), space, range: [lo, hi], limit: LATENT_LIMIT },
    );
  }
  return checked;
}

/** Latents already passed through checkLatentsFor -> images [N, C, H, W] in [-1, 1]. */
export async function decodeLatents(
  handle: ModelHandle,
  checked: Tensor,
  space: LatentSpace,
  signal?: AbortSignal,
): Promise<Tensor> {
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
