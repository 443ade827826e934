import sharp from 'sharp';
import type { ImageFormat, ImageSpec } from '../types';
import { tensorToPixels } from './pixels';

/**
 * Model output -> an image file for the client. PNG is lossless; WebP is written lossless too
 * (small images, exact pixels); JPEG at quality 90 unless told otherwise.
 */

export interface EncodeImageOptions {
  /** JPEG quality 1-100 (default 90); ignored for PNG and WebP. */
  quality?: number;
}

/**
 * Encodes one image [C, H, W] in about [-1, 1] (clamped; p = round((x + 1) * 127.5)).
 * @example const png = await encodeImage(images.data.subarray(0, 784), model.imageSpec, 'png');
 */
export async function encodeImage(
  data: Float32Array,
  spec: ImageSpec,
  format: ImageFormat,
  opts: EncodeImageOptions = {},
): Promise<Buffer> {
  const pixels = tensorToPixels(data, spec);
  const image = sharp(pixels, {
    raw: { width: spec.width, height: spec.height, channels: spec.channels },
  });
  if (spec.channels === 1) image.toColourspace('b-w');
  if (format === 'png') return image.png({ compressionLevel: 6 }).toBuffer();
  if (format === 'jpeg') return image.jpeg({ quality: opts.quality ?? 90 }).toBuffer();
  return image.webp({ lossless: true }).toBuffer();
}
