import { ServiceError } from '../errors';
import type { Tensor } from '../types';
import { decodeFloat16, encodeFloat16 } from './float16';
import { isPyList, parsePyLiteral, PyLiteralError, type PyValue } from './py-literal';

/**
 * NumPy .npy files (format versions 1.0, 2.0, 3.0) for latents.
 * Read: float32 and float16, either byte order, C or Fortran order; the result is always a
 * float32 C-order Tensor (Fortran data is transposed into C order, big-endian data byte-swapped,
 * float16 widened exactly). Everything else is refused with the dtype named.
 * Write: little-endian, C order, version 1.0, float32 or float16.
 */

export type NpyDtype = 'float32' | 'float16';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const ACCEPTED_DESCR: Record<string, { dtype: NpyDtype; littleEndian: boolean }> = {
  '<f4': { dtype: 'float32', littleEndian: true },
  '>f4': { dtype: 'float32', littleEndian: false },
  '<f2': { dtype: 'float16', littleEndian: true },
  '>f2': { dtype: 'float16', littleEndian: false },
};
const ACCEPTED_LIST = "float32 ('<f4', '>f4') and float16 ('<f2', '>f2')";
const MAX_HEADER_BYTES = 65536; // numpy itself refuses headers over 10000 bytes by default
const MAX_DIMS = 32; // numpy's own limit

function bad(message: string, details: Record<string, unknown> = {}): ServiceError {
  return new ServiceError('invalid_latent', `.npy file ${message}`, details);
}

interface NpyHeader {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  dataOffset: number;
}

function readHeader(bytes: Buffer): NpyHeader {
  if (bytes.length < 10 || !bytes.subarray(0, 6).equals(MAGIC)) {
    throw bad('does not start with the .npy magic \\x93NUMPY', {
      firstBytes: bytes.subarray(0, 8).toString('hex'),
    });
  }
  const major = bytes[6];
  if (major < 1 || major > 3 || bytes[7] !== 0) {
    throw bad(`has format version ${major}.${bytes[7]}; versions 1.0-3.0 are read`);
  }
  const lengthBytes = major === 1 ? 2 : 4;
  const start = 8 + lengthBytes;
  if (bytes.length < start) throw bad('ends inside its header length');
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  if (headerLength > MAX_HEADER_BYTES || start + headerLength > bytes.length) {
    const after = bytes.length - start;
    throw bad(`declares a ${headerLength}-byte header but holds ${after} bytes after it`);
  }
  // Versions 1 and 2 store the header as latin1, version 3 as UTF-8.
  const encoding = major === 3 ? 'utf8' : 'latin1';
  const text = bytes.subarray(start, start + headerLength).toString(encoding);

  let dict: PyValue;
  try {
    dict = parsePyLiteral(text);
  } catch (err) {
    if (!(err instanceof PyLiteralError)) throw err;
    throw bad(`header is not a valid dict literal: ${err.message}`, { header: text.slice(0, 200) });
  }
  if (dict === null || typeof dict !== 'object' || Array.isArray(dict)) {
    throw bad('header is not a dict', { header: text.slice(0, 200) });
  }
  const keys = Object.keys(dict).sort().join(', ');
  if (keys !== 'descr, fortran_order, shape') {
    throw bad(`header has keys {${keys}}; expected exactly descr, fortran_order, shape`);
  }
  const { descr, fortran_order: fortranOrder, shape } = dict;
  if (typeof fortranOrder !== 'boolean') throw bad('header fortran_order is not True/False');
  if (!Array.isArray(shape) || isPyList(shape) || shape.length > MAX_DIMS || !shape.every(isDim)) {
    throw bad(`header shape ${JSON.stringify(shape)} is not a tuple of non-negative integers`);
  }
  if (typeof descr !== 'string') {
    throw new ServiceError(
      'unsupported_dtype',
      `.npy dtype ${JSON.stringify(descr)} (structured) is not supported; ` +
        `accepted: ${ACCEPTED_LIST}`,
      { dtype: descr, accepted: Object.keys(ACCEPTED_DESCR) },
    );
  }
  return { descr, fortranOrder, shape: shape as number[], dataOffset: start + headerLength };
}

const isDim = (d: PyValue) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0;

/** Moves Fortran-order (column-major) values into C order. */
function fortranToC(values: Float32Array, shape: number[]): Float32Array {
  const out = new Float32Array(values.length);
  const index = new Array(shape.length).fill(0); // C-order multi-index of out[i]
  const fStride = shape.map((_, d) => shape.slice(0, d).reduce((a, b) => a * b, 1));
  for (let i = 0; i < out.length; i++) {
    let src = 0;
    for (let d = 0; d < shape.length; d++) src += index[d] * fStride[d];
    out[i] = values[src];
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

/**
 * Parses a .npy file into a float32 C-order tensor, or throws ServiceError invalid_latent /
 * unsupported_dtype naming the problem. Values are not checked (NaN passes; see checkLatent).
 * `checkShape` sees the header's shape before any value is converted, so a body refused for
 * its shape costs no conversion (which runs on the event loop).
 * @example parseNpy(fs.readFileSync('z.npy')).shape // [1, 4, 7, 7]
 */
export function parseNpy(input: Uint8Array, checkShape?: (shape: number[]) => void): Tensor {
  const bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const header = readHeader(bytes);
  const kind = ACCEPTED_DESCR[header.descr];
  if (!kind) {
    throw new ServiceError(
      'unsupported_dtype',
      `.npy dtype '${header.descr}' is not supported; accepted: ${ACCEPTED_LIST}`,
      { dtype: header.descr, accepted: Object.keys(ACCEPTED_DESCR) },
    );
  }
  const count = header.shape.reduce((a, b) => a * b, 1);
  const itemSize = kind.dtype === 'float32' ? 4 : 2;
  const dataBytes = bytes.length - header.dataOffset;
  if (dataBytes !== count * itemSize) {
    throw bad(
      `holds ${dataBytes} data bytes but shape (${header.shape.join(', ')}) of '${header.descr}' ` +
        `needs ${count * itemSize}`,
      { shape: header.shape, dtype: header.descr, dataBytes, expectedBytes: count * itemSize },
    );
  }
  checkShape?.([...header.shape]);
  const data = bytes.subarray(header.dataOffset);
  let values: Float32Array;
  if (kind.dtype === 'float16') {
    values = decodeFloat16(data, kind.littleEndian);
  } else {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    values = new Float32Array(count);
    for (let i = 0; i < count; i++) values[i] = view.getFloat32(4 * i, kind.littleEndian);
  }
  if (header.fortranOrder && header.shape.length > 1) values = fortranToC(values, header.shape);
  return { data: values, shape: [...header.shape] };
}

/**
 * Writes a tensor as a version 1.0 .npy file: little-endian, C order, float32 or float16.
 * @example fs.writeFileSync('z.npy', writeNpy(latents))
 */
export function writeNpy(tensor: Tensor, dtype: NpyDtype = 'float32'): Buffer {
  const count = tensor.shape.reduce((a, b) => a * b, 1);
  if (count !== tensor.data.length) {
    throw new ServiceError(
      'internal',
      `writeNpy: shape [${tensor.shape}] needs ${count} values, tensor has ${tensor.data.length}`,
    );
  }
  const dims = tensor.shape.join(', ');
  const shape = tensor.shape.length === 1 ? `(${dims},)` : `(${dims})`;
  const descr = dtype === 'float32' ? '<f4' : '<f2';
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Pad with spaces so the data starts on a 64-byte boundary, ending the header with '\n'.
  const unpadded = MAGIC.length + 2 + 2 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const preamble = Buffer.alloc(10);
  MAGIC.copy(preamble);
  preamble[6] = 1;
  preamble[7] = 0;
  preamble.writeUInt16LE(header.length, 8);

  let data: Buffer;
  if (dtype === 'float16') {
    data = encodeFloat16(tensor.data);
  } else {
    data = Buffer.alloc(count * 4);
    for (let i = 0; i < count; i++) data.writeFloatLE(tensor.data[i], 4 * i);
  }
  return Buffer.concat([preamble, Buffer.from(header, 'latin1'), data]);
}
