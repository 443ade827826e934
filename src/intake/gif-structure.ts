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

  /** Reads the logical screen descriptor and skips the global colour table. */
  screen(): { width: number; height: number } {
    this.need(7, 'the logical screen descriptor');
    const width = this.bytes.readUInt16LE(this.pos);
    const height = this.bytes.readUInt16LE(this.pos + 2);
    const flags = this.bytes[this.pos + 4];
    this.pos += 7;
    if (flags & 0x80) {
      const size = 3 << ((flags & 7) + 1);
      this.need(size, 'the global colour table');
      this.pos += size;
    }
    return { width, height };
  }

  /**
   * Skips extensions (and the stray zero bytes some encoders leave between blocks) up to the
   * next image descriptor or the trailer; returns that introducer, consumed.
   */
  nextImageOrTrailer(): number {
    for (;;) {
      this.need(1, 'the block list (no trailer)');
      const introducer = this.bytes[this.pos++];
      if (introducer === IMAGE || introducer === TRAILER) return introducer;
      if (introducer === 0) continue;
      if (introducer !== EXTENSION) {
        throw new Error(`unexpected byte 0x${introducer.toString(16)} at ${this.pos - 1}`);
      }
      this.need(1, 'an extension label');
      this.pos++;
      this.skipSubBlocks('an extension');
    }
  }

  /** Skips a chain of data sub-blocks up to its zero-length terminator. */
  skipSubBlocks(what: string): void {
    for (let block = this.subBlock(what); block; block = this.subBlock(what));
  }

  /** The next sub-block's payload, or undefined at the chain's terminator. */
  subBlock(what: string): Buffer | undefined {
    this.need(1, what);
    const size = this.bytes[this.pos++];
    if (size === 0) return undefined;
    this.need(size, what);
    this.pos += size;
    return this.bytes.subarray(this.pos - size, this.pos);
  }
}

/**
 * Counts the pixels an LZW stream codes, fed one sub-block at a time. Only string lengths are
 * tracked, not the strings: enough to know where the data ends, without decoding colours.
 */
export class LzwPixelCounter {
  count = 0;
  /** True once the end code came, or `want` pixels were counted. */
  done = false;
  private readonly clear: number;
  private readonly lengths = new Int32Array(MAX_CODES).fill(1);
  private next: number;
  private size: number;
  private prev = -1;
  private bits = 0; // codes are packed least significant bit first
  private held = 0;

  constructor(
    private readonly minCodeSize: number,
    private readonly want: number,
  ) {
    this.clear = 1 << minCodeSize;
    this.next = this.clear + 2;
    this.size = minCodeSize + 1;
  }

  feed(data: Buffer): void {
    let at = 0;
    while (!this.done) {
      while (this.held < this.size && at < data.length) {
        this.bits |= data[at++] << this.held;
        this.held += 8;
      }
      if (this.held < this.size) return; // the rest of this code is in the next sub-block
      const code = this.bits & ((1 << this.size) - 1);
      this.bits >>>= this.size;
      this.held -= this.size;
      this.take(code);
    }
  }

  private take(code: number): void {
    if (code === this.clear) {
      this.next = this.clear + 2;
      this.size = this.minCodeSize + 1;
      this.prev = -1;
      return;
    }
    if (code === this.clear + 1) {
      this.done = true; // the end code
      return;
    }
    if (this.prev === -1) {
      if (code > this.clear) throw new Error(`LZW code ${code} before any string is defined`);
      this.count += 1;
    } else {
      const { next } = this;
      if (code > next || (code === next && next >= MAX_CODES)) {
        throw new Error(`LZW code ${code} is past the table (next ${next})`);
      }
      this.count += code === next ? this.lengths[this.prev] + 1 : this.lengths[code];
      if (next < MAX_CODES) {
        this.lengths[next] = this.lengths[this.prev] + 1;
        this.next++;
        if (this.next === 1 << this.size && this.size < 12) this.size++;
      }
    }
    this.prev = code;
    if (this.count >= this.want) this.done = true;
  }
}

/** Frame data fed to the counter between two turns of the event loop (a few milliseconds). */
const YIELD_BYTES = 512 * 1024;
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Walks the whole file; rejects with the reason when it is truncated or malformed. Counting a
 * large frame takes tens of milliseconds, so it gives the event loop a turn every 512 KiB.
 */
export async function inspectGif(bytes: Buffer): Promise<ContainerReport> {
  const r = new GifReader(bytes, 6);
  r.screen();
  let frames = 0;
  while (r.nextImageOrTrailer() === IMAGE) {
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
    const what = `frame ${frames + 1}'s image data`;
    if (frames > 0) {
      r.skipSubBlocks(what);
    } else {
      if (w === 0 || h === 0) throw new Error(`frame 1 is ${w}x${h}`);
      const counter = new LzwPixelCounter(codeSize, w * h);
      let fed = 0;
      for (let block = r.subBlock(what); block; block = r.subBlock(what)) {
        if (!counter.done) counter.feed(block);
        fed += block.length;
        if (fed >= YIELD_BYTES) {
          fed = 0;
          await nextTurn();
        }
      }
      if (counter.count < w * h) {
        throw new Error(`frame 1's data codes ${counter.count} of its ${w}x${h} = ${w * h} pixels`);
      }
    }
    frames++;
  }
  if (frames === 0) throw new Error('no image in the file');
  return { frames, notes: [] };
}

/**
 * The sizes a GIF's header claims, for the pixel limit, read before the walk: the logical
 * screen and frame 1's own size (a frame may be larger than the screen). Stops quietly where
 * the file does; the walk names that fault.
 */
export function gifStatedSizes(bytes: Buffer): Array<[number, number]> {
  const sizes: Array<[number, number]> = [];
  try {
    const r = new GifReader(bytes, 6);
    const { width, height } = r.screen();
    sizes.push([width, height]);
    if (r.nextImageOrTrailer() === IMAGE) {
      r.need(8, 'an image descriptor');
      sizes.push([bytes.readUInt16LE(r.pos + 4), bytes.readUInt16LE(r.pos + 6)]);
    }
  } catch {
    // truncated or malformed: the walk reports it once the sizes found so far are checked
  }
  return sizes;
}
