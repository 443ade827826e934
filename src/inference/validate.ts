import { ServiceError, type ErrorCode } from '../errors';
import type { Tensor } from '../types';

/**
 * Checks on tensors handed to a model: a batch axis N >= 1 followed by the model's exact
 * shape, a data length that agrees, and only finite values. Messages name both shapes.
 */

export function checkBatch(
  tensor: Tensor,
  rowShape: readonly number[],
  what: string,
  code: ErrorCode,
): number {
  const shape = tensor?.shape;
  const want = `[N, ${rowShape.join(', ')}]`;
  if (!Array.isArray(shape) || !isFloat32Array(tensor.data)) {
    throw new ServiceError(code, `${what} must be a float32 tensor of shape ${want}`);
  }
  const n = shape[0];
  const fits =
    shape.length === rowShape.length + 1 &&
    Number.isInteger(n) &&
    n >= 1 &&
    rowShape.every((d, i) => shape[i + 1] === d);
  if (!fits) {
    throw new ServiceError(
      code,
      `${what} has shape [${shape.join(', ')}]; this model expects ${want}`,
      {
        expected: ['N', ...rowShape],
        actual: shape,
      },
    );
  }
  const size = n * rowShape.reduce((a, b) => a * b, 1);
  if (tensor.data.length !== size) {
    throw new ServiceError(
      code,
      `${what} of shape [${shape.join(', ')}] needs ${size} values, got ${tensor.data.length}`,
    );
  }
  return n;
}

/**
 * Realm-independent: arrays that crossed from a worker thread, or that a jest test made in its
 * VM context, fail `instanceof Float32Array` although they are exactly that.
 */
export function isFloat32Array(x: unknown): x is Float32Array {
  return ArrayBuffer.isView(x) && Object.prototype.toString.call(x) === '[object Float32Array]';
}

/** Throws `code` naming the first NaN or infinite value and its position. */
export function checkFinite(tensor: Tensor, what: string, code: ErrorCode): void {
  const data = tensor.data;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      const index = unravel(i, tensor.shape);
      throw new ServiceError(
        code,
        `${what} contains ${data[i]} at index [${index.join(', ')}]; only finite values are accepted`,
        { index, value: String(data[i]) },
      );
    }
  }
}

function unravel(flat: number, shape: readonly number[]): number[] {
  const index = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    index[d] = flat % shape[d];
    flat = Math.floor(flat / shape[d]);
  }
  return index;
}
