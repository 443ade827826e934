import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { inspectGif, LzwPixelCounter } from '../../src/intake/gif-structure';
import { scanCoverage, walkJpeg } from '../../src/intake/jpeg-structure';
import { atSize, rejection, toLevels } from './helpers';

/**
 * The container walk (src/intake/container.ts): files libvips decodes without a warning
 * although data is missing - a GIF whose frame data ends early, a PNG cut before IEND or with
 * a damaged chunk, a progressive JPEG cut between scans with EOI put back - are 422
 * corrupt_image; intact files of every shape still pass, and floods stay 413.
 */

const noise = (width: number, height: number, channels: 1 | 3 | 4, seed = 1) => {
  const data = Buffer.alloc(width * height * channels);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  return sharp(data, { raw: { width, height, channels } });
};

// --- GIF --------------------------------------------------------------------------------------

/** Byte ranges of the first frame's LZW sub-blocks: [start of the code-size byte, terminator]. */
function firstFrameData(gif: Buffer): { codeSize: number; blocks: number[]; end: number } {
  let pos = 13 + (gif[10] & 0x80 ? 3 << ((gif[10] & 7) + 1) : 0);
  while (gif[pos] === 0x21) {
    pos += 2;
    while (gif[pos] !== 0) pos += gif[pos] + 1;
    pos++;
  }
  expect(gif[pos]).toBe(0x2c);
  const local = gif[pos + 9];
  pos += 10 + (local & 0x80 ? 3 << ((local & 7) + 1) : 0);
  const codeSize = gif[pos++];
  const blocks: number[] = [];
  while (gif[pos] !== 0) {
    blocks.push(pos);
    pos += gif[pos] + 1;
  }
  return { codeSize, blocks, end: pos };
}

describe('GIF: frame 1 must code all its pixels', () => {
  const shapes: Array<[number, number]> = [
    [1, 1],
    [3, 5],
    [64, 64],
    [300, 200],
  ];

  test.each(shapes)('intact %ix%i GIFs (noise, flat, interlaced) are accepted', async (w, h) => {
    const variants = [
      await noise(w, h, 3).gif().toBuffer(),
      await noise(w, h, 1).gif({ progressive: true }).toBuffer(),
      await sharp({ create: { width: w, height: h, channels: 3, background: '#3a6' } })
        .gif()
        .toBuffer(),
      await noise(w, h, 4).gif().toBuffer(),
    ];
    for (const gif of variants) await expect(atSize(gif, w, h)).resolves.toBeDefined();
  });

  test('a frame cut after any sub-block, then closed with a terminator and trailer, is 422', async () => {
    const gif = await noise(128, 128, 3).gif().toBuffer();
    const { blocks } = firstFrameData(gif);
    expect(blocks.length).toBeGreaterThan(4);
    for (const cut of [1, 2, Math.floor(blocks.length / 2), blocks.length - 1]) {
      const closed = Buffer.concat([gif.subarray(0, blocks[cut]), Buffer.from([0x00, 0x3b])]);
      const err = await rejection(() => atSize(closed, 128, 128));
      expect([cut, err.code, err.message]).toEqual([
        cut,
        'corrupt_image',
        expect.stringMatching(/frame 1's data codes \d+ of its 128x128 = 16384 pixels/),
      ]);
    }
  });

  test('a file cut anywhere is 422, never accepted', async () => {
    const gif = await noise(64, 64, 3).gif().toBuffer();
    for (let cut = 14; cut < gif.length; cut += Math.ceil(gif.length / 40)) {
      const err = await rejection(() => atSize(gif.subarray(0, cut), 64, 64));
      expect([cut, err.httpStatus]).toEqual([cut, 422]);
    }
    const noTrailer = gif.subarray(0, gif.length - 1);
    expect((await rejection(() => atSize(noTrailer, 64, 64))).code).toBe('corrupt_image');
  });

  /** A 2-colour GIF whose LZW stream is clear, `pixels` literal codes, end (3-bit codes). */
  function tinyGif(width: number, height: number, pixels: number): Buffer {
    const codes = [4, ...Array.from({ length: pixels }, (_, i) => i % 2), 5];
    let bits = 0;
    let held = 0;
    let size = 3;
    let next = 6;
    const out: number[] = [];
    codes.forEach((code, i) => {
      bits |= code << held;
      held += size;
      while (held >= 8) {
        out.push(bits & 0xff);
        bits >>>= 8;
        held -= 8;
      }
      // the decoder adds a table entry per code after the first literal
      if (i >= 2 && code !== 5 && next < 4096 && ++next === 1 << size && size < 12) size++;
    });
    if (held > 0) out.push(bits & 0xff);
    const blocks: number[] = [];
    for (let i = 0; i < out.length; i += 255) {
      const part = out.slice(i, i + 255);
      blocks.push(part.length, ...part);
    }
    const u16 = (v: number) => [v & 0xff, v >> 8];
    return Buffer.from([
      ...Buffer.from('GIF89a'),
      ...u16(width), ...u16(height), 0x80, 0, 0, // screen, global table of 2
      0, 0, 0, 255, 255, 255,
      0x2c, 0, 0, 0, 0, ...u16(width), ...u16(height), 0,
      2, ...blocks, 0, 0x3b,
    ]); // prettier-ignore
  }

  test('LZW data that ends early (end code after N of the pixels) is 422 for every N', async () => {
    // tinyGif's frame data: code size at byte 29, one sub-block (its length at 30)
    const coded = (gif: Buffer) => {
      const counter = new LzwPixelCounter(gif[29], 64);
      counter.feed(gif.subarray(31, 31 + gif[30]));
      return counter.count;
    };
    expect([coded(tinyGif(8, 8, 64)), coded(tinyGif(8, 8, 32))]).toEqual([64, 32]);
    await expect(atSize(tinyGif(8, 8, 64), 8, 8)).resolves.toBeDefined();
    for (const pixels of [0, 1, 8, 32, 63]) {
      const err = await rejection(() => atSize(tinyGif(8, 8, pixels), 8, 8));
      expect([pixels, err.code]).toEqual([pixels, 'corrupt_image']);
    }
  });

  test('counting a large frame gives the event loop a turn every 512 KiB of data', async () => {
    const gif = await noise(2600, 2600, 3).gif({ dither: 1 }).toBuffer();
    expect(gif.length).toBeGreaterThan(2 * 512 * 1024);
    let turns = 0;
    let running = true;
    const spin = () => {
      if (!running) return;
      turns++;
      setImmediate(spin);
    };
    setImmediate(spin);
    const report = await inspectGif(gif);
    const during = turns;
    running = false;
    expect(report).toEqual({ frames: 1, notes: [] });
    expect(during).toBeGreaterThanOrEqual(Math.floor(gif.length / (512 * 1024)) - 1);
  });

  test('a stray zero byte between blocks is tolerated; a missing trailer is not', async () => {
    const gif = await noise(16, 16, 3).gif().toBuffer();
    const stray = Buffer.concat([gif.subarray(0, -1), Buffer.from([0x00, 0x3b])]);
    await expect(atSize(stray, 16, 16)).resolves.toBeDefined();
    const err = await rejection(() => atSize(gif.subarray(0, -1), 16, 16));
    expect(err.message).toMatch(/no trailer/);
  });

  test('a tiny file claiming a frame at the pixel limit is refused without decoding it', async () => {
    const claim = tinyGif(5000, 5000, 1); // 25,000,000 pixels: at the limit, 1 of them coded
    const started = process.hrtime.bigint();
    const err = await rejection(() => atSize(claim, 28, 28));
    expect(err.code).toBe('corrupt_image');
    expect(err.message).toContain('codes 1 of its 5000x5000');
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(1000);
    // over the limit it is a flood first: 413, whatever the body, by screen or by frame size
    const flood = tinyGif(6000, 6000, 1);
    expect((await rejection(() => atSize(flood, 28, 28))).code).toBe('image_too_large');
    const bigFrame = Buffer.from(tinyGif(60, 60, 1));
    bigFrame.writeUInt16LE(65535, 6 + 7 + 6 + 5); // frame 1's width and height, screen 60x60
    bigFrame.writeUInt16LE(65535, 6 + 7 + 6 + 7);
    const cut = bigFrame.subarray(0, bigFrame.length - 3);
    const byFrame = await rejection(() => atSize(cut, 28, 28));
    expect(byFrame.message).toMatch(/^image is 65535x65535 = 4294836225 pixels/);
  });
});

// --- PNG --------------------------------------------------------------------------------------

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** Splits a PNG into [signature, chunks...] so tests can rebuild it. */
function pngChunks(png: Buffer): Buffer[] {
  const parts = [png.subarray(0, 8)];
  for (let pos = 8; pos < png.length;) {
    const end = pos + 12 + png.readUInt32BE(pos);
    parts.push(png.subarray(pos, end));
    pos = end;
  }
  return parts;
}

const chunkType = (chunk: Buffer) => chunk.subarray(4, 8).toString('latin1');
const u32s = (...values: number[]) => {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeUInt32BE(v, i * 4));
  return b;
};
/** fcTL for a full-size frame: sequence, width, height, x, y, delay 1/10, dispose, blend. */
const fcTL = (seq: number, w: number, h: number) =>
  pngChunk('fcTL', Buffer.concat([u32s(seq, w, h, 0, 0), Buffer.from([0, 1, 0, 10, 0, 0])]));

describe('PNG: every chunk whole, every CRC right, up to IEND', () => {
  let png: Buffer;
  beforeAll(async () => {
    png = await noise(40, 30, 3).png().withMetadata({ density: 96 }).toBuffer();
  });

  test('the intact file, and one with bytes after IEND, are accepted', async () => {
    await expect(atSize(png, 40, 30)).resolves.toBeDefined();
    const trailing = Buffer.concat([png, Buffer.from('after the end')]);
    await expect(atSize(trailing, 40, 30)).resolves.toBeDefined();
  });

  test('a PNG without image data (no IDAT) is 422 saying so', async () => {
    const noData = Buffer.concat(pngChunks(png).filter((c) => chunkType(c) !== 'IDAT'));
    const err = await rejection(() => atSize(noData, 40, 30));
    expect(err.message).toMatch(/no image data \(no IDAT chunk before IEND\)/);
  });

  test('a cut anywhere is 422, including the ones that only lose IEND', async () => {
    const cuts = [png.length - 1, png.length - 6, png.length - 12, png.length - 13, 40, 20];
    for (let cut = 33; cut < png.length; cut += 97) cuts.push(cut);
    for (const cut of cuts) {
      const err = await rejection(() => atSize(png.subarray(0, cut), 40, 30));
      expect([cut, err.code]).toEqual([cut, 'corrupt_image']);
    }
  });

  test('up to 1000 ancillary chunks pass; more are refused before decoding (libpng caps them too)', async () => {
    const [signature, ihdr, ...rest] = pngChunks(png);
    const text = pngChunk('tEXt', Buffer.from('k\0v'));
    const withTexts = (n: number) =>
      Buffer.concat([signature, ihdr, ...Array(n).fill(text), ...rest]);
    const own = rest.filter((c) => /^[a-z]/.test(chunkType(c))).length; // pHYs, ...
    await expect(atSize(withTexts(1000 - own), 40, 30)).resolves.toBeDefined();
    const err = await rejection(() => atSize(withTexts(1001 - own), 40, 30));
    expect(err.message).toMatch(/more than 1000 ancillary chunks/);
  });

  test('one flipped byte in any chunk, ancillary ones too, is 422 naming the chunk', async () => {
    const withText = pngChunks(png);
    withText.splice(2, 0, pngChunk('tEXt', Buffer.from('Comment\0hello')));
    const source = Buffer.concat(withText);
    let pos = 8;
    for (const chunk of pngChunks(source).slice(1)) {
      const damaged = Buffer.from(source);
      damaged[pos + 8 + Math.floor((chunk.length - 12) / 2)] ^= 0x01; // inside data, or the CRC for IEND
      const err = await rejection(() => atSize(damaged, 40, 30));
      expect([chunkType(chunk), err.code]).toEqual([chunkType(chunk), 'corrupt_image']);
      expect(err.message).toContain(chunkType(chunk));
      pos += chunk.length;
    }
  });

  /**
   * An APNG built on `png`: acTL claiming `claimed` frames, the still image as frame 1 (or
   * hidden), then `extra` frames of other pixels in fcTL + fdAT chunks.
   */
  async function apng(opts: { claimed: number; extra: number; hidden?: boolean }) {
    const [signature, ihdr, ...rest] = pngChunks(png);
    const iend = rest.pop()!;
    const other = await noise(40, 30, 3, 7).png().toBuffer();
    const idat = pngChunks(other).find((c) => chunkType(c) === 'IDAT')!;
    let seq = opts.hidden ? 0 : 1;
    const frames: Buffer[] = [];
    for (let i = 0; i < opts.extra; i++) {
      frames.push(fcTL(seq++, 40, 30));
      frames.push(pngChunk('fdAT', Buffer.concat([u32s(seq++), idat.subarray(8, -4)])));
    }
    const first = opts.hidden ? [] : [fcTL(0, 40, 30)];
    const acTL = pngChunk('acTL', u32s(opts.claimed, 0));
    return Buffer.concat([signature, ihdr, acTL, ...first, ...rest, ...frames, iend]);
  }

  test('an APNG whose still image is frame 1 is used as frame 1, its real frames counted', async () => {
    const still = await atSize(png, 40, 30, 3);
    for (const claimed of [3, 4_000_000_000]) {
      const image = await atSize(await apng({ claimed, extra: 2 }), 40, 30, 3);
      expect(toLevels(image.data)).toEqual(toLevels(still.data));
      expect([claimed, image.frames]).toEqual([claimed, 3]); // fcTL chunks, not acTL's claim
      expect(image.warnings).toContain(
        'animated PNG has 3 frames: only frame 1 is used (frames ignored: 2)',
      );
    }
    const noFrames = await atSize(await apng({ claimed: 1, extra: 0, hidden: true }), 40, 30, 3);
    expect([noFrames.frames, noFrames.warnings]).toEqual([1, []]); // acTL alone: a plain PNG
  });

  test('an APNG whose still image is not part of the animation is 415', async () => {
    const hidden = await apng({ claimed: 1, extra: 1, hidden: true });
    const err = await rejection(() => atSize(hidden, 40, 30));
    expect([err.code, err.httpStatus]).toEqual(['unsupported_image_format', 415]);
  });

  test('an orientation the decoder ignores (eXIf after IDAT, or with an "Exif" prefix) is warned about', async () => {
    const exif = Buffer.from('4d4d002a000000080001011200030000000100060000000000000000', 'hex');
    const chunks = pngChunks(png);
    const iend = chunks.pop()!;
    const late = Buffer.concat([...chunks, pngChunk('eXIf', exif), iend]);
    const image = await atSize(late, 40, 30);
    expect([image.sourceWidth, image.sourceHeight]).toEqual([40, 30]);
    expect(image.warnings.join()).toMatch(/eXIf chunk after the image data is ignored/);

    const [signature, ihdr, ...rest] = pngChunks(png);
    const prefixed = pngChunk('eXIf', Buffer.concat([Buffer.from('Exif\0\0'), exif]));
    const early = await atSize(Buffer.concat([signature, ihdr, prefixed, ...rest]), 40, 30);
    expect([early.sourceWidth, early.sourceHeight]).toEqual([40, 30]);
    expect(early.warnings.join()).toMatch(/JPEG "Exif" header/);
  });
});

// --- JPEG -------------------------------------------------------------------------------------

describe('JPEG: the scans must reach every component', () => {
  const EOI = Buffer.from([0xff, 0xd9]);
  const sosOffsets = (jpeg: Buffer) => {
    const found: number[] = [];
    for (let at = jpeg.indexOf(Buffer.from([0xff, 0xda])); at !== -1;) {
      found.push(at);
      at = jpeg.indexOf(Buffer.from([0xff, 0xda]), at + 2);
    }
    return found;
  };
  const progressive = (channels: 1 | 3) =>
    noise(64, 48, channels).jpeg({ progressive: true, quality: 90 }).toBuffer();

  test('baseline and complete progressive files, grey and colour, pass without a note', async () => {
    for (const channels of [1, 3] as const) {
      const baseline = await noise(33, 17, channels).jpeg({ quality: 75 }).toBuffer();
      expect(scanCoverage(walkJpeg(baseline))).toEqual({});
      const full = await progressive(channels);
      expect(scanCoverage(walkJpeg(full))).toEqual({});
      expect((await atSize(full, 64, 48)).warnings).toEqual([]);
    }
  });

  // The standard lets a progressive file stop short of the last bits (a DC-only preview is
  // legal, and libjpeg writes one on request); one cut between scans looks the same.
  test.each([1, 3] as const)(
    'a progressive file (%i channel) that stops after any scan is used, with a warning',
    async (channels) => {
      const jpeg = await progressive(channels);
      const scans = sosOffsets(jpeg);
      expect(scans.length).toBeGreaterThan(3);
      for (const sos of scans.slice(1)) {
        const short = Buffer.concat([jpeg.subarray(0, sos), Buffer.from([0xff, 0xd9])]);
        const image = await atSize(short, 64, 48);
        expect([sos, image.warnings.join()]).toEqual([
          sos,
          expect.stringMatching(
            /^progressive JPEG stops before coefficient \d+ of component \d \(id \d+\) is complete/,
          ),
        ]);
      }
    },
  );

  test('a file whose scans never send DC data for a component is 422', async () => {
    const jpeg = await progressive(3);
    const [first, second] = sosOffsets(jpeg); // the first scan is the DC of every component
    const noDc = Buffer.concat([jpeg.subarray(0, first), jpeg.subarray(second)]);
    expect(scanCoverage(walkJpeg(noDc)).fault).toMatch(/^no scan sends DC data for component 1/);
    const err = await rejection(() => atSize(noDc, 64, 48));
    expect([err.code, err.message]).toEqual([
      'corrupt_image',
      expect.stringMatching(/no scan sends DC data for component 1 \(id \d+\)/),
    ]);
  });

  test('a flood is 413 before any scan is looked at, even cut short', async () => {
    const jpeg = Buffer.from(await progressive(3));
    const sof = jpeg.indexOf(Buffer.from([0xff, 0xc2]));
    jpeg.writeUInt16BE(60000, sof + 5); // height
    jpeg.writeUInt16BE(60000, sof + 7); // width
    const [, second] = sosOffsets(jpeg);
    for (const bytes of [jpeg.subarray(0, second + 20), jpeg.subarray(0, second)]) {
      const err = await rejection(() => atSize(bytes, 64, 48));
      expect([err.code, err.httpStatus]).toEqual(['image_too_large', 413]);
    }
  });

  test('segments it cannot follow are left to the decoder to name, not called truncated', async () => {
    const jpeg = await progressive(3);
    const app0End = 4 + jpeg.readUInt16BE(4);
    const junk = Buffer.concat([
      jpeg.subarray(0, app0End),
      Buffer.from([0x12, 0x34]),
      jpeg.subarray(app0End),
    ]);
    expect(scanCoverage(walkJpeg(junk))).toEqual({});
    const err = await rejection(() => atSize(junk, 64, 48));
    expect(err.code).toBe('corrupt_image');
    expect(err.message).not.toMatch(/structure|scan/);
  });

  test('a JPEG of a precision this libjpeg does not decode is 415, not called corrupt', async () => {
    const jpeg = Buffer.from(await noise(16, 16, 1).jpeg().toBuffer());
    jpeg[jpeg.indexOf(Buffer.from([0xff, 0xc0])) + 4] = 9; // SOF0 sample precision
    const err = await rejection(() => atSize(jpeg, 16, 16));
    expect([err.code, err.httpStatus]).toEqual(['unsupported_image_format', 415]);
    expect(err.message).toBe(
      'JPEG variant not supported (Unsupported JPEG data precision 9); ' +
        'send baseline or progressive 8-bit JPEG',
    );
  });

  test('a file of more than 1000 scans is refused without being decoded', async () => {
    const jpeg = await progressive(1);
    const [first] = sosOffsets(jpeg);
    const empty = Buffer.from([0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x01, 0x3f, 0x00]);
    const many = Buffer.concat([jpeg.subarray(0, first), ...Array(1001).fill(empty), EOI]);
    const err = await rejection(() => atSize(many, 64, 48));
    expect([err.code, err.message]).toEqual([
      'corrupt_image',
      'JPEG image is corrupt or truncated (structure): it has more than 1000 scans',
    ]);
  });
});
