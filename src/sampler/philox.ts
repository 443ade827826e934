/**
 * Starting noise per docs/model-format.md ("Noise", philox4x32-10-box-muller v1): the Random123
 * Philox4x32-10 generator feeding Box-Muller in float64, rounded to float32. Must match
 * training/dmvae/noise.py bit for bit, so every step follows the contract's words.
 */

export const MAX_SEED = Number.MAX_SAFE_INTEGER; // 2^53 - 1

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const TWO_32 = 4294967296;

/** High and low 32 bits of a * b for unsigned 32-bit a, b (doubles hold 16x16 products exactly). */
function mulhilo(a: number, b: number): [number, number] {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  const hi = (a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + Math.floor(mid / 65536)) >>> 0;
  return [hi, Math.imul(a, b) >>> 0];
}

/** One Philox4x32-10 block: counter [c0..c3], key [k0, k1], all unsigned 32-bit. */
export function philox4x32_10(counter: readonly number[], key: readonly number[]): number[] {
  let [c0, c1, c2, c3] = counter.map((c) => c >>> 0);
  let [k0, k1] = key.map((k) => k >>> 0);
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      // the key is bumped between rounds, not before the first
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const [hi0, lo0] = mulhilo(M0, c0);
    const [hi1, lo1] = mulhilo(M1, c2);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
  }
  return [c0, c1, c2, c3];
}

/** Philox key of a seed: (seed mod 2^32, floor(seed / 2^32)); seed must be an integer 0..2^53-1. */
export function seedToKey(seed: number): [number, number] {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`noise seed must be an integer in 0..2^53-1, got ${seed}`);
  }
  return [seed % TWO_32, Math.floor(seed / TWO_32)];
}

/**
 * Standard-normal starting latents for `count` samples of `size` values each (C order):
 * element j of sample s comes from block floor(j/4) of counter (b, s, 0, 0), lane j mod 4.
 * @example latentNoise(1234, 2, 4 * 7 * 7) // Float32Array of 392 values
 */
export function latentNoise(seed: number, count: number, size: number): Float32Array {
  const key = seedToKey(seed);
  if (!Number.isInteger(count) || count < 0 || count >= TWO_32) {
    throw new RangeError(`noise count must be an integer in 0..2^32-1, got ${count}`);
  }
  if (!Number.isInteger(size) || size <= 0) {
    throw new RangeError(`noise size must be a positive integer, got ${size}`);
  }
  const out = new Float32Array(count * size);
  const blocks = Math.ceil(size / 4); // the last block's spare lanes are dropped
  for (let s = 0; s < count; s++) {
    for (let b = 0; b < blocks; b++) {
      const lanes = boxMuller(philox4x32_10([b, s, 0, 0], key));
      const base = s * size + b * 4;
      for (let i = 0; i < 4 && b * 4 + i < size; i++) out[base + i] = lanes[i];
    }
  }
  return out;
}

/** Four words -> four normals, in float64 (Float32Array storage does the final rounding). */
function boxMuller(w: number[]): number[] {
  const u = w.map((x) => (x + 0.5) / TWO_32); // in (0, 1): log never sees 0
  const r0 = Math.sqrt(-2 * Math.log(u[0]));
  const r1 = Math.sqrt(-2 * Math.log(u[2]));
  const a0 = 2 * Math.PI * u[1];
  const a1 = 2 * Math.PI * u[3];
  return [r0 * Math.cos(a0), r0 * Math.sin(a0), r1 * Math.cos(a1), r1 * Math.sin(a1)];
}
