import { prepareImage, sniffImageFormat } from '../../src/intake';
import { caseBytes, describeCases, GREY, MAX_PIXELS, rejection } from './helpers';

/**
 * BC-22 and friends: the format comes from the body's magic bytes, and anything that is not
 * PNG/JPEG/WebP/GIF is refused before sharp (and its SVG/XML parser) is ever called. sharp is
 * wrapped here so the test can count the calls.
 */

const sharpCalls: unknown[] = [];
jest.mock('sharp', () => {
  const real = jest.requireActual('sharp');
  const counted = (...args: unknown[]) => {
    sharpCalls.push(args[0]);
    return real(...args);
  };
  return Object.assign(counted, real);
});

const SVGS = [
  'bc22-svg-plain.svg',
  'bc22-svg-external-file-image.svg',
  'bc22-svg-external-http-image.svg',
  'bc22-svg-xxe.svg',
  'bc22-svg-xinclude.svg',
  'bc22-svg-billion-laughs.svg',
];

beforeEach(() => (sharpCalls.length = 0));

describeCases('SVG is refused by sniffing, sharp never runs (BC-22)', () => {
  test.each(SVGS)('%s: 415 listing the supported formats, no decoder call', async (name) => {
    const started = Date.now();
    const err = await rejection(() =>
      prepareImage(caseBytes(name), GREY, { maxPixels: MAX_PIXELS }),
    );
    expect([err.code, err.httpStatus]).toEqual(['unsupported_image_format', 415]);
    expect(err.message).toBe(
      'image format SVG/XML is not supported; this service accepts PNG, JPEG, WebP, GIF (raster only)',
    );
    expect(err.details).toEqual({ detected: 'SVG/XML', supported: ['png', 'jpeg', 'webp', 'gif'] });
    expect(sharpCalls).toHaveLength(0);
    expect(Date.now() - started).toBeLessThan(200);
  });

  test('a control PNG does reach sharp (the counter works)', async () => {
    await prepareImage(caseBytes('bc15-base.png'), GREY, { maxPixels: MAX_PIXELS });
    expect(sharpCalls.length).toBeGreaterThan(0);
  });

  test('not-an-image bodies never reach sharp either', async () => {
    for (const name of [
      'bc24-text-named.png',
      'bc24-ten-random-bytes.bin',
      'bc24-zero-bytes.png',
    ]) {
      await rejection(() => prepareImage(caseBytes(name), GREY, { maxPixels: MAX_PIXELS }));
    }
    expect(sharpCalls).toHaveLength(0);
  });
});

describe('sniffImageFormat', () => {
  const bytes = (...parts: Array<string | number[]>) =>
    Buffer.concat(
      parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))),
    );

  test.each([
    ['png', bytes([0x89], 'PNG\r\n\x1a\n', 'rest')],
    ['jpeg', bytes([0xff, 0xd8, 0xff, 0xe0])],
    ['gif', bytes('GIF89a...')],
    ['gif', bytes('GIF87a...')],
    ['webp', bytes('RIFF\0\0\0\0WEBPVP8L')],
  ])('recognises %s', (format, body) => {
    expect(sniffImageFormat(body)).toBe(format);
  });

  test.each([
    ['SVG/XML', bytes([0xef, 0xbb, 0xbf], '  \n<svg/>')],
    ['SVG/XML', bytes('<?xml version="1.0"?><svg/>')],
    ['SVG/XML', bytes('<!DOCTYPE svg><svg/>')],
    ['TIFF', bytes('II*\0\x08\0\0\0')],
    ['TIFF', bytes('MM\0*\0\0\0\x08')],
    ['BMP', bytes('BM\0\0\0\0')],
    ['HEIF/AVIF', bytes([0, 0, 0, 0x1c], 'ftypavif')],
    ['HEIF/AVIF', bytes([0, 0, 0, 0x18], 'ftypheic')],
    ['PDF', bytes('%PDF-1.7')],
    ['gzip (e.g. SVGZ)', bytes([0x1f, 0x8b, 8, 0])],
    ['PSD', bytes('8BPS')],
  ])('names and refuses %s', async (detected, body) => {
    const err = await rejection(() => sniffImageFormat(body));
    expect([err.code, err.details.detected]).toEqual(['unsupported_image_format', detected]);
  });

  test('a RIFF file that is not WebP (WAV) is unrecognised, as is a lone PNG prefix', async () => {
    for (const body of [bytes('RIFF\0\0\0\0WAVEfmt '), bytes([0x89], 'PNG')]) {
      const err = await rejection(() => sniffImageFormat(body));
      expect(err.code).toBe('unsupported_image_format');
      expect(err.details.detected).toBeNull();
      expect(err.message).toMatch(/^unrecognised image format \(first bytes [0-9a-f ]+\)/);
    }
  });

  test('empty is 400 empty_image; the Content-Type is never consulted (no parameter for it)', async () => {
    const err = await rejection(() => sniffImageFormat(Buffer.alloc(0)));
    expect([err.code, err.httpStatus]).toEqual(['empty_image', 400]);
    expect(sniffImageFormat.length).toBe(1);
  });

  test('accepts any Uint8Array view, not only Buffers', () => {
    const backing = new Uint8Array([0, 0, 0xff, 0xd8, 0xff, 0xe0]);
    expect(sniffImageFormat(backing.subarray(2))).toBe('jpeg');
  });
});
