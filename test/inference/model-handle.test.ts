import { Registry } from '../../src/models/registry';
import type { GenerateParams, GenerateProgress, ModelHandle, Tensor } from '../../src/types';
import { captureLogger, compare, testConfig } from '../models/helpers';

/** The ModelHandle over the shipped model: input checks, generation semantics, batching. */

let registry: Registry;
let model: ModelHandle;
let lines: Record<string, unknown>[];

beforeAll(async () => {
  const captured = captureLogger('debug');
  lines = captured.lines;
  registry = new Registry({
    config: testConfig({
      MAX_GENERATE_COUNT: '4',
      MAX_STEPS: '50',
      MAX_IMAGES_PER_REQUEST: '8',
      QUEUE_MAX_IMAGES: '8',
      GENERATE_QUEUE_MAX_IMAGES: '12',
      BATCH_MAX_WAIT_MS: '2',
    }),
    logger: captured.logger,
  });
  await registry.load();
  model = registry.list()[0];
});

afterAll(() => registry.close());

const latentSize = () => model.latentShape.reduce((a, b) => a * b, 1);
const latents = (n: number, fill = 0.1): Tensor => ({
  data: new Float32Array(n * latentSize()).fill(fill),
  shape: [n, ...model.latentShape],
});
const params = (over: Partial<GenerateParams> = {}): GenerateParams => ({
  classId: 1,
  count: 2,
  steps: 3,
  method: 'heun',
  cfgScale: 2,
  cfgInterval: [0, 1],
  shift: 2.5,
  seed: 99,
  ...over,
});

describe('input checks', () => {
  test('a latent of the wrong shape is invalid_latent naming both shapes', async () => {
    const [c, h, w] = model.latentShape;
    const bad = { data: new Float32Array(c * h * (w + 1)), shape: [1, c, h, w + 1] };
    await expect(model.decode(bad)).rejects.toMatchObject({
      code: 'invalid_latent',
      message: `latent batch has shape [1, ${c}, ${h}, ${w + 1}]; this model expects [N, ${c}, ${h}, ${w}]`,
    });
  });

  test('a latent whose data does not fill its shape is invalid_latent', async () => {
    const bad = { data: new Float32Array(3), shape: [1, ...model.latentShape] };
    await expect(model.decode(bad)).rejects.toMatchObject({ code: 'invalid_latent' });
  });

  test.each([NaN, Infinity, -Infinity])(
    'a latent holding %p is refused with its index',
    async (value) => {
      const bad = latents(2);
      bad.data[latentSize() + 5] = value;
      const err = await model.decode(bad).catch((e) => e);
      expect(err.code).toBe('invalid_latent');
      expect(err.message).toContain(`contains ${value} at index [1, `);
    },
  );

  test('an image batch of the wrong size is invalid_request', async () => {
    const { channels: c, height: h, width: w } = model.imageSpec;
    const bad = { data: new Float32Array(c * (h + 1) * w), shape: [1, c, h + 1, w] };
    await expect(model.encode(bad)).rejects.toMatchObject({ code: 'invalid_request' });
  });

  test.each([
    [{ classId: 10_000 }, 'invalid_class'],
    [{ classId: -1 }, 'invalid_class'],
    [{ classId: 1.5 }, 'invalid_class'],
    [{ count: 5 }, 'limit_exceeded'],
    [{ count: 0 }, 'invalid_request'],
    [{ steps: 51 }, 'limit_exceeded'],
    [{ cfgInterval: [0.8, 0.2] as [number, number] }, 'invalid_request'],
    [{ shift: 0 }, 'invalid_request'],
    [{ cfgScale: NaN }, 'invalid_request'],
    [{ seed: -1 }, 'invalid_request'],
    [{ seed: 2 ** 53 }, 'invalid_request'],
    [{ method: 'ddim' as 'euler' }, 'invalid_request'],
  ])('generate refuses %j with %s', async (over, code) => {
    await expect(model.generate(params(over))).rejects.toMatchObject({ code });
  });

  test('generate refuses in the same words as the API, naming the setting or range', async () => {
    await expect(model.generate(params({ count: 5 }))).rejects.toMatchObject({
      code: 'limit_exceeded',
      message: 'count = 5 is over the limit MAX_GENERATE_COUNT = 4',
    });
    await expect(model.generate(params({ seed: 2 ** 53 }))).rejects.toMatchObject({
      message: `seed must be an integer in 0..${2 ** 53 - 1}; got ${2 ** 53}`,
    });
  });

  test('the null class of the manifest is never selectable', async () => {
    await expect(
      model.generate(params({ classId: model.manifest.null_class })),
    ).rejects.toMatchObject({
      code: 'invalid_class',
    });
  });
});

describe('generate', () => {
  test('is deterministic per seed, and the seed matters', async () => {
    const a = await model.generate(params());
    const b = await model.generate(params());
    const c = await model.generate(params({ seed: 100 }));
    expect(Array.from(b.latents.data)).toEqual(Array.from(a.latents.data));
    expect(compare(c.latents.data, a.latents.data, 1e-3).ok).toBe(false);
    expect(a.latents.shape).toEqual([2, ...model.latentShape]);
    const { channels, height, width } = model.imageSpec;
    expect(a.images.shape).toEqual([2, channels, height, width]);
    expect(Math.max(...a.images.data)).toBeLessThanOrEqual(1);
    expect(Math.min(...a.images.data)).toBeGreaterThanOrEqual(-1);
  });

  test('reports progress once per sampler step (Heun too, though it evaluates twice)', async () => {
    const seen: GenerateProgress[] = [];
    await model.generate(params({ steps: 3, method: 'heun' }), (p) => seen.push(p));
    expect(seen.map((p) => p.step)).toEqual([1, 2, 3]);
    expect(seen.every((p) => p.totalSteps === 3)).toBe(true);
    expect(seen[0].t).toBeGreaterThan(0); // the t each step reached
    expect(seen[0].t).toBeLessThan(seen[1].t);
    expect(seen[2].t).toBe(1);
    const euler: GenerateProgress[] = [];
    await model.generate(params({ steps: 3, method: 'euler' }), (p) => euler.push(p));
    expect(euler.map((p) => `${p.step}/${p.totalSteps}`)).toEqual(['1/3', '2/3', '3/3']);
  });

  test('concurrent generations share generator runs and get the same result as alone', async () => {
    const alone = await Promise.all(
      [1, 2, 3].map((seed) => model.generate(params({ seed, count: 1 }))),
    );
    lines.length = 0;
    const together = await Promise.all(
      [1, 2, 3].map((seed) => model.generate(params({ seed, count: 1 }))),
    );
    const runs = lines.filter(
      (l) => l.msg === 'batch run' && String(l.batcher).endsWith('/generator'),
    );
    expect(runs.some((r) => (r.requests as number) >= 2)).toBe(true);
    together.forEach((r, i) => {
      expect(compare(r.latents.data, alone[i].latents.data, 1e-5).maxAbs).toBeLessThan(1e-5);
    });
  });

  test('a generation that does not fit its budget gets queue_full up front', async () => {
    // GENERATE_QUEUE_MAX_IMAGES=12: one CFG generation of 4 holds 8 rows for its whole run.
    const first = model.generate(params({ count: 4, steps: 10 }));
    await expect(model.generate(params({ count: 4 }))).rejects.toMatchObject({
      code: 'queue_full',
      message: expect.stringContaining('GENERATE_QUEUE_MAX_IMAGES = 12'),
    });
    await first;
    await expect(model.generate(params({ count: 4, steps: 1 }))).resolves.toBeDefined();
  });

  test('generations holding their whole budget leave encode and decode their own', async () => {
    // QUEUE_MAX_IMAGES=8 (encode/decode), GENERATE_QUEUE_MAX_IMAGES=12: 8 generation rows held.
    const { channels: c, height: h, width: w } = model.imageSpec;
    const generating = model.generate(params({ count: 4, steps: 10 }));
    const images = { data: new Float32Array(8 * c * h * w), shape: [8, c, h, w] };
    try {
      // Submitted while the generation's rows are held (it takes them before its first await).
      expect((await model.encode(images)).shape[0]).toBe(8);
      expect((await model.decode(latents(8))).shape[0]).toBe(8);
    } finally {
      await generating;
    }
  });

  test('an abort stops the sampler with cancelled and frees the queue', async () => {
    const controller = new AbortController();
    const running = model.generate(
      params({ count: 4, steps: 40 }),
      (p) => {
        if (p.step === 3) controller.abort();
      },
      controller.signal,
    );
    await expect(running).rejects.toMatchObject({ code: 'cancelled' });
    await expect(model.generate(params({ count: 4, steps: 1 }))).resolves.toBeDefined();
  });
});

describe('GENERATE_TIMEOUT_MS', () => {
  let limited: Registry;
  beforeAll(async () => {
    limited = new Registry({
      config: testConfig({ GENERATE_TIMEOUT_MS: '300', MAX_STEPS: '250' }),
      logger: captureLogger('info').logger,
    });
    await limited.load();
  });
  afterAll(() => limited.close());

  test('stops a generation past its time limit with generation_timeout and frees its rows', async () => {
    const handle = limited.list()[0];
    const steps: number[] = [];
    const started = performance.now();
    const long = handle.generate(params({ count: 4, steps: 250 }), (p) => steps.push(p.step));
    await expect(long).rejects.toMatchObject({
      code: 'generation_timeout',
      message: expect.stringContaining('GENERATE_TIMEOUT_MS = 300 ms'),
    });
    expect(performance.now() - started).toBeLessThan(5000);
    expect(steps.length).toBeLessThan(250); // it stopped between steps, not at the end
    // its rows went back to the budget: a short generation is served at once
    await expect(handle.generate(params({ count: 4, steps: 2 }))).resolves.toBeDefined();
  });
});

describe('latent normalisation', () => {
  test('normalize then denormalize gives the latents back', () => {
    const raw = latents(2);
    raw.data.forEach((_, i) => (raw.data[i] = Math.cos(i)));
    const back = model.denormalizeLatents(model.normalizeLatents(raw));
    expect(compare(back.data, raw.data, 1e-5).ok).toBe(true);
    const { mean, scale } = model.manifest.latent;
    expect(model.normalizeLatents(raw).data[3]).toBeCloseTo((raw.data[3] - mean) * scale, 5);
  });
});
