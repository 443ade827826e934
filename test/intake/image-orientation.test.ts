import sharp from 'sharp';
import { lumaBt601, prepareImage } from '../../src/intake';
import { readExifOrientation } from '../../src/intake/exif';
import {
  atSize,
  caseBytes,
  describeCases,
  GREY,
  MAX_PIXELS,
  meanAbsDiff,
  px,
  RGB,
  toLevels,
} from './helpers';

/** BC-02: one picture stored eight ways (and one odd EXIF layout) must decode upright. */

const VARIANTS = ['1', '2', '3', '4', '5', '6', '7', '8', '6-odd-exif-layout'];
const file = (v: string) => `bc02-orientation-${v}.jpg`;

describeCases('EXIF orientation (BC-02)', () => {
  test.each(VARIANTS)('orientation %s decodes upright, equal to orientation 1', async (v) => {
    const reference = toLevels((await atSize(caseBytes(file('1')), 64, 48)).data);
    const image = await atSize(caseBytes(file(v)), 64, 48);
    expect([image.sourceWidth, image.sourceHeight]).toEqual([64, 48]); // post-rotation size
    expect(meanAbsDiff(toLevels(image.data), reference)).toBeLessThan(3);
    // The picture itself, not just "same as 1": black square top-left, white elsewhere.
    const levels = toLevels(image.data);
    expect(px(levels, 64, 48, 4, 4)).toBeLessThan(40);
    expect(px(levels, 64, 48, 32, 24)).toBeGreaterThan(215);
    expect(image.warnings).toEqual([]);
  });

  test.each(VARIANTS)('orientation %s equals orientation 1 at the model size too', async (v) => {
    for (const spec of [GREY, RGB]) {
      const reference = await prepareImage(caseBytes(file('1')), spec, { maxPixels: MAX_PIXELS });
      const image = await prepareImage(caseBytes(file(v)), spec, { maxPixels: MAX_PIXELS });
      expect(meanAbsDiff(toLevels(image.data), toLevels(reference.data))).toBeLessThan(3);
    }
  });

  test('a mirrored orientation is not confused with its rotation (2 vs 1 differ when raw)', async () => {
    // Guards the test above: without auto-orientation the stored pixels really differ.
    const raw = async (name: string) =>
      (await sharp(caseBytes(name)).greyscale().raw().toBuffer()).subarray(0, 64 * 48);
    expect(meanAbsDiff(await raw(file('2')), await raw(file('1')))).toBeGreaterThan(20);
  });

  test('the odd layout is read from IFD0 (6), not from the thumbnail IFD1 (1)', () => {
    return sharp(caseBytes(file('6-odd-exif-layout')))
      .metadata()
      .then((meta) => {
        expect(meta.orientation).toBe(6);
        expect(readExifOrientation(meta.exif)).toEqual({ status: 'found', orientation: 6 });
      });
  });
});

describeCases('EXIF that cannot be applied: used as stored, warned and logged, never 5xx', () => {
  const stored = caseBytes(file('6'));
  const exifAt = stored.indexOf(Buffer.from('Exif\0\0'));
  const tagAt = stored.indexOf(Buffer.from([0x01, 0x12, 0x00, 0x03]), exifAt);

  /** A copy of orientation-6 with its EXIF changed by `edit`. */
  const variant = (edit: (b: Buffer) => void) => {
    const copy = Buffer.from(stored);
    edit(copy);
    return copy;
  };

  const cases: Array<[string, Buffer, RegExp]> = [
    ['an unknown byte order', variant((b) => b.write('XX', exifAt + 6, 'latin1')), /unreadable/],
    [
      'an IFD0 offset past the end',
      variant((b) => b.writeUInt32BE(0xfff0, exifAt + 10)),
      /unreadable/,
    ],
    [
      'an EXIF header other than "Exif\\0\\0"',
      variant((b) => b.writeUInt8(0xff, exifAt + 5)),
      /EXIF header is 45 78 69 66 00 ff, not "Exif\\0\\0"/,
    ],
    [
      'orientation value 9',
      variant((b) => b.writeUInt16BE(9, tagAt + 8)),
      /orientation 9 is not 1-8/,
    ],
    [
      'orientation value 0',
      variant((b) => b.writeUInt16BE(0, tagAt + 8)),
      /orientation 0 is not 1-8/,
    ],
  ];

  test.each(cases)('%s', async (_name, bytes, warning) => {
    const logged: object[] = [];
    const image = await atSize(bytes, 48, 64, 1, { log: { warn: (obj) => logged.push(obj) } });
    expect([image.sourceWidth, image.sourceHeight]).toEqual([48, 64]); // as stored
    expect(image.warnings.join('\n')).toMatch(warning);
    expect(logged).toHaveLength(1);
    // Same pixels as the stored file read without orientation.
    const rgb = await sharp(stored).raw().toBuffer();
    const luma = Array.from({ length: 48 * 64 }, (_, i) =>
      lumaBt601(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]),
    );
    expect(meanAbsDiff(toLevels(image.data), luma)).toBeLessThan(1);
  });
});
