import { crc32 } from 'node:zlib';
import type { ContainerReport } from './container';

/**
 * PNG chunk structure, read before any decoder runs. libvips' PNG loader checks the CRCs of
 * the critical chunks only and stops reading at the last IDAT, so a file cut before IEND, or
 * with a damaged ancillary chunk, decodes without a warning. Here every chunk must be whole,
 * every CRC right, and the file must reach IEND (bytes after IEND are ignored).
 *
 * Animated PNG (APNG): an acTL chunk before IDAT, one fcTL per frame. When an fcTL comes before
 * the first IDAT, the default image is the animation's frame 1 and is used, as for GIF and
 * WebP; when fcTL chunks come only after it, frame 1 lives in fdAT chunks, which the decoder
 * cannot read, and the image is refused. The frame count is the fcTL chunks really present,
 * not what acTL claims, and an acTL with no frame at all leaves a plain PNG.
 */

const SIGNATURE_BYTES = 8;
/**
 * Chunk counts past which a file is refused: libpng's own default cap on ancillary chunks, and
 * a bound on all of them (a 16 MB file of 1.3 million empty chunks took 480 ms to walk here
 * and 4 s to decode). Encoders write image data in chunks of 8 KiB or more: a few thousand.
 */
const MAX_ANCILLARY_CHUNKS = 1000;
const MAX_CHUNKS = 65536;

export class PngUnsupported extends Error {}

export function inspectPng(bytes: Buffer): ContainerReport {
  const notes: string[] = [];
  let pos = SIGNATURE_BYTES;
  let animated = false;
  let frameControls = 0;
  let frameControlBeforeData = false;
  let seenData = false;
  let index = 0;
  let ancillary = 0;
  for (;;) {
    if (pos + 8 > bytes.length) {
      throw new Error(`file ends at byte ${bytes.length} before the IEND chunk (truncated)`);
    }
    const length = bytes.readUInt32BE(pos);
    const type = bytes.subarray(pos + 4, pos + 8).toString('latin1');
    if (!/^[A-Za-z]{4}$/.test(type)) {
      throw new Error(`chunk ${index} at byte ${pos} has no valid type (${JSON.stringify(type)})`);
    }
    const end = pos + 12 + length;
    if (length > 0x7fffffff || end > bytes.length) {
      throw new Error(`${type} chunk at byte ${pos} runs past the end of the file (truncated)`);
    }
    const stored = bytes.readUInt32BE(end - 4);
    if (crc32(bytes.subarray(pos + 4, end - 4)) !== stored) {
      throw new Error(`${type} chunk at byte ${pos} has a bad CRC`);
    }
    const data = bytes.subarray(pos + 8, end - 4);
    if (index === 0) {
      if (type !== 'IHDR' || length < 8) throw new Error(`first chunk is ${type}, not IHDR`);
    }
    if (type === 'IEND') {
      if (!seenData) throw new Error('it has no image data (no IDAT chunk before IEND)');
      break;
    }
    if (type === 'IDAT') seenData = true;
    if (type === 'acTL' && !seenData) animated = true;
    if (type === 'fcTL') {
      frameControls++;
      if (!seenData) frameControlBeforeData = true;
    }
    if (type === 'eXIf' && seenData) {
      notes.push('PNG eXIf chunk after the image data is ignored (PNG puts it before IDAT)');
    }
    if (type === 'eXIf' && data.subarray(0, 6).toString('latin1') === 'Exif\0\0') {
      notes.push(
        'PNG eXIf chunk starts with a JPEG "Exif" header, which PNG does not allow: ignored',
      );
    }
    pos = end;
    index++;
    if (type.charCodeAt(0) >= 0x61 && ++ancillary > MAX_ANCILLARY_CHUNKS) {
      throw new Error(`more than ${MAX_ANCILLARY_CHUNKS} ancillary chunks`);
    }
    if (index > MAX_CHUNKS) throw new Error(`more than ${MAX_CHUNKS} chunks`);
  }
  const frames = animated ? frameControls : 0;
  if (frames > 0 && !frameControlBeforeData) {
    throw new PngUnsupported(
      "animated PNG whose still (default) image is not the animation's frame 1; " +
        'send frame 1 as a still PNG',
    );
  }
  return { frames: Math.max(1, frames), notes };
}

/** The size IHDR claims, for the pixel limit, read before the walk (undefined without one). */
export function pngStatedSize(bytes: Buffer): [number, number] | undefined {
  if (bytes.length < 24 || bytes.toString('latin1', 12, 16) !== 'IHDR') return undefined;
  return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
}
