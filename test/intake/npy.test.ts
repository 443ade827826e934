import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  checkLatentShape,
  checkLatent,
  floatToHalfBits,
  halfBitsToFloat,
  parseNpy,
  writeNpy,
} from '../../src/intake';
import { caseBytes, describeCases, LATENT_SHAPE, rejection } from './helpers';

/** BC-18 .npy latents, plus numpy-written fixtures (fixtures/make_npy_fixtures.py). */

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, 'fixtures', 'npy', name));
/** v[i, j, k] = 100 i + 10 j + k in C order, as the fixtures hold. */
const CUBE = Array.from(
  { length: 24 },
  (_, n) => 100 * Math.floor(n / 12) + 10 * Math.floor((n % 12) / 4) + (n % 4),
);

describeCases('latent .npy files (BC-18)', () => {
  const control = () => parseNpy(caseBytes('bc18-latent-f4.npy'));

  test('the control is [1, 4, 7, 7] float32 standard-normal values', () => {
    const z = control();
    expect(z.shape).toEqual([1, 4, 7, 7]);
    const mean = z.data.reduce((a, b) => a + b, 0) / z.data.length;
    expect(Math.abs(mean)).toBeLessThan(0.3);
    expect(checkLatent(z, LATENT_SHAPE).shape).toEqual([1, 4, 7, 7]);
  });

  test.each(['bc18-latent-f4-fortran.npy', 'bc18-latent-f4-big-endian.npy'])(
    '%s equals the control exactly',
    (name) => {
      const z = parseNpy(caseBytes(name));
      expect(z.shape).toEqual([1, 4, 7, 7]);
      expect(Array.from(z.data)).toEqual(Array.from(control().data));
    },
  );

  test('Fortran data read naively as C order would differ (the test above is meaningful)', () => {
    const bytes = caseBytes('bc18-latent-f4-fortran.npy');
    const naive = new Float32Array(
      bytes.buffer.slice(bytes.byteOffset + bytes.length - 784, bytes.byteOffset + bytes.length),
    );
    expect(Array.from(naive)).not.toEqual(Array.from(control().data));
  });

  test('float16 matches the control within float16 rounding (round-to-nearest-even exactly)', () => {
    const half = parseNpy(caseBytes('bc18-latent-f2.npy'));
    const z = control().data;
    half.data.forEach((v, i) => {
      expect(v).toBe(halfBitsToFloat(floatToHalfBits(z[i])));
      expect(Math.abs(v - z[i])).toBeLessThanOrEqual(Math.abs(z[i]) * 2 ** -11 + 2 ** -25);
    });
  });

  test.each([
    ['bc18-latent-f8.npy', "'<f8'"],
    ['bc18-latent-i4.npy', "'<i4'"],
  ])('%s is 400 unsupported_dtype naming %s and the accepted ones', async (name, dtype) => {
    const err = await rejection(() => parseNpy(caseBytes(name)));
    expect([err.code, err.httpStatus]).toEqual(['unsupported_dtype', 400]);
    expect(err.message).toBe(
      `.npy dtype ${dtype} is not supported; accepted: float32 ('<f4', '>f4') and float16 ('<f2', '>f2')`,
    );
  });
});

describe('parseNpy on numpy-written fixtures', () => {
  test.each([
    'cube-f4-c.npy',
    'cube-f4-fortran.npy',
    'cube-f2-big-endian-fortran.npy',
    'cube-f4-v2.npy',
    'cube-f4-v3.npy',
  ])('%s gives the 2x3x4 cube in C order', (name) => {
    const t = parseNpy(fixture(name));
    expect(t.shape).toEqual([2, 3, 4]);
    expect(Array.from(t.data)).toEqual(CUBE);
  });

  test('1-d, 0-d and empty arrays', () => {
    expect(parseNpy(fixture('vector-f4.npy'))).toEqual({
      shape: [5],
      data: Float32Array.from([0, 1, 2, 3, 4]),
    });
    expect(parseNpy(fixture('scalar-f4.npy'))).toEqual({
      shape: [],
      data: Float32Array.from([7.5]),
    });
    expect(parseNpy(fixture('empty-f4.npy')).shape).toEqual([0, 4, 7, 7]);
  });

  test.each([
    ['cube-f8.npy', "'<f8'"],
    ['cube-u1.npy', "'|u1'"],
    ['cube-bool.npy', "'|b1'"],
    ['objects.npy', "'|O'"],
    ['structured.npy', '[["x","<f4"],["y","<f4"]] (structured)'],
  ])('%s: unsupported_dtype naming %s', async (name, shown) => {
    const err = await rejection(() => parseNpy(fixture(name)));
    expect(err.code).toBe('unsupported_dtype');
    expect(err.message).toContain(`dtype ${shown} is not supported`);
  });
});

describe('malformed .npy files are 400 invalid_latent with the reason', () => {
  const good = () => fixture('cube-f4-c.npy');
  /** A v1 file with the given header text (padded) and data bytes. */
  const withHeader = (header: string, data = Buffer.alloc(96)) => {
    const text = header + ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
    const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
    pre.writeUInt16LE(text.length, 8);
    return Buffer.concat([pre, Buffer.from(text, 'latin1'), data]);
  };

  test.each([
    ['not npy at all', Buffer.from('hello world'), /does not start with the .npy magic/],
    ['empty', Buffer.alloc(0), /does not start with the .npy magic/],
    [
      'version 4',
      Buffer.concat([good().subarray(0, 6), Buffer.from([4, 0]), good().subarray(8)]),
      /version 4.0/,
    ],
    ['header longer than the file', good().subarray(0, 40), /declares a \d+-byte header but holds/],
    [
      'data one value short',
      good().subarray(0, good().length - 4),
      /holds 92 data bytes but shape \(2, 3, 4\) of '<f4' needs 96/,
    ],
    ['data one byte long', Buffer.concat([good(), Buffer.alloc(1)]), /holds 97 data bytes/],
    [
      'a call in the header',
      withHeader("{'descr': __import__('os'), 'fortran_order': False, 'shape': (2, 3, 4), }"),
      /not a valid dict literal: unexpected character "_"/,
    ],
    [
      'missing shape',
      withHeader("{'descr': '<f4', 'fortran_order': False, }"),
      /expected exactly descr, fortran_order, shape/,
    ],
    [
      'extra key',
      withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (24,), 'x': 1}"),
      /expected exactly/,
    ],
    [
      'duplicate key',
      withHeader("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (24,)}"),
      /duplicate key 'descr'/,
    ],
    [
      'negative dim',
      withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (-24,), }"),
      /not a tuple of non-negative integers/,
    ],
    [
      'fortran_order not bool',
      withHeader("{'descr': '<f4', 'fortran_order': 0, 'shape': (24,), }"),
      /fortran_order is not True\/False/,
    ],
    ['unterminated', withHeader("{'descr': '<f4"), /unterminated string/],
    ['not a dict', withHeader('(1, 2)'), /header is not a dict/],
    [
      'shape as a list (numpy writes and reads tuples only)',
      withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': [24], }"),
      /shape \[24\] is not a tuple/,
    ],
    [
      'a dim with a leading zero (not a Python integer)',
      withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (024,), }"),
      /expected ','/,
    ],
    [
      'huge dim',
      withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }"),
      /too large|expected/,
    ],
  ])('%s', async (_name, bytes, message) => {
    const err = await rejection(() => parseNpy(bytes));
    expect(err.code).toBe('invalid_latent');
    expect(err.message).toMatch(message);
  });

  test('format versions other than 1.0, 2.0 and 3.0 are refused (1.9, 4.0)', async () => {
    for (const [major, minor] of [
      [1, 9],
      [4, 0],
      [0, 0],
    ]) {
      const bytes = Buffer.from(
        withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (24,), }"),
      );
      [bytes[6], bytes[7]] = [major, minor];
      const err = await rejection(() => parseNpy(bytes));
      expect(err.message).toMatch(new RegExp(`format version ${major}.${minor}; versions 1.0-3.0`));
    }
  });

  test('shape (24) without a comma is the integer 24, not a tuple: refused', async () => {
    const err = await rejection(() =>
      parseNpy(withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (24), }")),
    );
    expect(err.message).toMatch(/shape 24 is not a tuple/);
  });

  test('deep nesting is refused, not a stack overflow', async () => {
    const deep = '('.repeat(5000) + ')'.repeat(5000);
    const err = await rejection(() =>
      parseNpy(withHeader(`{'descr': '<f4', 'fortran_order': False, 'shape': ${deep}}`)),
    );
    expect(err.message).toMatch(/nesting too deep/);
  });
});

describe('writeNpy', () => {
  const tensor = { shape: [2, 3, 4], data: Float32Array.from(CUBE, (v) => v / 7) };

  test('round trips through parseNpy (float32 exactly, float16 rounded)', () => {
    expect(parseNpy(writeNpy(tensor))).toEqual(tensor);
    const half = parseNpy(writeNpy(tensor, 'float16'));
    half.data.forEach((v, i) => expect(v).toBe(halfBitsToFloat(floatToHalfBits(tensor.data[i]))));
  });

  test('header is 64-byte aligned, v1, little-endian, C order', () => {
    const bytes = writeNpy(tensor);
    const headerLength = bytes.readUInt16LE(8);
    expect((10 + headerLength) % 64).toBe(0);
    expect(bytes.subarray(10, 10 + headerLength).toString('latin1')).toMatch(
      /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3, 4\), \} *\n$/,
    );
    expect(bytes.length).toBe(10 + headerLength + 96);
  });

  test('refuses a tensor whose data does not fill its shape', async () => {
    const err = await rejection(() => writeNpy({ shape: [2, 3], data: new Float32Array(5) }));
    expect(err.code).toBe('internal');
  });

  const numpy = spawnSync('/usr/bin/python3', ['-c', 'import numpy'], { encoding: 'utf8' });
  (numpy.status === 0 ? test : test.skip)(
    'numpy loads what writeNpy writes (needs python3-numpy)',
    () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'npy-'));
      try {
        fs.writeFileSync(path.join(dir, 'f4.npy'), writeNpy(tensor));
        fs.writeFileSync(
          path.join(dir, 'f2.npy'),
          writeNpy({ shape: [3], data: Float32Array.from([1, -2.5, 65504]) }, 'float16'),
        );
        fs.writeFileSync(
          path.join(dir, 'v.npy'),
          writeNpy({ shape: [4], data: Float32Array.from([0, 1, 2, 3]) }),
        );
        const script =
          'import numpy as np, sys; d = sys.argv[1]; a = np.load(d + "/f4.npy"); ' +
          'print(a.dtype, a.shape, a.flags["C_CONTIGUOUS"], float(a[1, 2, 3]), ' +
          'np.load(d + "/f2.npy").tolist(), np.load(d + "/f2.npy").dtype, np.load(d + "/v.npy").shape)';
        const run = spawnSync('/usr/bin/python3', ['-c', script, dir], { encoding: 'utf8' });
        expect(run.stderr).toBe('');
        expect(run.stdout.trim()).toBe(
          `float32 (2, 3, 4) True ${Math.fround(123 / 7)} [1.0, -2.5, 65504.0] float16 (4,)`,
        );
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('parseNpy with a shape check', () => {
  it('hands the header shape to the check before converting, and lets its refusal through', () => {
    const file = writeNpy({ data: new Float32Array(2 * 4 * 7 * 7), shape: [2, 4, 7, 7] });
    const seen: number[][] = [];
    expect(parseNpy(file, (shape) => void seen.push(shape)).shape).toEqual([2, 4, 7, 7]);
    expect(seen).toEqual([[2, 4, 7, 7]]);
    const tooMany = () =>
      parseNpy(file, (shape) => checkLatentShape(shape, [4, 7, 7], { maxBatch: 1 }));
    expect(tooMany).toThrow(expect.objectContaining({ code: 'too_many_items' }));
  });
});
