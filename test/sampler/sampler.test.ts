import { readFileSync } from 'node:fs';
import path from 'node:path';
import { latentNoise } from '../../src/sampler/philox';
import { sample, type SampleOptions, type VelocityFn } from '../../src/sampler/sampler';
import { timeGrid } from '../../src/sampler/schedule';
import type { GenerateProgress, SamplerMethod } from '../../src/types';
import { compare } from '../models/helpers';

interface Case {
  seed: number;
  count: number;
  shape: number[];
  label: number;
  method: SamplerMethod;
  steps: number;
  cfg_scale: number;
  cfg_interval: [number, number];
  shift: number;
  calls: number[];
  progress: [number, number, number][];
  result: number[];
}

/** training/dmvae/sampling.py on an analytic velocity field (fixtures/make_fixtures.py). */
const CASES: Case[] = JSON.parse(
  readFileSync(path.join(__dirname, 'fixtures', 'sampler_cases.json'), 'utf8'),
);

/** The same field as the fixture script: sin(x) (1 + t) + 0.1 (y - 5) + 0.01 j, in float32. */
function analytic(calls: number[]): VelocityFn {
  return async (x, t, y) => {
    const rows = t.length;
    const size = x.length / rows;
    calls.push(rows);
    const v = new Float32Array(x.length);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < size; j++) {
        const i = r * size + j;
        v[i] =
          Math.fround(Math.sin(x[i]) * Math.fround(1 + t[r])) +
          Math.fround(0.1 * (Number(y[r]) - 5)) +
          Math.fround(0.01 * j);
      }
    }
    return v;
  };
}

function options(
  c: Case,
  velocity: VelocityFn,
  onProgress?: (p: GenerateProgress) => void,
): SampleOptions {
  const size = c.shape.reduce((a, b) => a * b, 1);
  return {
    noise: latentNoise(c.seed, c.count, size),
    count: c.count,
    classId: c.label,
    nullClass: 10,
    method: c.method,
    steps: c.steps,
    cfgScale: c.cfg_scale,
    cfgInterval: c.cfg_interval,
    shift: c.shift,
    velocity,
    onProgress,
  };
}

describe('timeGrid', () => {
  test('runs from 0 to 1, increasing, and is uniform for shift 1', () => {
    const g = timeGrid(8, 2.5);
    expect(g[0]).toBe(0);
    expect(g[8]).toBe(1);
    for (let i = 1; i <= 8; i++) expect(g[i]).toBeGreaterThan(g[i - 1]);
    expect(Array.from(timeGrid(4, 1))).toEqual([0, 0.25, 0.5, 0.75, 1]);
  });

  test('shift > 1 spends more of the steps near the noise end', () => {
    const g = timeGrid(10, 3);
    expect(g[5]).toBeLessThan(0.5);
    expect(g[1] - g[0]).toBeLessThan(g[10] - g[9]);
  });

  test('refuses steps < 1 and non-positive shifts', () => {
    expect(() => timeGrid(0, 1)).toThrow(RangeError);
    expect(() => timeGrid(4, 0)).toThrow(RangeError);
  });
});

describe('sample', () => {
  test.each(
    CASES.map((c) => [`${c.method} cfg ${c.cfg_scale} [${c.cfg_interval}] shift ${c.shift}`, c]),
  )('reproduces the Python sampler: %s', async (_name, c) => {
    const calls: number[] = [];
    const progress: [number, number, number][] = [];
    const out = await sample(
      options(c as Case, analytic(calls), (p) => progress.push([p.step, p.totalSteps, p.t])),
    );
    const { maxAbs } = compare(out, (c as Case).result, 0);
    expect(maxAbs).toBeLessThan(1e-5);
    expect(calls).toEqual((c as Case).calls); // CFG doubles the batch only inside the interval
    expect(progress).toEqual((c as Case).progress);
  });

  test('a constant velocity moves the noise by exactly that velocity (grid sums to 1)', async () => {
    for (const method of ['euler', 'heun'] as const) {
      const noise = new Float32Array([0.5, -1, 2, 0]);
      const velocity: VelocityFn = async (x, t, y) =>
        Float32Array.from(x, (_, i) => (y[Math.floor(i / 2)] === 10n ? 1 : 3));
      const out = await sample({
        noise,
        count: 2,
        classId: 4,
        nullClass: 10,
        method,
        steps: 5,
        cfgScale: 2,
        cfgInterval: [0, 1],
        shift: 2.5,
        velocity,
      });
      // guided: vU + 2 (vC - vU) = 1 + 2 * 2 = 5 everywhere
      expect(compare(out, [5.5, 4, 7, 5], 1e-5).ok).toBe(true);
    }
  });

  test('stops with cancelled when the signal aborts between evaluations', async () => {
    const controller = new AbortController();
    const c = CASES[0];
    let evaluations = 0;
    const velocity: VelocityFn = async (x, t, y) => {
      if (++evaluations === 2) controller.abort();
      return analytic([])(x, t, y);
    };
    await expect(
      sample({ ...options(c, velocity), signal: controller.signal }),
    ).rejects.toMatchObject({
      code: 'cancelled',
    });
    expect(evaluations).toBe(2);
  });
});
