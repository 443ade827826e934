import { ServiceError } from '../errors';
import { gifStatedSizes, inspectGif } from './gif-structure';
import { scanCoverage, walkJpeg } from './jpeg-structure';
import { inspectPng, PngUnsupported, pngStatedSize } from './png-structure';
import type { SupportedImageFormat } from './sniff';

/**
 * The container check: the file's own structure, walked before any decoder runs, so that a
 * truncated or damaged file is refused even where libvips would decode it without a warning
 * (a GIF whose frame data ends early, a PNG cut before IEND, a JPEG whose scans never reach
 * a component). WebP needs no walk here: libwebp refuses truncated and damaged files itself.
 *
 * Two steps, in this order: statedSizes (header fields only, for the pixel limit: a flood is
 * 413 at once, even when its body is also damaged), then inspectContainer (the whole walk).
 */

export interface ContainerReport {
  /** Frames of an animation, when the container says (APNG; sharp reports 1). */
  frames?: number;
  /** Accepted oddities the client is warned about. */
  notes: string[];
}

/** Every width x height the header claims (GIF: the screen and frame 1). */
export function statedSizes(bytes: Buffer, format: SupportedImageFormat): Array<[number, number]> {
  if (format === 'png') return [pngStatedSize(bytes)].filter((s) => s !== undefined);
  if (format === 'gif') return gifStatedSizes(bytes);
  if (format === 'jpeg') {
    const { width, height } = walkJpeg(bytes);
    return width > 0 && height > 0 ? [[width, height]] : [];
  }
  return [];
}

/**
 * Walks the file; returns its notes, or throws ServiceError: corrupt_image (422) naming the
 * chunk, block or component at fault, unsupported_image_format (415) for an APNG whose frame 1
 * the decoder cannot read.
 */
export async function inspectContainer(
  bytes: Buffer,
  format: SupportedImageFormat,
): Promise<ContainerReport> {
  try {
    if (format === 'png') return inspectPng(bytes);
    if (format === 'gif') return await inspectGif(bytes);
    if (format === 'jpeg') return inspectJpeg(bytes);
    return { notes: [] };
  } catch (err) {
    if (err instanceof PngUnsupported) {
      throw new ServiceError('unsupported_image_format', err.message, { detected: 'APNG' });
    }
    const reason = err instanceof Error ? err.message : String(err);
    throw new ServiceError(
      'corrupt_image',
      `${format.toUpperCase()} image is corrupt or truncated (structure): ${reason}`,
      { format, reason },
    );
  }
}

function inspectJpeg(bytes: Buffer): ContainerReport {
  const { fault, partial } = scanCoverage(walkJpeg(bytes));
  if (fault) throw new Error(fault);
  if (!partial) return { notes: [] };
  const note =
    `progressive JPEG stops before ${partial} is complete: decoded at the lower quality its ` +
    'scans carry (a short scan script, or a file cut between scans)';
  return { notes: [note] };
}
