import path from 'node:path';
import { latentNoise, MAX_SEED, philox4x32_10, seedToKey } from '../../src/sampler/philox';
import { readNpy } from '../models/helpers';

const hex = (words: number[]) => words.map((w) => w.toString(16).padStart(8, '0')).join(' ');
const fixture = (name: string) => readNpy(path.join(__dirname, 'fixtures', name));

describe('Philox4x32-10', () => {
  test.each([
    [[0, 0, 0, 0], [0, 0], '6627e8d5 e169c58d bc57ac4c 9b00dbd8'],
    [
      [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
      [0xa4093822, 0x299f31d0],
      'd16cfe09 94fdcceb 5001e420 24126ea1',
    ],
    [
      [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
      [0xffffffff, 0xffffffff],
      '408f276d 41c83b0e a20bc7c6 6d5451fd',
    ],
  ])('matches the Random123 known answer for counter %j key %j', (counter, key, want) => {
    expect(hex(philox4x32_10(counter, key))).toBe(want);
  });

  test('seeds split into (low 32 bits, high bits) and out-of-range seeds are refused', () => {
    expect(seedToKey(0)).toEqual([0, 0]);
    expect(seedToKey(2 ** 32 + 7)).toEqual([7, 1]);
    expect(seedToKey(MAX_SEED)).toEqual([0xffffffff, 0x1fffff]);
    for (const bad of [-1, 1.5, MAX_SEED + 1, NaN])
      expect(() => seedToKey(bad)).toThrow(RangeError);
  });
});

describe('latentNoise', () => {
  // Written by training/dmvae/noise.py (test/sampler/fixtures/make_fixtures.py).
  test.each([
    ['noise_seed1234_3x4x7x7.npy', 1234, 3, 196],
    ['noise_seed2p53m1_2x3x5x5.npy', MAX_SEED, 2, 75],
  ])('equals the Python reference %s bit for bit', (file, seed, count, size) => {
    const ref = fixture(file);
    expect(ref.shape[0]).toBe(count);
    const mine = latentNoise(seed, count, size);
    expect(Array.from(mine)).toEqual(Array.from(ref.data as Float32Array));
  });

  test('is deterministic per seed and differs between seeds and samples', () => {
    const a = latentNoise(42, 2, 196);
    expect(latentNoise(42, 2, 196)).toEqual(a);
    expect(latentNoise(43, 2, 196)).not.toEqual(a);
    expect(a.subarray(0, 196)).not.toEqual(a.subarray(196));
  });

  test('sample s does not depend on how many samples are drawn', () => {
    const three = latentNoise(5, 3, 50);
    expect(latentNoise(5, 1, 50)).toEqual(three.subarray(0, 50));
    expect(latentNoise(5, 2, 50).subarray(50)).toEqual(three.subarray(50, 100));
  });

  test('looks standard normal over 100k values', () => {
    const x = latentNoise(2024, 100, 1000);
    let sum = 0;
    let sq = 0;
    for (const v of x) {
      sum += v;
      sq += v * v;
    }
    const mean = sum / x.length;
    expect(Math.abs(mean)).toBeLessThan(0.01); // 3.2 standard errors
    expect(Math.abs(sq / x.length - mean * mean - 1)).toBeLessThan(0.015);
  });
});
