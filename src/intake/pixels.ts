import { ServiceError } from '../errors';
import type { ImageSpec } from '../types';

/**
 * 8-bit pixels <-> model values, per docs/model-format.md: x = p / 127.5 - 1 and back
 * p = round((clamp(x, -1, 1) + 1) * 127.5). Pixels are interleaved HWC, tensors planar CHW.
 */

/**
 * ITU-R BT.601 luma with PIL's fixed-point rounding (Image.convert('L')), so a grey model sees
 * the same integer grey levels here as in a Python pipeline that loads the file with PIL.
 */
export function lumaBt601(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >>> 16;
}

/** Interleaved sRGB bytes [H, W, 3] -> model input [C, H, W] in [-1, 1]; C = 1 takes luma. */
export function rgbToTensor(rgb: Uint8Array, spec: ImageSpec): Float32Array {
  const plane = spec.width * spec.height;
  if (rgb.length !== plane * 3) {
    throw new ServiceError(
      'internal',
      `decoded image has ${rgb.length} bytes; ${spec.width}x${spec.height}x3 needs ${plane * 3}`,
    );
  }
  const out = new Float32Array(plane * spec.channels);
  for (let i = 0; i < plane; i++) {
    const r = rgb[3 * i];
    const g = rgb[3 * i + 1];
    const b = rgb[3 * i + 2];
    if (spec.channels === 1) {
      out[i] = lumaBt601(r, g, b) / 127.5 - 1;
    } else {
      out[i] = r / 127.5 - 1;
      out[plane + i] = g / 127.5 - 1;
      out[2 * plane + i] = b / 127.5 - 1;
    }
  }
  return out;
}

/**
 * Model output [C, H, W] (about [-1, 1]) -> interleaved 8-bit pixels [H, W, C]. Values are
 * clamped; NaN means the model misbehaved and is an error (500 inference_failed), never black.
 */
export function tensorToPixels(data: Float32Array, spec: ImageSpec): Buffer {
  const plane = spec.width * spec.height;
  const c = spec.channels;
  if (data.length !== plane * c) {
    throw new ServiceError(
      'internal',
      `image tensor has ${data.length} values; [${c}, ${spec.height}, ${spec.width}] needs ` +
        `${plane * c}`,
    );
  }
  const out = Buffer.alloc(plane * c);
  for (let ch = 0; ch < c; ch++) {
    for (let i = 0; i < plane; i++) {
      const x = data[ch * plane + i];
      if (Number.isNaN(x)) {
        const where = `channel ${ch}, row ${Math.floor(i / spec.width)}, column ${i % spec.width}`;
        throw new ServiceError('inference_failed', `model output is NaN at ${where}`);
      }
      out[i * c + ch] = Math.round((Math.min(1, Math.max(-1, x)) + 1) * 127.5);
    }
  }
  return out;
}
