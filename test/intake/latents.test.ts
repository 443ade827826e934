import { checkLatent, latentToJson, parseLatentJson, parseNpy } from '../../src/intake';
import { caseBytes, describeCases, LATENT_SHAPE, rejection } from './helpers';

/** BC-18 JSON latents and the model-shape check shared by both latent forms. */

const json = (name: string) => JSON.parse(caseBytes(name).toString('utf8'));

describeCases('JSON latents (BC-18)', () => {
  test('float32 JSON equals the .npy control exactly', () => {
    const fromJson = checkLatent(parseLatentJson(json('bc18-latent-f4.json')), LATENT_SHAPE);
    const fromNpy = parseNpy(caseBytes('bc18-latent-f4.npy'));
    expect(fromJson.shape).toEqual([1, 4, 7, 7]);
    expect(Array.from(fromJson.data)).toEqual(Array.from(fromNpy.data));
  });

  test('float64 JSON is 400 naming float64 and the accepted dtypes', async () => {
    const err = await rejection(() => parseLatentJson(json('bc18-latent-f8.json')));
    expect([err.code, err.httpStatus]).toEqual(['unsupported_dtype', 400]);
    expect(err.message).toBe('latent dtype "float64" is not supported; accepted: float32, float16');
  });

  test('big-endian .npy values are byte-swapped, not read as little-endian (no huge values or NaN)', () => {
    const be = checkLatent(parseNpy(caseBytes('bc18-latent-f4-big-endian.npy')), LATENT_SHAPE);
    for (const v of be.data) expect(Math.abs(v)).toBeLessThan(10);
  });
});

describe('parseLatentJson and latentToJson', () => {
  const tensor = {
    shape: [1, 4, 7, 7],
    data: Float32Array.from({ length: 196 }, (_, i) => Math.sin(i) * 3),
  };

  test('round trip in float32 (exact) and float16 (rounded)', () => {
    expect(parseLatentJson(latentToJson(tensor))).toEqual(tensor);
    const half = parseLatentJson(latentToJson(tensor, 'float16'));
    expect(half.shape).toEqual(tensor.shape);
    half.data.forEach((v, i) =>
      expect(Math.abs(v - tensor.data[i])).toBeLessThanOrEqual(3 * 2 ** -11),
    );
  });

  test('data is little-endian base64', () => {
    const j = latentToJson({ shape: [2], data: Float32Array.from([1, -2]) });
    expect(j).toEqual({
      shape: [2],
      dtype: 'float32',
      data: Buffer.from('0000803f000000c0', 'hex').toString('base64'),
    });
  });

  test.each([
    ['not an object', [1, 2], 'invalid_latent', /must be an object/],
    ['null', null, 'invalid_latent', /must be an object/],
    [
      'no shape',
      { dtype: 'float32', data: '' },
      'invalid_latent',
      /shape undefined must be a list/,
    ],
    [
      'fractional dim',
      { shape: [1.5], dtype: 'float32', data: '' },
      'invalid_latent',
      /shape \[1.5\]/,
    ],
    [
      'string dims',
      { shape: ['4'], dtype: 'float32', data: '' },
      'invalid_latent',
      /shape \["4"\]/,
    ],
    ['no dtype', { shape: [1], data: 'AACAPw==' }, 'unsupported_dtype', /dtype undefined/],
    ['int32', { shape: [1], dtype: 'int32', data: 'AACAPw==' }, 'unsupported_dtype', /"int32"/],
    [
      'numpy spelling',
      { shape: [1], dtype: '<f4', data: 'AACAPw==' },
      'unsupported_dtype',
      /"<f4"/,
    ],
    [
      'data not a string',
      { shape: [1], dtype: 'float32', data: [1] },
      'invalid_latent',
      /data must be a base64 string/,
    ],
    [
      'bad base64',
      { shape: [1], dtype: 'float32', data: 'AAC$Pw==' },
      'invalid_base64',
      /latent data: invalid character at position 3/,
    ],
    [
      'data URL',
      { shape: [1], dtype: 'float32', data: 'data:image/png;base64,AACAPw==' },
      'invalid_base64',
      /data URL is not accepted/,
    ],
    [
      'too short',
      { shape: [2], dtype: 'float32', data: 'AACAPw==' },
      'invalid_latent',
      /holds 4 bytes but shape \[2\] of float32 needs 8/,
    ],
    [
      'empty data',
      { shape: [1, 4, 7, 7], dtype: 'float32', data: '' },
      'invalid_latent',
      /holds 0 bytes .* needs 784/,
    ],
  ])('%s', async (_name, value, code, message) => {
    const err = await rejection(() => parseLatentJson(value));
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
  });
});

describe('checkLatent', () => {
  const latent = (shape: number[], fill = 0.5) => ({
    shape,
    data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(fill),
  });

  test('[N, 4, 7, 7] passes; [4, 7, 7] becomes N = 1', () => {
    expect(checkLatent(latent([3, 4, 7, 7]), LATENT_SHAPE).shape).toEqual([3, 4, 7, 7]);
    expect(checkLatent(latent([4, 7, 7]), LATENT_SHAPE).shape).toEqual([1, 4, 7, 7]);
  });

  test.each([[[1, 4, 8, 8]], [[1, 7, 7, 4]], [[196]], [[0, 4, 7, 7]], [[1, 1, 4, 7, 7]], [[4, 7]]])(
    '%j is 400 naming expected and actual shapes',
    async (shape) => {
      const err = await rejection(() => checkLatent(latent(shape), LATENT_SHAPE));
      expect(err.code).toBe('invalid_latent');
      expect(err.message).toBe(
        `latent shape [${shape.join(', ')}] does not match this model's latent [N, 4, 7, 7] with ` +
          'N >= 1 (or [4, 7, 7] for one latent)',
      );
    },
  );

  test.each([NaN, Infinity, -Infinity])('%s anywhere is 400', async (bad) => {
    const z = latent([2, 4, 7, 7]);
    z.data[150] = bad;
    const err = await rejection(() => checkLatent(z, LATENT_SHAPE));
    expect(err.code).toBe('invalid_latent');
    expect(err.message).toBe(
      `latent value ${bad} at flat index 150 (C order) is not finite; every value must be a finite number`,
    );
  });

  test('too many latents is 413 too_many_items when a limit is given', async () => {
    const err = await rejection(() =>
      checkLatent(latent([5, 4, 7, 7]), LATENT_SHAPE, { maxBatch: 4 }),
    );
    expect([err.code, err.httpStatus]).toEqual(['too_many_items', 413]);
  });
});
