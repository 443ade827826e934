import sharp from 'sharp';
import { prepareImage, stackImages } from '../../src/intake';
import {
  atSize,
  caseBytes,
  describeCases,
  GREY,
  MAX_PIXELS,
  px,
  rejection,
  RGB,
  toLevels,
} from './helpers';

/** BC-14 (animation), BC-24 (geometry, empty, not an image) and the three resize policies. */

describeCases('animated GIF and WebP: frame 1 only, with a warning (BC-14)', () => {
  test.each(['bc14-animated-3-frames.gif', 'bc14-animated-3-frames.webp'])('%s', async (name) => {
    const image = await atSize(caseBytes(name), 32, 32, 3);
    expect([image.sourceWidth, image.sourceHeight]).toEqual([32, 32]); // not 32x96
    expect(image.frames).toBe(3);
    expect(image.warnings.join()).toMatch(/3 frames: only frame 1 is used \(frames ignored: 2\)/);
    const l = toLevels(image.data);
    const rgbAt = (x: number, y: number) => [0, 1, 2].map((c) => px(l, 32, 32, x, y, c));
    const red = rgbAt(5, 5);
    expect(red[0]).toBeGreaterThan(200); // frame 1: red square top-left
    expect(Math.max(red[1], red[2])).toBeLessThan(60);
    for (const [x, y] of [
      [16, 16],
      [27, 27],
      [30, 2],
    ]) {
      expect(Math.min(...rgbAt(x, y))).toBeGreaterThan(230); // no green/blue square of frames 2-3
    }
  });

  test('at the model size the grey model sees frame 1 (dark top-left), not a stack', async () => {
    const image = await prepareImage(caseBytes('bc14-animated-3-frames.gif'), GREY, {
      maxPixels: MAX_PIXELS,
    });
    const l = toLevels(image.data);
    expect(px(l, 28, 28, 4, 4)).toBeLessThan(120); // red greys to 76
    expect(px(l, 28, 28, 24, 24)).toBeGreaterThan(230);
  });
});

describeCases('geometry and empty input (BC-24)', () => {
  test('1x1 is upscaled to a uniform image of the model size (grey 135)', async () => {
    const grey = await prepareImage(caseBytes('bc24-1x1.png'), GREY, { maxPixels: MAX_PIXELS });
    expect(new Set(toLevels(grey.data))).toEqual(new Set([135]));
    const rgb = await prepareImage(caseBytes('bc24-1x1.png'), RGB, { maxPixels: MAX_PIXELS });
    const l = toLevels(rgb.data);
    expect([l[0], l[784], l[1568]]).toEqual([200, 120, 40]);
    expect(new Set(l.slice(0, 784))).toEqual(new Set([200]));
  });

  test.each(['bc24-10000x1.png', 'bc24-1x10000.png'])(
    '%s is 422 naming the maximum aspect ratio',
    async (name) => {
      for (const resize of ['center-crop', 'pad', 'stretch'] as const) {
        const err = await rejection(() =>
          prepareImage(caseBytes(name), GREY, { maxPixels: MAX_PIXELS, resize }),
        );
        expect(err.code).toBe('image_geometry');
        expect(err.httpStatus).toBe(422);
        expect(err.message).toMatch(/aspect ratio of 10000:1; this service accepts at most 10:1/);
        expect(err.details).toMatchObject({ aspectRatio: 10000, maxAspectRatio: 10 });
      }
    },
  );

  test('the aspect limit is inclusive and configurable', async () => {
    const strip = (w: number, h: number) =>
      sharp({ create: { width: w, height: h, channels: 3, background: '#000' } })
        .png()
        .toBuffer();
    await expect(
      prepareImage(await strip(100, 10), GREY, { maxPixels: MAX_PIXELS }),
    ).resolves.toBeDefined();
    const err = await rejection(async () =>
      prepareImage(await strip(101, 10), GREY, { maxPixels: MAX_PIXELS }),
    );
    expect(err.code).toBe('image_geometry');
    await expect(
      prepareImage(await strip(101, 10), GREY, { maxPixels: MAX_PIXELS, maxAspectRatio: 20 }),
    ).resolves.toBeDefined();
  });

  test('empty body is 400 empty_image, distinct from 415 for text and random bytes', async () => {
    const empty = await rejection(() =>
      prepareImage(caseBytes('bc24-zero-bytes.png'), GREY, { maxPixels: MAX_PIXELS }),
    );
    expect([empty.code, empty.httpStatus]).toEqual(['empty_image', 400]);
    for (const name of ['bc24-text-named.png', 'bc24-ten-random-bytes.bin']) {
      const err = await rejection(() =>
        prepareImage(caseBytes(name), GREY, { maxPixels: MAX_PIXELS }),
      );
      expect([err.code, err.httpStatus]).toEqual(['unsupported_image_format', 415]);
      expect(err.message).toMatch(/PNG, JPEG, WebP, GIF/);
    }
  });
});

describe('resize policies', () => {
  /** 40x20: left half black, right half white, red 2-pixel frame would not matter. */
  const halves = () => {
    const rgb = Buffer.alloc(40 * 20 * 3);
    for (let y = 0; y < 20; y++)
      for (let x = 20; x < 40; x++) rgb.fill(255, 3 * (y * 40 + x), 3 * (y * 40 + x) + 3);
    return sharp(rgb, { raw: { width: 40, height: 20, channels: 3 } })
      .png()
      .toBuffer();
  };

  test('center-crop (default) keeps the middle: left half black, right half white', async () => {
    const l = toLevels((await prepareImage(await halves(), GREY, { maxPixels: MAX_PIXELS })).data);
    expect(px(l, 28, 28, 2, 14)).toBe(0);
    expect(px(l, 28, 28, 25, 14)).toBe(255);
    expect(px(l, 28, 28, 2, 0)).toBe(0); // no padding rows
  });

  test('pad letterboxes with white, keeping the whole picture', async () => {
    const l = toLevels(
      (await prepareImage(await halves(), GREY, { maxPixels: MAX_PIXELS, resize: 'pad' })).data,
    );
    expect(px(l, 28, 28, 2, 0)).toBe(255); // padding row above the picture
    expect(px(l, 28, 28, 2, 14)).toBe(0);
    expect(px(l, 28, 28, 25, 14)).toBe(255);
    expect(px(l, 28, 28, 2, 27)).toBe(255);
  });

  test('stretch fills the frame: black from top to bottom on the left', async () => {
    const l = toLevels(
      (await prepareImage(await halves(), GREY, { maxPixels: MAX_PIXELS, resize: 'stretch' })).data,
    );
    expect(px(l, 28, 28, 2, 0)).toBe(0);
    expect(px(l, 28, 28, 2, 27)).toBe(0);
    expect(px(l, 28, 28, 25, 27)).toBe(255);
  });

  test('non-square model sizes come out exactly at that size', async () => {
    const spec = { width: 32, height: 16, channels: 3 as const };
    for (const resize of ['center-crop', 'pad', 'stretch'] as const) {
      const image = await prepareImage(await halves(), spec, { maxPixels: MAX_PIXELS, resize });
      expect(image.data).toHaveLength(32 * 16 * 3);
    }
  });
});

test('stackImages builds an [N, C, H, W] batch in order', async () => {
  const white = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#fff' } })
    .png()
    .toBuffer();
  const black = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } })
    .png()
    .toBuffer();
  const images = await Promise.all(
    [white, black].map((b) => prepareImage(b, GREY, { maxPixels: MAX_PIXELS })),
  );
  const batch = stackImages(images, GREY);
  expect(batch.shape).toEqual([2, 1, 28, 28]);
  expect([batch.data[0], batch.data[783], batch.data[784], batch.data[1567]]).toEqual([
    1, 1, -1, -1,
  ]);
  expect(stackImages([], GREY).shape).toEqual([0, 1, 28, 28]);
});
