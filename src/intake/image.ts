import { ServiceError } from '../errors';
import type { ImageSpec, PreparedImage, ResizePolicy, Tensor } from '../types';
import { cmykProfileProblem, cmykWarning } from './cmyk';
import { inspectContainer, statedSizes } from './container';
import { decodeToRgb, readImageHeader, type ImageHeader } from './decoder';
import { readExifOrientation } from './exif';
import {
  checkGeometry,
  checkPixelCount,
  DEFAULT_MAX_ASPECT_RATIO,
  DEFAULT_MIN_SIDE,
} from './geometry';
import { repairMissingEoi, withoutIccProfile } from './jpeg-structure';
import { rgbToTensor } from './pixels';
import { sniffImageFormat } from './sniff';

/**
 * One image body (from any transport) -> the encoder's input. Order matters:
 *   1. sniff the format from the bytes (415 / 400 before any parser runs)
 *   2. walk the container's structure: a flood is 413, then truncated or damaged data 422
 *   3. read the header only; refuse pixel floods and bad geometry (413 / 422) before decoding
 *   4. decode frame 1 upright, flatten alpha onto white, sRGB, resize (422 if corrupt)
 *   5. reduce to the model's channel count and map to [-1, 1]
 * The policies are listed in docs/input-policy.md.
 */

/** pino-compatible: only what intake needs. */
export interface WarnLogger {
  warn(obj: object, msg: string): void;
}

export interface PrepareImageOptions {
  /** How to reach the model's size; 'center-crop' by default. */
  resize?: ResizePolicy;
  /** MAX_IMAGE_PIXELS: width x height of one frame as the header states it. */
  maxPixels: number;
  maxAspectRatio?: number;
  minSide?: number;
  /** Wall-clock cap on one decode (sharp timeout); 10 s by default. */
  timeoutSeconds?: number;
  /** Receives anomalies (odd EXIF, repaired JPEG) - the client sees them in warnings too. */
  log?: WarnLogger;
}

/** Notes on EXIF orientation that could not be applied as written. */
function orientationAnomaly(header: ImageHeader): string | undefined {
  const read = readExifOrientation(header.exif);
  const applied = header.orientation !== undefined && header.orientation !== 1;
  if (read.status === 'unreadable' && !applied) {
    return `EXIF block unreadable (${read.problem}); image used as stored, orientation not applied`;
  }
  if (read.status !== 'found') return undefined;
  if (read.orientation < 1 || read.orientation > 8) {
    return `EXIF orientation ${read.orientation} is not 1-8; image used as stored`;
  }
  if (read.orientation !== 1 && header.orientation !== read.orientation) {
    return `EXIF orientation ${read.orientation} could not be applied; image used as stored`;
  }
  return undefined;
}

/**
 * Validates and converts one image, or throws ServiceError: empty_image (400),
 * unsupported_image_format (415), image_too_large (413), image_geometry / corrupt_image (422).
 * @example const img = await prepareImage(body, model.imageSpec, { maxPixels: 25_000_000 });
 */
export async function prepareImage(
  bytes: Uint8Array,
  spec: ImageSpec,
  opts: PrepareImageOptions,
): Promise<PreparedImage> {
  const format = sniffImageFormat(bytes);
  let body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const warnings: string[] = [];
  const anomalies: string[] = [];

  for (const [width, height] of statedSizes(body, format)) {
    checkPixelCount(width, height, opts.maxPixels);
  }
  const container = await inspectContainer(body, format);
  anomalies.push(...container.notes);

  if (format === 'jpeg') {
    const repair = repairMissingEoi(body);
    body = repair.bytes;
    if (repair.repaired) anomalies.push('JPEG end marker (EOI) was missing and has been added');
  }

  const header = await readImageHeader(body, format);
  checkGeometry(header.orientedWidth, header.orientedHeight, {
    maxPixels: opts.maxPixels,
    maxAspectRatio: opts.maxAspectRatio ?? DEFAULT_MAX_ASPECT_RATIO,
    minSide: opts.minSide ?? DEFAULT_MIN_SIDE,
  });

  const orientation = orientationAnomaly(header);
  if (orientation) anomalies.push(orientation);
  const frames = Math.max(header.frames, container.frames ?? 1);
  if (frames > 1) {
    warnings.push(
      `animated ${format.toUpperCase()} has ${frames} frames: only frame 1 is used ` +
        `(frames ignored: ${frames - 1})`,
    );
  }
  if (header.hasAlpha) warnings.push('transparent pixels composited onto white');
  const cmyk = header.space === 'cmyk' && format === 'jpeg';
  let iccProblem = cmyk && header.icc ? cmykProfileProblem(header.icc) : undefined;
  if (iccProblem) body = withoutIccProfile(body);

  const decodeOptions = {
    resize: opts.resize ?? 'center-crop',
    maxPixels: opts.maxPixels,
    timeoutSeconds: opts.timeoutSeconds ?? 10,
  } as const;
  let rgb: Buffer;
  try {
    rgb = await decodeToRgb(body, header, spec, decodeOptions);
  } catch (err) {
    // lcms may still refuse a profile whose header and tag table look whole: use the generic one
    const refusedProfile = err instanceof ServiceError && /VipsIcc/.test(err.message);
    if (!(cmyk && header.icc && !iccProblem && refusedProfile)) throw err;
    iccProblem = 'was refused by the colour engine';
    body = withoutIccProfile(body);
    rgb = await decodeToRgb(body, header, spec, decodeOptions);
  }
  if (header.space === 'cmyk') warnings.push(cmykWarning(header.icc, iccProblem));
  if (anomalies.length) opts.log?.warn({ format, anomalies }, 'image accepted with anomalies');

  return {
    data: rgbToTensor(rgb, spec),
    sourceWidth: header.orientedWidth,
    sourceHeight: header.orientedHeight,
    sourceFormat: format,
    frames,
    warnings: [...anomalies, ...warnings],
  };
}

/**
 * Prepared images -> one encoder batch [N, C, H, W].
 * @example stackImages(await Promise.all(bodies.map((b) => prepareImage(b, spec, opts))), spec)
 */
export function stackImages(images: PreparedImage[], spec: ImageSpec): Tensor {
  const size = spec.channels * spec.height * spec.width;
  const data = new Float32Array(images.length * size);
  images.forEach((image, i) => {
    if (image.data.length !== size) {
      throw new ServiceError('internal', `image ${i} has ${image.data.length} values, not ${size}`);
    }
    data.set(image.data, i * size);
  });
  return { data, shape: [images.length, spec.channels, spec.height, spec.width] };
}
