import { abortError, ServiceError } from '../errors';
import type { GenerateProgress, SamplerMethod } from '../types';
import { timeGrid } from './schedule';

/**
 * The flow-matching ODE sampler of docs/model-format.md, mirroring training/dmvae/sampling.py
 * operation by operation in float32 (each Float32Array store rounds like a torch float32 op),
 * so the service reproduces the golden latents from the same noise.
 */

/** One generator call: x [rows, D] normalised, t [rows], y [rows] -> v [rows, D]. */
export type VelocityFn = (
  x: Float32Array,
  t: Float32Array,
  y: BigInt64Array,
) => Promise<Float32Array>;

export interface SampleOptions {
  /** Starting noise [count, D], normalised space; not modified. */
  noise: Float32Array;
  count: number;
  classId: number;
  nullClass: number;
  method: SamplerMethod;
  steps: number;
  cfgScale: number;
  cfgInterval: [number, number];
  shift: number;
  velocity: VelocityFn;
  onProgress?: (p: GenerateProgress) => void;
  signal?: AbortSignal;
}

/** Generator rows one evaluation needs: CFG doubles the batch. */
export function rowsPerEvaluation(count: number, cfgScale: number): number {
  return cfgScale === 1 ? count : 2 * count;
}

/** Integrates from noise (t = 0) to data (t = 1); returns the normalised latents x_steps. */
export async function sample(o: SampleOptions): Promise<Float32Array> {
  const grid = timeGrid(o.steps, o.shift);
  const size = o.noise.length / o.count;

  const velocity = async (x: Float32Array, t: number): Promise<Float32Array> => {
    // Checked before every evaluation: cancelling stops a generation between steps.
    if (o.signal?.aborted) throw abortError(o.signal, 'Generation');
    return guidedVelocity(o, x, t, size);
  };

  let x: Float32Array = Float32Array.from(o.noise);
  for (let i = 0; i < o.steps; i++) {
    const t0 = grid[i];
    const t1 = grid[i + 1];
    const h = Math.fround(t1 - t0); // torch rounds a Python float scalar to the tensor's float32
    const d1 = await velocity(x, t0);
    if (o.method === 'euler') {
      x = axpy(x, h, d1);
    } else {
      // Heun on every step, the last one included (t1 = 1 is a regular point here)
      const d2 = await velocity(axpy(x, h, d1), t1);
      const mean = new Float32Array(x.length);
      for (let j = 0; j < x.length; j++) mean[j] = Math.fround(d1[j] + d2[j]) / 2;
      x = axpy(x, h, mean);
    }
    o.onProgress?.({ step: i + 1, totalSteps: o.steps, t: t1 });
  }
  return x;
}

/** v at (x, t); with CFG inside its interval, one call on [x; x] with labels [y; null]. */
async function guidedVelocity(o: SampleOptions, x: Float32Array, t: number, size: number) {
  const n = o.count;
  const [lo, hi] = o.cfgInterval;
  const guided = o.cfgScale !== 1 && lo <= t && t <= hi;
  const rows = guided ? 2 * n : n;
  const xs = new Float32Array(rows * size);
  xs.set(x);
  if (guided) xs.set(x, n * size);
  const ts = new Float32Array(rows).fill(t);
  const ys = new BigInt64Array(rows);
  for (let r = 0; r < rows; r++) ys[r] = BigInt(r < n ? o.classId : o.nullClass);
  const v = await o.velocity(xs, ts, ys);
  if (v.length !== rows * size) {
    throw new ServiceError(
      'inference_failed',
      `generator returned ${v.length} values for ${rows} rows`,
    );
  }
  if (!guided) return v;
  const out = new Float32Array(n * size);
  const w = Math.fround(o.cfgScale);
  for (let j = 0; j < n * size; j++) {
    const vc = v[j];
    const vu = v[n * size + j];
    out[j] = vu + Math.fround(w * Math.fround(vc - vu)); // vU + w (vC - vU), float32 per op
  }
  return out;
}

/** x + h * d, rounding the product and the sum to float32 as torch does. */
function axpy(x: Float32Array, h: number, d: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let j = 0; j < x.length; j++) out[j] = x[j] + Math.fround(h * d[j]);
  return out;
}
