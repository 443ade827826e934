import type { ContainerReport } from './container';

/**
 * GIF block structure, read before any decoder runs. libvips' GIF loader (libnsgif) paints the
 * pixels a frame's LZW stream never delivers as background and reports no warning, so a GIF cut
 * mid-frame, or one whose LZW data ends early, would decode "cleanly" with part of the picture
 * missing; a 35-byte file can also claim a 5000x5000 frame and make the decoder fill 25 million
 * pixels. Here we walk every block and count the pixels frame 1's LZW stream really codes:
 * fewer than the frame's width x height is a truncated image.
 */

const TRAILER = 0x3b;
const EXTENSION = 0x21;
const IMAGE = 0x2c;
const MAX_CODES = 4096;

class GifReader {
  pos: number;
  constructor(
    readonly bytes: Buffer,
    start: number,
  ) {
    this.pos = start;
  }

  need(count: number, what: string): void {
    if (this.pos + count > this.bytes.length) {
      throw new Error(`file ends inside ${what} at byte ${this.pos} (truncated)`);
    }
  }

  /** A chain of data sub-blocks up to its zero-length terminator; returns their payloads. */
  subBlocks(what: string, keep: boolean): Buffer[] {
    const parts: Buffer[] = [];
    for (;;) {
      this.need(1, what);
      const size = this.bytes[this.pos++];
      if (size === 0) return parts;
      this.need(size, what);
      if (keep) parts.push(this.bytes.subarray(this.pos, this.pos + size));
      this.pos += size;
    }
  }
}

/**
 * How many pixels an LZW stream codes (stops counting at `want`). Only string lengths are
 * tracked, not the strings: enough to know where the data ends, without decoding colours.
 */
export function countLzwPixels(data: Buffer, minCodeSize: number, want: number): number {
  const clear = 1 << minCodeSize;
  const end = clear + 1;
  const lengths = new Int32Array(MAX_CODES).fill(1);
  let next = end + 1;
  let size = minCodeSize + 1;
  let prev = -1;
  let count = 0;
  let bits = 0; // codes are packed least significant bit first
  let held = 0;
  let at = 0;
  while (count < want) {
    while (held < size && at < data.length) {
      bits |= data[at++] << held;
      held += 8;
    }
    if (held < size) break; // the data ends mid-code
    const code = bits & ((1 << size) - 1);
    bits >>>= size;
    held -= size;
    if (code === clear) {
      next = end + 1;
      size = minCodeSize + 1;
      prev = -1;
      continue;
    }
    if (code === end) break;
    if (prev === -1) {
      if (code > clear) throw new Error(`LZW code ${code} before any string is defined`);
      count += 1;
      prev = code;
      continue;
    }
    if (code > next || (code === next && next >= MAX_CODES)) {
      throw new Error(`LZW code ${code} is past the table (next ${next})`);
    }
    count += code === next ? lengths[prev] + 1 : lengths[code];
    if (next < MAX_CODES) {
      lengths[next] = lengths[prev] + 1;
      next++;
      if (next === 1 << size && size < 12) size++;
    }
    prev = code;
  }
  return count;
}

/** Walks the whole file; throws Error with the reason when it is truncated or malformed. */
export function inspectGif(bytes: Buffer): ContainerReport {
  const r = new GifReader(bytes, 6);
  r.need(7, 'the logical screen descriptor');
  const screenWidth = bytes.readUInt16LE(r.pos);
  const screenHeight = bytes.readUInt16LE(r.pos + 2);
  const flags = bytes[r.pos + 4];
  r.pos += 7;
  if (flags & 0x80) {
    const size = 3 << ((flags & 7) + 1);
    r.need(size, 'the global colour table');
    r.pos += size;
  }
  let frames = 0;
  for (;;) {
    r.need(1, 'the block list (no trailer)');
    const introducer = bytes[r.pos++];
    if (introducer === TRAILER) break;
    if (introducer === EXTENSION) {
      r.need(1, 'an extension label');
      r.pos++;
      r.subBlocks('an extension', false);
      continue;
    }
    if (introducer !== IMAGE) {
      throw new Error(`unexpected byte 0x${introducer.toString(16)} at ${r.pos - 1}`);
    }
    r.need(10, 'an image descriptor');
    const w = bytes.readUInt16LE(r.pos + 4);
    const h = bytes.readUInt16LE(r.pos + 6);
    const local = bytes[r.pos + 8];
    r.pos += 9;
    if (local & 0x80) {
      const size = 3 << ((local & 7) + 1);
      r.need(size, 'a local colour table');
      r.pos += size;
    }
    r.need(1, 'the LZW code size');
    const codeSize = bytes[r.pos++];
    if (codeSize < 2 || codeSize > 8) throw new Error(`LZW minimum code size ${codeSize}`);
    const first = frames === 0;
    const data = r.subBlocks(`frame ${frames + 1}'s image data`, first);
    if (first) {
      if (w === 0 || h === 0) throw new Error(`frame 1 is ${w}x${h}`);
      const coded = countLzwPixels(Buffer.concat(data), codeSize, w * h);
      if (coded < w * h) {
        throw new Error(`frame 1's data codes ${coded} of its ${w}x${h} = ${w * h} pixels`);
      }
    }
    frames++;
  }
  if (frames === 0) throw new Error('no image in the file');
  return { width: screenWidth, height: screenHeight, frames, notes: [] };
}
