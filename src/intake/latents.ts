import { ServiceError } from '../errors';
import type { Tensor } from '../types';
import { decodeBase64, encodeBase64 } from './base64';
import { decodeFloat16, encodeFloat16 } from './float16';
import { parseNpy, type NpyDtype } from './npy';

/**
 * Latents as clients send them: a .npy file (see npy.ts) or JSON
 * `{ "shape": [N, Cz, h, w], "dtype": "float32" | "float16", "data": "<base64, little-endian>" }`.
 * Both become a float32 C-order Tensor; checkLatent then matches it to a model.
 */

export interface LatentJson {
  shape: number[];
  dtype: NpyDtype;
  data: string;
}

const JSON_DTYPES: Record<string, number> = { float32: 4, float16: 2 };
const MAX_DIMS = 8;

function badJson(message: string, details: Record<string, unknown> = {}): ServiceError {
  return new ServiceError('invalid_latent', `latent JSON ${message}`, details);
}

/**
 * Parses the JSON latent form (already JSON.parse'd) into a tensor, or throws ServiceError
 * invalid_latent / unsupported_dtype / invalid_base64 naming the field.
 * @example parseLatentJson({ shape: [4, 7, 7], dtype: 'float32', data: 'AAAA...' })
 */
export function parseLatentJson(value: unknown): Tensor {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw badJson('must be an object {shape, dtype, data}');
  }
  const { shape, dtype, data } = value as Record<string, unknown>;
  if (
    !Array.isArray(shape) ||
    shape.length === 0 ||
    shape.length > MAX_DIMS ||
    !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)
  ) {
    throw badJson(`shape ${JSON.stringify(shape)} must be a list of 1-${MAX_DIMS} integers >= 0`, {
      shape,
    });
  }
  if (typeof dtype !== 'string' || !(dtype in JSON_DTYPES)) {
    throw new ServiceError(
      'unsupported_dtype',
      `latent dtype ${JSON.stringify(dtype)} is not supported; accepted: float32, float16`,
      { dtype, accepted: Object.keys(JSON_DTYPES) },
    );
  }
  if (typeof data !== 'string') {
    throw badJson('data must be a base64 string of little-endian values');
  }
  // Empty data is a length problem (checked below), not the image-specific empty_image error.
  const bytes =
    data.trim() === '' ? Buffer.alloc(0) : decodeBase64(data, { field: 'latent data' }).bytes;
  const count = (shape as number[]).reduce((a, b) => a * b, 1);
  const expected = count * JSON_DTYPES[dtype];
  if (bytes.length !== expected) {
    throw badJson(
      `data holds ${bytes.length} bytes but shape [${shape.join(', ')}] of ${dtype} ` +
        `needs ${expected}`,
      { shape, dtype, bytes: bytes.length, expectedBytes: expected },
    );
  }
  let values: Float32Array;
  if (dtype === 'float16') {
    values = decodeFloat16(bytes, true);
  } else {
    values = new Float32Array(count);
    for (let i = 0; i < count; i++) values[i] = bytes.readFloatLE(4 * i);
  }
  return { data: values, shape: [...(shape as number[])] };
}

/** A tensor -> the JSON latent form (little-endian base64). */
export function latentToJson(tensor: Tensor, dtype: NpyDtype = 'float32'): LatentJson {
  let bytes: Buffer;
  if (dtype === 'float16') {
    bytes = encodeFloat16(tensor.data);
  } else {
    bytes = Buffer.alloc(tensor.data.length * 4);
    for (let i = 0; i < tensor.data.length; i++) bytes.writeFloatLE(tensor.data[i], 4 * i);
  }
  return { shape: [...tensor.shape], dtype, data: encodeBase64(bytes) };
}

/**
 * The shape half of checkLatent, for a shape known before the values are (a .npy header):
 * returns it as [N, Cz, h, w], or throws invalid_latent / too_many_items.
 */
export function checkLatentShape(
  given: readonly number[],
  latentShape: readonly number[],
  opts: CheckLatentOptions = {},
): number[] {
  const shape = given.length === latentShape.length ? [1, ...given] : [...given];
  const matches =
    shape.length === latentShape.length + 1 && latentShape.every((d, i) => shape[i + 1] === d);
  if (!matches || shape[0] < 1) {
    const dims = latentShape.join(', ');
    throw new ServiceError(
      'invalid_latent',
      `latent shape [${given.join(', ')}] does not match this model's latent ` +
        `[N, ${dims}] with N >= 1 (or [${dims}] for one latent)`,
      { expected: ['N', ...latentShape], actual: [...given] },
    );
  }
  if (opts.maxBatch !== undefined && shape[0] > opts.maxBatch) {
    throw new ServiceError(
      'too_many_items',
      `${shape[0]} latents in one request; at most ${opts.maxBatch} (MAX_IMAGES_PER_REQUEST)`,
      { count: shape[0], limit: opts.maxBatch },
    );
  }
  return shape;
}

export interface CheckLatentOptions {
  /** Most latents one request may carry (MAX_IMAGES_PER_REQUEST); unchecked when absent. */
  maxBatch?: number;
}

/**
 * Matches a latent to a model's latent shape [Cz, h, w]: accepts [N, Cz, h, w] (N >= 1) or
 * [Cz, h, w] (taken as N = 1), and finite values only. Returns the tensor as [N, Cz, h, w].
 * @example checkLatent(parseNpy(body), model.latentShape)
 */
export function checkLatent(
  tensor: Tensor,
  latentShape: readonly number[],
  opts: CheckLatentOptions = {},
): Tensor {
  const shape = checkLatentShape(tensor.shape, latentShape, opts);
  const at = tensor.data.findIndex((v) => !Number.isFinite(v));
  if (at >= 0) {
    throw new ServiceError(
      'invalid_latent',
      `latent value ${tensor.data[at]} at flat index ${at} (C order) is not finite; ` +
        'every value must be a finite number',
      { index: at, value: String(tensor.data[at]) },
    );
  }
  return { data: tensor.data, shape };
}
