import sharp from 'sharp';
import { atSize, caseBytes, describeCases, px, toLevels } from './helpers';

/** BC-05 (alpha, palette, grey, 1-bit) and BC-06 (CMYK, YCCK): one normalisation for all. */

/** Level grid of a case decoded at its own size, grey (1) or RGB (3). */
async function levels(bytes: Buffer, w: number, h: number, channels: 1 | 3) {
  const image = await atSize(bytes, w, h, channels);
  expect(image.data).toHaveLength(w * h * channels); // exactly the model's channel count
  return { levels: toLevels(image.data), warnings: image.warnings };
}

describeCases('alpha and palettes (BC-05)', () => {
  test('RGBA hiding red under alpha 0 comes out white, half alpha mid grey', async () => {
    for (const channels of [1, 3] as const) {
      const { levels: l, warnings } = await levels(
        caseBytes('bc05-rgba-hidden-red.png'),
        64,
        64,
        channels,
      );
      for (let c = 0; c < channels; c++) {
        for (const y of [0, 31, 63]) {
          for (const x of [0, 10, 23]) expect(px(l, 64, 64, x, y, c)).toBe(40);
          for (const x of [24, 30, 39])
            expect(Math.abs(px(l, 64, 64, x, y, c) - 127)).toBeLessThanOrEqual(2);
          for (const x of [40, 50, 63]) expect(px(l, 64, 64, x, y, c)).toBe(255);
        }
      }
      expect(warnings).toContain('transparent pixels composited onto white');
    }
  });

  test('palette with tRNS: transparent border white, grey square 128, black centre', async () => {
    for (const channels of [1, 3] as const) {
      const { levels: l } = await levels(caseBytes('bc05-palette-trns.png'), 64, 64, channels);
      for (let c = 0; c < channels; c++) {
        for (const [x, y] of [
          [0, 0],
          [3, 60],
          [63, 63],
          [60, 2],
        ])
          expect(px(l, 64, 64, x, y, c)).toBe(255);
        expect(px(l, 64, 64, 12, 12, c)).toBe(128);
        expect(px(l, 64, 64, 32, 32, c)).toBe(0);
      }
    }
  });

  test('grey PNG decodes to the same ramp (1 channel, or 3 equal channels)', async () => {
    const grey = (await levels(caseBytes('bc05-grey.png'), 64, 64, 1)).levels;
    const rgb = (await levels(caseBytes('bc05-grey.png'), 64, 64, 3)).levels;
    const raw = await sharp(caseBytes('bc05-grey.png')).extractChannel(0).raw().toBuffer();
    expect(grey).toEqual(Array.from(raw)); // the stored grey levels, unchanged
    for (let c = 0; c < 3; c++) expect(rgb.slice(c * 4096, (c + 1) * 4096)).toEqual(grey);
    expect(px(grey, 64, 64, 32, 32)).toBe(0); // the black square
    expect(px(grey, 64, 64, 63, 0)).toBe(252);
  });

  test('grey+alpha: transparent right half white, left ramp kept', async () => {
    const { levels: l } = await levels(caseBytes('bc05-grey-alpha.png'), 64, 64, 1);
    const stored = await sharp(caseBytes('bc05-grey-alpha.png')).extractChannel(0).raw().toBuffer();
    for (const y of [0, 20, 63]) {
      for (const x of [32, 45, 63]) expect(px(l, 64, 64, x, y)).toBe(255);
      for (const x of [0, 15, 31]) expect(px(l, 64, 64, x, y)).toBe(stored[y * 64 + x]);
    }
    expect(px(l, 64, 64, 0, 0)).not.toBe(px(l, 64, 64, 0, 63)); // a top-to-bottom ramp
  });

  test('1-bit PNG gives 0 and 255 (not 0 and 1), white top-left cell', async () => {
    const { levels: l } = await levels(caseBytes('bc05-1bit.png'), 64, 64, 1);
    expect(new Set(l)).toEqual(new Set([0, 255]));
    expect(px(l, 64, 64, 0, 0)).toBe(255);
    expect(px(l, 64, 64, 8, 0)).toBe(0);
    expect(px(l, 64, 64, 8, 8)).toBe(255);
  });

  test('16-bit RGBA PNG is reduced to 8 bits and flattened like the 8-bit ones', async () => {
    const w = 4;
    const pixels = new Uint16Array(w * w * 4);
    for (let i = 0; i < w * w; i++)
      pixels.set(i < 8 ? [65535, 0, 0, 0] : [0, 32896, 65535, 65535], 4 * i);
    const png = await sharp(pixels, { raw: { width: w, height: w, channels: 4 } })
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    expect((await sharp(png).metadata()).depth).toBe('ushort');
    const { levels: l } = await levels(png, w, w, 3);
    expect([px(l, w, w, 0, 0, 0), px(l, w, w, 0, 0, 1), px(l, w, w, 0, 0, 2)]).toEqual([
      255, 255, 255,
    ]);
    expect([px(l, w, w, 0, 3, 0), px(l, w, w, 0, 3, 1), px(l, w, w, 0, 3, 2)]).toEqual([
      0, 128, 255,
    ]);
  });
});

describeCases('CMYK and YCCK JPEGs (BC-06)', () => {
  /** Mean RGB of the 16x16 patch at column `col`, row `row` (4-pixel margin). */
  function patch(l: number[], col: number, row: number): number[] {
    return [0, 1, 2].map((c) => {
      let sum = 0;
      for (let y = row * 16 + 4; y < row * 16 + 12; y++)
        for (let x = col * 16 + 4; x < col * 16 + 12; x++) sum += px(l, 48, 32, x, y, c);
      return sum / 64;
    });
  }

  test.each(['bc06-cmyk.jpg', 'bc06-ycck.jpg'])(
    '%s converts to sRGB with the right polarity',
    async (name) => {
      const { levels: l, warnings } = await levels(caseBytes(name), 48, 32, 3);
      const [white, black, red] = [0, 1, 2].map((col) => patch(l, col, 0));
      const [green, blue, grey] = [0, 1, 2].map((col) => patch(l, col, 1));
      for (const v of white) expect(v).toBeGreaterThan(230);
      for (const v of black) expect(v).toBeLessThan(60);
      for (const v of grey) expect(Math.abs(v - 128)).toBeLessThan(20);
      expect(red[0]).toBeGreaterThan(Math.max(red[1], red[2]) + 100);
      expect(green[1]).toBeGreaterThan(Math.max(green[0], green[2]) + 30);
      expect(blue[2]).toBeGreaterThan(Math.max(blue[0], blue[1]) + 60);
      expect(warnings.join()).toMatch(/CMYK .*converted to sRGB/);
    },
  );

  test('YCCK equals CMYK within a few levels; grey model gets one plausible channel', async () => {
    const cmyk = (await levels(caseBytes('bc06-cmyk.jpg'), 48, 32, 3)).levels;
    const ycck = (await levels(caseBytes('bc06-ycck.jpg'), 48, 32, 3)).levels;
    let worst = 0;
    for (let i = 0; i < cmyk.length; i++) worst = Math.max(worst, Math.abs(cmyk[i] - ycck[i]));
    expect(worst).toBeLessThanOrEqual(6);
    const grey = (await levels(caseBytes('bc06-cmyk.jpg'), 48, 32, 1)).levels;
    expect(px(grey, 48, 32, 8, 8)).toBeGreaterThan(230); // white
    expect(px(grey, 48, 32, 24, 8)).toBeLessThan(60); // black
  });

  test('the sRGB reference decodes as is', async () => {
    const { levels: l } = await levels(caseBytes('bc06-reference-srgb.png'), 48, 32, 3);
    expect([0, 1, 2].map((c) => px(l, 48, 32, 40, 24, c))).toEqual([128, 128, 128]);
    expect([0, 1, 2].map((c) => px(l, 48, 32, 8, 24, c))).toEqual([0, 160, 0]);
  });

  test('a CMYK JPEG written by libvips (other inks) also comes back with its colours', async () => {
    const rgb = Buffer.alloc(16 * 16 * 3);
    for (let i = 0; i < 256; i++) rgb.set(i < 128 ? [255, 200, 0] : [0, 80, 200], 3 * i); // yellow/blue
    const jpeg = await sharp(rgb, { raw: { width: 16, height: 16, channels: 3 } })
      .toColourspace('cmyk')
      .jpeg({ quality: 95 })
      .toBuffer();
    expect((await sharp(jpeg).metadata()).space).toBe('cmyk');
    const { levels: l } = await levels(jpeg, 16, 16, 3);
    const top = [0, 1, 2].map((c) => px(l, 16, 16, 8, 2, c));
    const bottom = [0, 1, 2].map((c) => px(l, 16, 16, 8, 13, c));
    expect(top[0]).toBeGreaterThan(top[2] + 100); // yellow: red and green high, blue low
    expect(top[1]).toBeGreaterThan(top[2] + 100);
    expect(bottom[2]).toBeGreaterThan(bottom[0] + 100); // blue stays blue
  });

  test('the warning names the profile really used: a damaged or non-CMYK one is passed over', async () => {
    const rgb = Buffer.alloc(16 * 16 * 3);
    for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 37) % 256;
    const raw = { raw: { width: 16, height: 16, channels: 3 as const } };
    const withCmykIcc = await sharp(rgb, raw)
      .toColourspace('cmyk')
      .withIccProfile('cmyk')
      .jpeg({ quality: 95 })
      .toBuffer();
    const cmykIcc = (await sharp(withCmykIcc).metadata()).icc!;
    const srgbIcc = (
      await sharp(await sharp(rgb, raw).withIccProfile('srgb').png().toBuffer()).metadata()
    ).icc!;
    const ICC_TAG = Buffer.from('ICC_PROFILE\0', 'latin1');
    /** The same JPEG with its APP2 ICC segments replaced by `icc` (or none), split as needed. */
    const withProfile = (icc?: Buffer) => {
      const kept: Buffer[] = [withCmykIcc.subarray(0, 2)];
      let pos = 2;
      while (withCmykIcc[pos + 1] !== 0xda) {
        const end = pos + 2 + withCmykIcc.readUInt16BE(pos + 2);
        const isIcc =
          withCmykIcc[pos + 1] === 0xe2 && withCmykIcc.indexOf(ICC_TAG, pos) === pos + 4;
        if (!isIcc) kept.push(withCmykIcc.subarray(pos, end));
        pos = end;
      }
      const parts = icc ? Math.ceil(icc.length / 65519) : 0;
      for (let i = 0; i < parts; i++) {
        const part = icc!.subarray(i * 65519, (i + 1) * 65519);
        const head = Buffer.from([0xff, 0xe2, 0, 0, ...ICC_TAG, i + 1, parts]);
        head.writeUInt16BE(head.length - 2 + part.length, 2);
        kept.push(head, part);
      }
      return Buffer.concat([...kept, withCmykIcc.subarray(pos)]);
    };
    const generic = await levels(withProfile(), 16, 16, 3);
    expect(generic.warnings).toEqual([
      'CMYK image without an ICC profile converted to sRGB with a generic profile',
    ]);
    const embedded = await levels(withProfile(cmykIcc), 16, 16, 3);
    expect(embedded.warnings).toEqual([
      'CMYK image converted to sRGB with its embedded ICC profile',
    ]);
    /** The CMYK profile with `bytes` written at `at` (a header field or a tag-table entry). */
    const patched = (at: number, bytes: Buffer | number[]) => {
      const copy = Buffer.from(cmykIcc);
      Buffer.from(bytes).copy(copy, at);
      return copy;
    };
    const sizeMismatch = 'is damaged (its size field does not match its length)';
    const passedOver: Array<[Buffer, string]> = [
      [Buffer.alloc(600, 0x41), sizeMismatch],
      [cmykIcc.subarray(0, 400), sizeMismatch],
      [srgbIcc, 'is for RGB, not CMYK'],
      // libvips failed the whole decode on this one ("ColorSpace mismatch"): now generic
      [patched(20, Buffer.from('RGB ')), 'is damaged (connection space "RGB ")'],
      [patched(128, [0, 0, 0, 0]), 'is damaged (tag table of 0 entries)'],
      [patched(128, [0x7f, 0xff, 0xff, 0xff]), 'is damaged (tag table of 2147483647 entries)'],
      [patched(8, [9]), 'is damaged (version 9)'],
    ];
    for (const [icc, why] of passedOver) {
      const image = await levels(withProfile(icc), 16, 16, 3);
      expect(image.levels).toEqual(generic.levels); // libvips did use the generic profile
      expect(image.warnings).toEqual([
        `CMYK image converted to sRGB with a generic profile: its embedded ICC profile ${why}`,
      ]);
    }
  });
});
