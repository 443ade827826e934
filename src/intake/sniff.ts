import { ServiceError } from '../errors';

/**
 * Which image format a body holds, decided from its first bytes only - never from the
 * Content-Type, a file name or a data-URL type. Runs before any decoder sees the bytes: the
 * prebuilt sharp also loads SVG, PDF, TIFF and HEIF, and an SVG (with its XML parser) must never
 * reach it (external entities, XInclude, billion laughs).
 */

/** The raster formats this service decodes. Anything else is 415 before any parser runs. */
export const SUPPORTED_IMAGE_FORMATS = ['png', 'jpeg', 'webp', 'gif'] as const;
export type SupportedImageFormat = (typeof SUPPORTED_IMAGE_FORMATS)[number];

const SUPPORTED_LIST = 'PNG, JPEG, WebP, GIF';

const ascii = (bytes: Buffer, start: number, end: number) =>
  bytes.subarray(start, end).toString('latin1');

const startsWith = (bytes: Buffer, ...prefix: number[]) =>
  bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);

const ACCEPTED: Array<[SupportedImageFormat, (b: Buffer) => boolean]> = [
  ['png', (b) => startsWith(b, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)],
  ['jpeg', (b) => startsWith(b, 0xff, 0xd8, 0xff)],
  ['gif', (b) => ['GIF87a', 'GIF89a'].includes(ascii(b, 0, 6))],
  // RIFF <size> WEBP <VP8 |VP8L|VP8X>: the chunk check keeps other RIFF files (WAV, AVI) out.
  ['webp', (b) => ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 16).match(/^WEBPVP8[ LX]$/) !== null],
];

/** Formats we recognise only to name them in the refusal. */
const REFUSED: Array<[string, (b: Buffer) => boolean]> = [
  ['TIFF', (b) => ['II*\0', 'MM\0*'].includes(ascii(b, 0, 4))],
  ['BMP', (b) => ascii(b, 0, 2) === 'BM'],
  ['HEIF/AVIF', (b) => /^ftyp(avi[fs]|hei[cxsm]|mif1|msf1)$/.test(ascii(b, 4, 12))],
  ['JPEG XL', (b) => startsWith(b, 0xff, 0x0a) || ascii(b, 4, 8) === 'JXL '],
  ['JPEG 2000', (b) => ascii(b, 4, 8) === 'jP  ' || startsWith(b, 0xff, 0x4f, 0xff, 0x51)],
  ['ICO', (b) => startsWith(b, 0x00, 0x00, 0x01, 0x00)],
  ['PSD', (b) => ascii(b, 0, 4) === '8BPS'],
  ['PDF', (b) => ascii(b, 0, 5) === '%PDF-'],
  ['gzip (e.g. SVGZ)', (b) => startsWith(b, 0x1f, 0x8b)],
  // SVG and other XML/HTML: text whose first non-blank character is '<' (after an optional BOM).
  ['SVG/XML', (b) => /^(\uFEFF)?\s*</.test(b.subarray(0, 256).toString('utf8'))],
];

/**
 * Returns the format of an image body, or throws: 400 empty_image for zero bytes, 415
 * unsupported_image_format (naming what was detected and the supported list) for anything else.
 * @example sniffImageFormat(fs.readFileSync('a.png')) // 'png'
 */
export function sniffImageFormat(bytes: Uint8Array): SupportedImageFormat {
  const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (body.length === 0) {
    throw new ServiceError('empty_image', 'image is empty (0 bytes); send the image file itself', {
      bytes: 0,
    });
  }
  for (const [format, test] of ACCEPTED) if (test(body)) return format;

  const supported = [...SUPPORTED_IMAGE_FORMATS];
  const refused = REFUSED.find(([, test]) => test(body));
  if (refused) {
    throw new ServiceError(
      'unsupported_image_format',
      `image format ${refused[0]} is not supported; this service accepts ${SUPPORTED_LIST}` +
        ' (raster only)',
      { detected: refused[0], supported },
    );
  }
  const head = body.subarray(0, 8);
  const hex = head.toString('hex').replace(/(..)(?!$)/g, '$1 ');
  throw new ServiceError(
    'unsupported_image_format',
    `unrecognised image format (first bytes ${hex}); this service accepts ${SUPPORTED_LIST}`,
    { detected: null, firstBytes: head.toString('hex'), supported },
  );
}
