import sharp, { type FitEnum, type Metadata, type OutputInfo } from 'sharp';
import { ServiceError } from '../errors';
import type { ImageSpec, ResizePolicy } from '../types';
import type { SupportedImageFormat } from './sniff';

/**
 * The only module that calls sharp (libvips). Its input has already passed sniffImageFormat, so
 * only PNG, JPEG, WebP and GIF bytes ever reach it.
 *
 * Pinned here, so behaviour does not drift with sharp's defaults:
 * - failOn: 'warning' - any decoder warning (corrupt scan, premature end, bad CRC) is an error.
 * - pages: 1, page: 0 - the first frame of animated GIF/WebP, never all frames stacked.
 * - autoOrient: true - EXIF orientation applied before resizing.
 * - limitInputPixels: the service's own limit, on top of the header check in geometry.ts.
 * - sharp.cache(false) - decoded images are not kept between requests, so memory stays flat.
 */

sharp.cache(false);

const FAIL_ON = 'warning' as const;
const WHITE = { r: 255, g: 255, b: 255, alpha: 1 };
const FIT: Record<ResizePolicy, keyof FitEnum> = {
  'center-crop': 'cover',
  pad: 'contain',
  stretch: 'fill',
};
const SHARP_FORMAT: Record<SupportedImageFormat, string> = {
  png: 'png',
  jpeg: 'jpeg',
  webp: 'webp',
  gif: 'gif',
};

export interface ImageHeader {
  format: SupportedImageFormat;
  /** Stored size (before orientation) of one frame. */
  width: number;
  height: number;
  /** Upright size, after EXIF orientation. */
  orientedWidth: number;
  orientedHeight: number;
  orientation?: number;
  frames: number;
  hasAlpha: boolean;
  space?: string;
  /** The embedded ICC profile, if any (it may be damaged or for another colour space). */
  icc?: Buffer;
  exif?: Buffer;
}

/** The decoder's message, short and single-line, for a client-facing error. */
function decoderMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s+/g, ' ').trim().slice(0, 200) || 'the decoder gave no reason';
}

function decodeError(err: unknown, format: string, stage: string, seconds = 0): ServiceError {
  const message = decoderMessage(err);
  if (/exceeds pixel limit/i.test(message)) {
    return new ServiceError('image_too_large', `${format} image exceeds the pixel limit`, {});
  }
  const variant = /Unsupported JPEG (data precision \d+|process)/i.exec(message)?.[0];
  if (variant) {
    // lossless or 12/16-bit JPEG: a valid file of a kind libjpeg here does not decode
    return new ServiceError(
      'unsupported_image_format',
      `${format} variant not supported (${variant}); send baseline or progressive 8-bit JPEG`,
      { detected: 'JPEG', reason: message },
    );
  }
  if (/timeout/i.test(message)) {
    const took = `decoding the ${format} image took longer than ${seconds} s`;
    return new ServiceError('limit_exceeded', took, { reason: message, limitSeconds: seconds });
  }
  return new ServiceError(
    'corrupt_image',
    `${format} image is corrupt or truncated (${stage}): ${message}`,
    { format, reason: message },
  );
}

/** Reads the header only: no pixel data is decoded here, whatever size the header claims. */
export async function readImageHeader(
  bytes: Buffer,
  format: SupportedImageFormat,
): Promise<ImageHeader> {
  let meta: Metadata;
  try {
    // No pixel limit here: sharp would refuse without the size, and geometry.ts names it.
    meta = await sharp(bytes, { failOn: FAIL_ON, limitInputPixels: false, pages: 1 }).metadata();
  } catch (err) {
    throw decodeError(err, format.toUpperCase(), 'header');
  }
  if (meta.format !== SHARP_FORMAT[format]) {
    throw new ServiceError(
      'unsupported_image_format',
      `image starts like ${format.toUpperCase()} but the decoder reads it as ${meta.format}`,
      { detected: meta.format, sniffed: format },
    );
  }
  const { width, height } = meta;
  if (!width || !height) {
    const name = format.toUpperCase();
    throw new ServiceError('corrupt_image', `${name} header has no size`, { format });
  }
  return {
    format,
    width,
    height,
    orientedWidth: meta.autoOrient?.width ?? width,
    orientedHeight: meta.autoOrient?.height ?? height,
    orientation: meta.orientation,
    frames: meta.pages ?? 1,
    hasAlpha: meta.hasAlpha ?? false,
    space: meta.space,
    icc: meta.icc,
    exif: meta.exif,
  };
}

export interface DecodeOptions {
  resize: ResizePolicy;
  maxPixels: number;
  timeoutSeconds: number;
}

/**
 * Decodes frame 1, upright, alpha composited on white, in sRGB, resized to the model's size:
 * returns interleaved 8-bit RGB [H, W, 3] (grey reduction happens in pixels.ts).
 */
export async function decodeToRgb(
  bytes: Buffer,
  header: ImageHeader,
  spec: ImageSpec,
  opts: DecodeOptions,
): Promise<Buffer> {
  const name = header.format.toUpperCase();
  let result: { data: Buffer; info: OutputInfo };
  try {
    result = await sharp(bytes, {
      failOn: FAIL_ON,
      limitInputPixels: opts.maxPixels,
      autoOrient: true,
      pages: 1,
      page: 0,
    })
      .flatten({ background: WHITE })
      .resize(spec.width, spec.height, {
        fit: FIT[opts.resize],
        position: 'centre',
        background: WHITE,
      })
      .removeAlpha()
      .toColourspace('srgb')
      .timeout({ seconds: opts.timeoutSeconds })
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw decodeError(err, name, 'pixel data', opts.timeoutSeconds);
  }
  const { data, info } = result;
  const expected = spec.width * spec.height * 3;
  const sized = info.width === spec.width && info.height === spec.height && info.channels === 3;
  if (!sized || data.length !== expected) {
    throw new ServiceError(
      'internal',
      `decoder returned ${info.width}x${info.height}x${info.channels} (${data.length} bytes); ` +
        `expected ${spec.width}x${spec.height}x3 (${expected})`,
    );
  }
  return data;
}
