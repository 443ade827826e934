import { ServiceError } from '../errors';
import { decodeFloat16, encodeFloat16 } from '../intake';
import type { Tensor } from '../types';

/** The proto Tensor message as proto-loader hands it over (int64 shape as decimal strings). */
export interface TensorMessage {
  data?: Buffer;
  shape?: (string | number)[];
  dtype?: string;
}

const ITEM_SIZE: Record<string, number> = { float32: 4, float16: 2 };

/** A proto Tensor (little-endian, C order) -> float32 Tensor; 400 naming what is wrong. */
export function tensorFromMessage(message: TensorMessage | undefined | null): Tensor {
  if (!message) throw new ServiceError('invalid_latent', 'latents tensor is missing');
  const dtype = message.dtype || 'float32';
  if (!(dtype in ITEM_SIZE)) {
    throw new ServiceError(
      'unsupported_dtype',
      `latent dtype ${JSON.stringify(dtype)} is not supported; accepted: float32, float16`,
      { dtype, accepted: Object.keys(ITEM_SIZE) },
    );
  }
  const shape = (message.shape ?? []).map(Number);
  if (shape.length === 0 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new ServiceError(
      'invalid_latent',
      `latent shape [${(message.shape ?? []).join(', ')}] must be 1 or more integers in 0..${Number.MAX_SAFE_INTEGER}`,
      { shape: message.shape ?? [] },
    );
  }
  const data = message.data ?? Buffer.alloc(0);
  const count = shape.reduce((a, b) => a * b, 1);
  if (data.length !== count * ITEM_SIZE[dtype]) {
    throw new ServiceError(
      'invalid_latent',
      `latent data holds ${data.length} bytes but shape [${shape.join(', ')}] of ${dtype} ` +
        `needs ${count * ITEM_SIZE[dtype]}`,
      { shape, dtype, bytes: data.length, expectedBytes: count * ITEM_SIZE[dtype] },
    );
  }
  if (dtype === 'float16') return { data: decodeFloat16(data, true), shape };
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = data.readFloatLE(4 * i);
  return { data: values, shape };
}

/** A float32 Tensor -> proto Tensor in the given dtype (little-endian, C order). */
export function tensorToMessage(tensor: Tensor, dtype: 'float32' | 'float16' = 'float32') {
  let data: Buffer;
  if (dtype === 'float16') data = encodeFloat16(tensor.data);
  else {
    data = Buffer.alloc(tensor.data.length * 4);
    for (let i = 0; i < tensor.data.length; i++) data.writeFloatLE(tensor.data[i], 4 * i);
  }
  return { data, shape: tensor.shape.map(String), dtype };
}
