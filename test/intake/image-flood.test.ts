import sharp from 'sharp';
import { prepareImage } from '../../src/intake';
import { caseBytes, describeCases, GREY, MAX_PIXELS, rejection } from './helpers';

/**
 * BC-01: pixel floods are refused from the header, quickly and with flat memory. A decode of
 * the 16000x16000 PNG would need 256 MB as grey (768 MB as RGB); a 64250x64250 one 4 GB.
 */

const FLOODS: Array<[string, number]> = [
  ['bc01-flood-jpeg-claims-64250x64250.jpg', 64250],
  ['bc01-flood-png-claims-64250x64250.png', 64250],
  ['bc01-flood-png-valid-16000x16000.png', 16000],
];

const MB = 1024 * 1024;

describeCases('pixel floods (BC-01)', () => {
  test.each(FLOODS)('%s is 413 naming its size and the limit, within 1 s', async (name, side) => {
    const started = Date.now();
    const err = await rejection(() =>
      prepareImage(caseBytes(name), GREY, { maxPixels: MAX_PIXELS }),
    );
    expect(Date.now() - started).toBeLessThan(1000);
    expect([err.code, err.httpStatus]).toEqual(['image_too_large', 413]);
    expect(err.message).toBe(
      `image is ${side}x${side} = ${side * side} pixels; this service accepts at most ` +
        `${MAX_PIXELS} (MAX_IMAGE_PIXELS)`,
    );
    expect(err.details).toEqual({
      width: side,
      height: side,
      pixels: side * side,
      limit: MAX_PIXELS,
    });
  });

  test('the valid 16000x16000 PNG sent 8 times in parallel (4 rounds): all 413, RSS flat', async () => {
    const bytes = caseBytes('bc01-flood-png-valid-16000x16000.png');
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    try {
      for (let round = 0; round < 4; round++) {
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, () => prepareImage(bytes, GREY, { maxPixels: MAX_PIXELS })),
        );
        for (const r of results) {
          expect(r.status).toBe('rejected');
          expect((r as PromiseRejectedResult).reason.code).toBe('image_too_large');
        }
      }
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    // One decode alone would add >= 256 MB; allow GC noise and sharp's thread stacks.
    expect((peak - rssBefore) / MB).toBeLessThan(64);
  });

  test('a lower configured limit applies to ordinary images too', async () => {
    const err = await rejection(() =>
      prepareImage(caseBytes('bc13-base.jpg'), GREY, { maxPixels: 96 * 96 - 1 }),
    );
    expect(err.code).toBe('image_too_large');
    expect(err.message).toMatch(/^image is 96x96 = 9216 pixels; this service accepts at most 9215/);
  });
});

describe('floods in the other formats are refused from the header as well', () => {
  const small = () => sharp({ create: { width: 16, height: 16, channels: 3, background: '#888' } });

  test('GIF whose screen and frame claim 65000x65000', async () => {
    const gif = Buffer.from(await small().gif().toBuffer());
    const frame = gif.indexOf(0x2c, 13); // image descriptor (after the colour table)
    for (const at of [6, 8, frame + 5, frame + 7]) gif.writeUInt16LE(65000, at);
    const err = await rejection(() => prepareImage(gif, GREY, { maxPixels: MAX_PIXELS }));
    expect(err.code).toBe('image_too_large');
    expect(err.message).toMatch(/^image is 65000x65000 = 4225000000 pixels/);
  });

  test('lossless WebP whose VP8L header claims 16000x16000', async () => {
    const webp = Buffer.from(await small().webp({ lossless: true }).toBuffer());
    expect(webp.toString('latin1', 12, 16)).toBe('VP8L');
    const sizeBits = 15999 | (15999 << 14); // 14 bits each of width - 1 and height - 1
    webp.writeUInt32LE(((webp.readUInt32LE(21) & 0xf0000000) | sizeBits) >>> 0, 21);
    const err = await rejection(() => prepareImage(webp, GREY, { maxPixels: MAX_PIXELS }));
    expect(err.code).toBe('image_too_large');
    expect(err.message).toMatch(/^image is 16000x16000 = 256000000 pixels/);
  });
});
