import { ServiceError } from '../errors';
import { inspectGif } from './gif-structure';
import { scanCoverage } from './jpeg-structure';
import { inspectPng, PngUnsupported } from './png-structure';
import type { SupportedImageFormat } from './sniff';

/**
 * The container check: the file's own structure, walked before any decoder runs, so that a
 * truncated or damaged file is refused even where libvips would decode it without a warning
 * (a GIF whose frame data ends early, a PNG cut before IEND, a JPEG whose scans never reach
 * a component). WebP needs no walk here: libwebp refuses truncated and damaged files itself.
 */

export interface ContainerReport {
  /** The size the header states (0 when this format's walk does not read it). */
  width: number;
  height: number;
  /** Frames of an animation, when the container says (APNG; sharp reports 1). */
  frames?: number;
  /** Accepted oddities the client is warned about. */
  notes: string[];
}

/**
 * Returns the header's size and notes, or refuses: the size is for the pixel-limit check,
 * which must come first (a flood is 413 even when its body is also cut short), so structural
 * faults are returned as `fault` rather than thrown.
 */
export async function inspectContainer(
  bytes: Buffer,
  format: SupportedImageFormat,
): Promise<ContainerReport & { fault?: ServiceError }> {
  const name = format.toUpperCase();
  try {
    if (format === 'png') return inspectPng(bytes);
    if (format === 'gif') return await inspectGif(bytes);
    if (format === 'jpeg') {
      const { fault, partial } = scanCoverage(bytes);
      if (fault) throw new Error(`${fault} (the file ends early, or is damaged)`);
      const notes = partial
        ? [
            `progressive JPEG stops before ${partial} is complete: decoded at the lower ` +
              'quality its scans carry (a short scan script, or a file cut between scans)',
          ]
        : [];
      return { width: 0, height: 0, notes };
    }
    return { width: 0, height: 0, notes: [] };
  } catch (err) {
    if (err instanceof PngUnsupported) {
      const fault = new ServiceError('unsupported_image_format', err.message, { detected: 'APNG' });
      return { width: 0, height: 0, notes: [], fault };
    }
    const reason = err instanceof Error ? err.message : String(err);
    const fault = new ServiceError(
      'corrupt_image',
      `${name} image is corrupt or truncated (structure): ${reason}`,
      { format, reason },
    );
    return { ...readableSize(bytes, format), notes: [], fault };
  }
}

/** The header's stated size even when the body is faulty, so floods stay 413. */
function readableSize(bytes: Buffer, format: SupportedImageFormat) {
  if (format === 'png' && bytes.length >= 24 && bytes.toString('latin1', 12, 16) === 'IHDR') {
    return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
  }
  if (format === 'gif' && bytes.length >= 10) {
    return { width: bytes.readUInt16LE(6), height: bytes.readUInt16LE(8) };
  }
  return { width: 0, height: 0 };
}
