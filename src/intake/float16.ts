/**
 * IEEE 754 binary16 <-> binary32, bit-exact. Every half value is exactly representable as a
 * float, so half -> float is lossless; float -> half rounds to nearest, ties to even (as numpy
 * and CUDA do), overflows to +-Infinity, keeps subnormals, signed zeros and NaN (quiet).
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** binary16 bits (0..0xffff) -> the number they encode. */
export function halfBitsToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24; // zero or subnormal
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** A number -> the binary16 bits nearest to it (after rounding to float32 first, like numpy). */
export function floatToHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;

  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 | (mantissa >>> 13) : 0);
  const e = exponent - 127 + 15; // re-biased exponent
  if (e >= 0x1f) return sign | 0x7c00; // too large even before rounding

  if (e <= 0) {
    // Subnormal half (or zero). Below 2^-25 everything rounds to zero (2^-25 itself ties to 0).
    if (e < -10) return sign;
    const full = mantissa | 0x800000; // restore the implicit leading 1
    const shift = 14 - e; // 14..24
    let half = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    if (rest > midpoint || (rest === midpoint && half & 1)) half++; // may carry into 0x400: fine
    return sign | half;
  }

  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++; // a carry to 0x7c00 is Infinity
  return sign | half;
}

/** Little- or big-endian binary16 bytes -> float32 values. */
export function decodeFloat16(bytes: Uint8Array, littleEndian: boolean): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.byteLength >>> 1);
  for (let i = 0; i < out.length; i++) {
    out[i] = halfBitsToFloat(view.getUint16(2 * i, littleEndian));
  }
  return out;
}

/** float32 values -> little-endian binary16 bytes. */
export function encodeFloat16(values: Float32Array): Buffer {
  const out = Buffer.alloc(values.length * 2);
  for (let i = 0; i < values.length; i++) out.writeUInt16LE(floatToHalfBits(values[i]), 2 * i);
  return out;
}
