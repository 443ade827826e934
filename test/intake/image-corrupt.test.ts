import sharp from 'sharp';
import { jpegEnding, repairMissingEoi } from '../../src/intake/jpeg-structure';
import { atSize, caseBytes, describeCases, rejection, toLevels } from './helpers';

/**
 * BC-13: corrupt and truncated JPEGs are 422 corrupt_image; a JPEG missing only its EOI marker
 * is accepted with a warning when it is single-scan sequential (all data provably present) and
 * refused otherwise. Also: damaged PNG/WebP/GIF bytes never become a 5xx.
 */

const base = () => caseBytes('bc13-base.jpg');

describeCases('corrupt and truncated JPEGs (BC-13)', () => {
  test('the intact original decodes without warnings', async () => {
    const image = await atSize(base(), 96, 96, 3);
    expect(image.warnings).toEqual([]);
  });

  test.each(['bc13-truncated-60pct.jpg', 'bc13-corrupt-scan.jpg'])(
    '%s is 422 corrupt_image',
    async (name) => {
      const err = await rejection(() => atSize(caseBytes(name), 96, 96));
      expect(err.code).toBe('corrupt_image');
      expect(err.httpStatus).toBe(422);
      expect(err.message).toMatch(/^JPEG image is corrupt or truncated/);
    },
  );

  test('missing EOI: accepted with a warning, pixels identical to the intact file', async () => {
    const missing = caseBytes('bc13-missing-eoi.jpg');
    expect(jpegEnding(missing)).toBe('missing-eoi-repairable');
    const image = await atSize(missing, 96, 96, 3);
    const intact = await atSize(base(), 96, 96, 3);
    expect(toLevels(image.data)).toEqual(toLevels(intact.data));
    expect(image.warnings).toContain('JPEG end marker (EOI) was missing and has been added');
  });

  test('every truncation of the baseline file inside its scan is refused, never accepted', async () => {
    const bytes = base();
    const sos = bytes.indexOf(Buffer.from([0xff, 0xda]));
    const cuts: number[] = [];
    for (let cut = sos + 20; cut < bytes.length - 2; cut += 97) cuts.push(cut);
    cuts.push(bytes.length - 3); // only the last scan byte and EOI gone
    for (const cut of cuts) {
      const err = await rejection(() => atSize(bytes.subarray(0, cut), 96, 96));
      expect([cut, err.code]).toEqual([cut, 'corrupt_image']);
    }
  });

  test('truncations inside the headers are refused too', async () => {
    const bytes = base();
    const sos = bytes.indexOf(Buffer.from([0xff, 0xda]));
    for (const cut of [3, 4, 10, 30, 100, sos, sos + 5]) {
      const err = await rejection(() => atSize(bytes.subarray(0, cut), 96, 96));
      expect([cut, err.httpStatus]).toEqual([cut, 422]);
    }
  });

  test('progressive JPEG: missing EOI is not repaired (422), a cut between scans is refused', async () => {
    const progressive = await sharp(base()).jpeg({ progressive: true, quality: 90 }).toBuffer();
    expect(jpegEnding(progressive)).toBe('complete');
    await expect(atSize(progressive, 96, 96)).resolves.toBeDefined();

    const noEoi = progressive.subarray(0, progressive.length - 2);
    expect(jpegEnding(noEoi)).toBe('missing-eoi');
    expect(repairMissingEoi(noEoi).repaired).toBe(false);
    expect((await rejection(() => atSize(noEoi, 96, 96))).code).toBe('corrupt_image');

    // Cut right before the second scan's SOS: every scan present is complete.
    const secondSos = progressive.indexOf(
      Buffer.from([0xff, 0xda]),
      progressive.indexOf(Buffer.from([0xff, 0xda])) + 2,
    );
    expect(secondSos).toBeGreaterThan(0);
    const betweenScans = progressive.subarray(0, secondSos);
    expect((await rejection(() => atSize(betweenScans, 96, 96))).code).toBe('corrupt_image');
  });

  test('a JPEG with data after its EOI is not touched by the repair', () => {
    const trailing = Buffer.concat([base(), Buffer.from('trailing')]);
    expect(jpegEnding(trailing)).toBe('complete');
    expect(repairMissingEoi(trailing).bytes).toBe(trailing);
  });
});

describe('damaged files of the other formats are 4xx, never 5xx', () => {
  const sources = {
    png: () =>
      sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } })
        .png()
        .toBuffer(),
    webp: () =>
      sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } })
        .webp()
        .toBuffer(),
    gif: () =>
      sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } })
        .gif()
        .toBuffer(),
  };

  test.each(Object.keys(sources) as Array<keyof typeof sources>)(
    '%s cut short or overwritten',
    async (format) => {
      const bytes = await sources[format]();
      await expect(atSize(bytes, 64, 64)).resolves.toBeDefined();
      const damaged = [
        bytes.subarray(0, Math.floor(bytes.length * 0.6)),
        bytes.subarray(0, 20),
        Buffer.concat([bytes.subarray(0, 40), Buffer.alloc(bytes.length - 40, 0xa5)]),
      ];
      for (const bad of damaged) {
        const outcome = await atSize(bad, 64, 64).then(
          () => 'accepted',
          (err) => (err?.httpStatus >= 400 && err?.httpStatus < 500 ? 'refused' : `5xx: ${err}`),
        );
        expect(outcome).toBe('refused');
      }
    },
  );
});
