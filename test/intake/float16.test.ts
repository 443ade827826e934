import fs from 'node:fs';
import path from 'node:path';
import { decodeFloat16, encodeFloat16, floatToHalfBits, halfBitsToFloat } from '../../src/intake';

/** binary16 conversions against numpy (fixtures/make_float16_table.py) and exhaustively. */

const table: { float32_bits: number[]; float16_bits: number[] } = JSON.parse(
  fs.readFileSync(path.join(__dirname, 'fixtures', 'float16-numpy.json'), 'utf8'),
);
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const fromBits = (bits: number) => ((u32[0] = bits), f32[0]);

test(`float -> half matches numpy on ${table.float32_bits.length} values (edges, subnormals, ties)`, () => {
  const mismatches = table.float32_bits
    .map((bits, i) => [fromBits(bits), floatToHalfBits(fromBits(bits)), table.float16_bits[i]])
    .filter(([, ours, numpy]) => ours !== numpy);
  expect(mismatches).toEqual([]);
});

test('every one of the 65536 half values converts to float and back to the same bits', () => {
  const wrong: string[] = [];
  for (let bits = 0; bits < 0x10000; bits++) {
    const value = halfBitsToFloat(bits);
    const isNan = (bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0;
    const back = floatToHalfBits(value);
    const ok = isNan ? Number.isNaN(value) && (back & 0x7fff) === 0x7e00 : back === bits;
    if (!ok) wrong.push(`${bits.toString(16)} -> ${value} -> ${back.toString(16)}`);
  }
  expect(wrong).toEqual([]);
});

test('known values: limits, subnormals, signed zero, infinities', () => {
  expect(halfBitsToFloat(0x7bff)).toBe(65504);
  expect(halfBitsToFloat(0x0001)).toBe(2 ** -24);
  expect(halfBitsToFloat(0x0400)).toBe(2 ** -14);
  expect(halfBitsToFloat(0x3c00)).toBe(1);
  expect(halfBitsToFloat(0xc000)).toBe(-2);
  expect(Object.is(halfBitsToFloat(0x8000), -0)).toBe(true);
  expect(halfBitsToFloat(0x7c00)).toBe(Infinity);
  expect(halfBitsToFloat(0xfc00)).toBe(-Infinity);
  expect(floatToHalfBits(65520)).toBe(0x7c00); // rounds up past the largest finite half
  expect(floatToHalfBits(65519)).toBe(0x7bff);
  expect(floatToHalfBits(2 ** -25)).toBe(0); // tie to even: zero
  expect(floatToHalfBits(3 * 2 ** -25)).toBe(2); // tie to even: 2 ulps
  expect(floatToHalfBits(1 + 2 ** -11)).toBe(0x3c00); // tie to even: stays 1
  expect(floatToHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02);
  expect(floatToHalfBits(-0)).toBe(0x8000);
  expect(floatToHalfBits(NaN) & 0x7e00).toBe(0x7e00);
});

test('buffer helpers: little- and big-endian decode, little-endian encode', () => {
  const values = Float32Array.from([1, -2, 0.5, 65504]);
  const le = encodeFloat16(values);
  expect(le.toString('hex')).toBe('003c00c00038ff7b');
  expect(Array.from(decodeFloat16(le, true))).toEqual(Array.from(values));
  const be = Buffer.from(le);
  be.swap16();
  expect(Array.from(decodeFloat16(be, false))).toEqual(Array.from(values));
  expect(Array.from(decodeFloat16(le.subarray(2), true))).toEqual([-2, 0.5, 65504]); // offset view
});
