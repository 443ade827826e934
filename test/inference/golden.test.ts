import fs from 'node:fs';
import path from 'node:path';
import { silentLogger } from '../../src/logger';
import type { OnnxModelHandle } from '../../src/inference/model-handle';
import { Registry } from '../../src/models/registry';
import { latentNoise } from '../../src/sampler/philox';
import type { SamplerMethod, Tensor } from '../../src/types';
import { compare, readNpy, shippedModelDir, testConfig } from '../models/helpers';

/**
 * The shipped model against its golden files (docs/model-format.md, "golden/"): each graph
 * through the service's worker pool and batcher gives PyTorch's outputs within the tolerance,
 * and the service's noise and sampler reproduce the exporter's sampling cases.
 */

interface SamplingCase {
  class: number;
  seed: number;
  count: number;
  method: SamplerMethod;
  steps: number;
  cfg_scale: number;
  cfg_interval: [number, number];
  shift: number;
  noise: string;
  latent: string;
  image: string;
}

interface Golden {
  encoder: { image: string; latent: string };
  decoder: { latent: string; image: string };
  generator: { x: string; t: string; y: string; v: string };
  sampling: SamplingCase[];
  tolerance: { atol: number; rtol: number; sampling_atol: number };
}

const DIR = shippedModelDir();
const manifest = JSON.parse(fs.readFileSync(path.join(DIR, 'manifest.json'), 'utf8'));
const GOLDEN_DIR = path.dirname(path.join(DIR, manifest.golden ?? 'golden/golden.json'));
const golden: Golden = JSON.parse(
  fs.readFileSync(path.join(DIR, manifest.golden ?? 'golden/golden.json'), 'utf8'),
);
const tol = golden.tolerance;

const npy = (name: string) => readNpy(path.join(GOLDEN_DIR, name));
const tensor = (name: string): Tensor => {
  const a = npy(name);
  if (a.dtype !== '<f4') throw new Error(`${name}: expected float32, got ${a.dtype}`);
  return { data: a.data as Float32Array, shape: a.shape };
};
const clamp = (t: Tensor) => t.data.map((v) => Math.min(1, Math.max(-1, v)));

let registry: Registry;
let model: OnnxModelHandle;

beforeAll(async () => {
  registry = new Registry({
    config: testConfig({ MODELS_DIR: path.dirname(DIR) }),
    logger: silentLogger,
  });
  await registry.load();
  model = registry.get(path.basename(DIR));
});

afterAll(() => registry.close());

test('encoder output equals the golden latent within atol/rtol', async () => {
  const want = tensor(golden.encoder.latent);
  const got = await model.encode(tensor(golden.encoder.image));
  expect(got.shape).toEqual(want.shape);
  const { ok, maxAbs } = compare(got.data, want.data, tol.atol, tol.rtol);
  expect({ ok, maxAbs }).toEqual({ ok: true, maxAbs: expect.any(Number) });
});

test('decoder output equals the golden image (clamped, as the service serves it)', async () => {
  const want = tensor(golden.decoder.image);
  const got = await model.decode(tensor(golden.decoder.latent));
  expect(got.shape).toEqual(want.shape);
  expect(compare(got.data, clamp(want), tol.atol, tol.rtol).ok).toBe(true);
});

test('generator velocity equals the golden v, rows with their own t and y', async () => {
  const want = tensor(golden.generator.v);
  const t = tensor(golden.generator.t).data;
  const y = npy(golden.generator.y);
  const labels =
    y.dtype === '<i8'
      ? (y.data as BigInt64Array)
      : BigInt64Array.from(y.data as Int32Array, BigInt);
  const got = await model.predictVelocity(tensor(golden.generator.x), t, labels);
  expect(got.shape).toEqual(want.shape);
  expect(compare(got.data, want.data, tol.atol, tol.rtol).ok).toBe(true);
});

describe.each(golden.sampling.map((c, i) => [i, c] as const))('sampling case %i', (_i, c) => {
  const latentSize = () => model.latentShape.reduce((a, b) => a * b, 1);

  test('the service noise for the seed equals the golden noise', () => {
    const want = tensor(c.noise);
    const got = latentNoise(c.seed, c.count, latentSize());
    expect(Array.from(got)).toEqual(Array.from(want.data));
  });

  test('generate reproduces the golden latent within sampling_atol, and its image', async () => {
    const result = await model.generate({
      classId: c.class,
      count: c.count,
      steps: c.steps,
      method: c.method,
      cfgScale: c.cfg_scale,
      cfgInterval: c.cfg_interval,
      shift: c.shift,
      seed: c.seed,
    });
    const want = tensor(c.latent);
    expect(result.latents.shape).toEqual(want.shape);
    const latent = compare(result.latents.data, want.data, tol.sampling_atol);
    expect(latent).toEqual({ ok: true, maxAbs: expect.any(Number) });
    // The decoder sees latents that differ by up to sampling_atol, so allow it to amplify a bit.
    const image = compare(result.images.data, clamp(tensor(c.image)), 10 * tol.sampling_atol);
    expect(image).toEqual({ ok: true, maxAbs: expect.any(Number) });
  });
});
