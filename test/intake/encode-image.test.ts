import sharp from 'sharp';
import { encodeImage, prepareImage, tensorToPixels } from '../../src/intake';
import { GREY, MAX_PIXELS, rejection, RGB, toLevels } from './helpers';

/** Model output -> PNG / JPEG / WebP, and back through intake. */

const ramp = (channels: 1 | 3) =>
  Float32Array.from({ length: channels * 28 * 28 }, (_, i) => (i % 256) / 127.5 - 1);

test('pixel mapping: clamp, then round((x + 1) * 127.5)', () => {
  const spec = { width: 6, height: 1, channels: 1 as const };
  const out = tensorToPixels(Float32Array.from([-5, -1, 0, 0.00393, 1, 7]), spec);
  expect(Array.from(out)).toEqual([0, 0, 128, 128, 255, 255]);
  expect(
    Array.from(
      tensorToPixels(Float32Array.from([-Infinity, Infinity, -0.999, 0.999, 0.5, -0.5]), spec),
    ),
  ).toEqual([0, 255, 0, 255, 191, 64]);
});

test('NaN in model output is an error, never a black pixel', async () => {
  const data = new Float32Array(784);
  data[30] = NaN;
  const err = await rejection(() => encodeImage(data, GREY, 'png'));
  expect(err.code).toBe('inference_failed');
  expect(err.message).toBe('model output is NaN at channel 0, row 1, column 2');
});

test('wrong tensor length is refused', async () => {
  expect((await rejection(() => encodeImage(new Float32Array(783), GREY, 'png'))).code).toBe(
    'internal',
  );
});

test.each([
  [GREY, 'png'],
  [RGB, 'png'],
  [GREY, 'webp'],
  [RGB, 'webp'],
])('%j %s is lossless: decoding gives back the exact levels', async (spec, format) => {
  const data = ramp(spec.channels);
  const file = await encodeImage(data, spec, format as 'png' | 'webp');
  const meta = await sharp(file).metadata();
  expect([meta.format, meta.width, meta.height]).toEqual([format, 28, 28]);
  const back = await prepareImage(file, spec, { maxPixels: MAX_PIXELS });
  expect(toLevels(back.data)).toEqual(toLevels(data));
});

test('grey PNG is a 1-channel file; JPEG is close to the source', async () => {
  const png = await encodeImage(ramp(1), GREY, 'png');
  expect((await sharp(png).metadata()).channels).toBe(1);
  // A smooth gradient (x + y per channel): JPEG's home ground.
  const smooth = Float32Array.from(
    { length: 3 * 784 },
    (_, i) => ((i % 28) + (((i / 28) | 0) % 28)) / 54 - 0.5,
  );
  const jpeg = await encodeImage(smooth, RGB, 'jpeg', { quality: 95 });
  expect((await sharp(jpeg).metadata()).format).toBe('jpeg');
  const back = toLevels((await prepareImage(jpeg, RGB, { maxPixels: MAX_PIXELS })).data);
  const source = toLevels(smooth);
  const mean = back.reduce((s, v, i) => s + Math.abs(v - source[i]), 0) / back.length;
  expect(mean).toBeLessThan(3);
});
