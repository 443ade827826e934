import {
  checkLatent,
  decodeBase64,
  parseLatentJson,
  parseNpy,
  prepareImage,
  resolveClass,
} from '../../src/intake';
import { ServiceError, type ErrorCode } from '../../src/errors';
import {
  caseBytes,
  describeCases,
  FMNIST_CLASSES,
  GREY,
  LATENT_SHAPE,
  manifest,
  MAX_PIXELS,
  RGB,
  type CaseEntry,
} from './helpers';

/**
 * Every file in the shared failure cases goes through the intake function its kind calls for
 * and must end as its manifest says: accepted (with a well-formed result) or refused with a
 * ServiceError whose status is 4xx and whose code belongs to the family. Specific conditions
 * from each note are checked in the per-family test files next to this one.
 */

/** The codes a refusal may carry, per failure family. */
const REFUSAL_CODES: Record<string, ErrorCode[]> = {
  'BC-01': ['image_too_large'],
  'BC-13': ['corrupt_image'],
  'BC-14': ['unsupported_image_format'],
  'BC-15': ['invalid_base64', 'empty_image', 'unsupported_media_type', 'unsupported_image_format'],
  'BC-18': ['unsupported_dtype', 'invalid_latent'],
  'BC-21': ['invalid_class'],
  'BC-22': ['unsupported_image_format'],
  'BC-24': ['image_geometry', 'empty_image', 'unsupported_image_format'],
};

/** Drives one case through intake; resolves to a short description of what was accepted. */
async function drive(entry: CaseEntry): Promise<string> {
  const bytes = caseBytes(entry.file);
  switch (entry.kind) {
    case 'image':
    case 'not-an-image':
    case 'svg': {
      const grey = await prepareImage(bytes, GREY, { maxPixels: MAX_PIXELS });
      expect(grey.data).toHaveLength(28 * 28);
      const rgb = await prepareImage(bytes, RGB, { maxPixels: MAX_PIXELS });
      expect(rgb.data).toHaveLength(3 * 28 * 28);
      for (const x of [...grey.data, ...rgb.data]) expect(Math.abs(x)).toBeLessThanOrEqual(1);
      return `image ${grey.sourceWidth}x${grey.sourceHeight}`;
    }
    case 'base64-string': {
      const decoded = decodeBase64(bytes.toString('utf8'), { allowDataUrl: true });
      const image = await prepareImage(decoded.bytes, GREY, { maxPixels: MAX_PIXELS });
      expect(image.data).toHaveLength(28 * 28);
      return `base64 of ${decoded.bytes.length} bytes`;
    }
    case 'latent-npy': {
      const latent = checkLatent(parseNpy(bytes), LATENT_SHAPE);
      return `latent [${latent.shape}]`;
    }
    case 'latent-json': {
      const latent = checkLatent(parseLatentJson(JSON.parse(bytes.toString('utf8'))), LATENT_SHAPE);
      return `latent [${latent.shape}]`;
    }
    case 'generate-request': {
      const id = resolveClass(JSON.parse(bytes.toString('utf8')).class, FMNIST_CLASSES);
      expect(id).toBeGreaterThanOrEqual(0);
      expect(id).toBeLessThan(FMNIST_CLASSES.length);
      return `class ${id}`;
    }
    default:
      throw new Error(`manifest kind ${entry.kind} has no intake route in this test`);
  }
}

describeCases('every shared failure case behaves as its manifest says', () => {
  const entries = manifest();

  test('the manifest lists the families this suite knows', () => {
    expect(entries.length).toBeGreaterThan(60);
    for (const e of entries) {
      expect(['accept', 'reject-4xx']).toContain(e.expected);
      if (e.expected === 'reject-4xx') expect(Object.keys(REFUSAL_CODES)).toContain(e.case);
    }
  });

  test.each(entries.map((e) => [e.file, e] as const))('%s', async (_file, entry) => {
    if (entry.expected === 'accept') {
      await expect(drive(entry)).resolves.toEqual(expect.any(String));
      return;
    }
    let err: unknown;
    await drive(entry).catch((e) => (err = e));
    expect(err).toBeInstanceOf(ServiceError);
    const service = err as ServiceError;
    expect(service.httpStatus).toBeGreaterThanOrEqual(400);
    expect(service.httpStatus).toBeLessThan(500);
    expect(REFUSAL_CODES[entry.case]).toContain(service.code);
    expect(service.message.length).toBeGreaterThan(10);
  });
});
