/**
 * The sampler's time grid (docs/model-format.md, "Sampler"): t = 0 is noise, t = 1 is data.
 * tau_i = i / steps is warped by the shift s so that s > 1 spends more steps near the noise.
 */

/** float64 times t_0 = 0 < ... < t_steps = 1. */
export function timeGrid(steps: number, shift: number): Float64Array {
  if (!Number.isInteger(steps) || steps < 1) {
    throw new RangeError(`steps must be a positive integer, got ${steps}`);
  }
  if (!Number.isFinite(shift) || shift <= 0) {
    throw new RangeError(`shift must be a positive finite number, got ${shift}`);
  }
  const grid = new Float64Array(steps + 1);
  for (let i = 0; i <= steps; i++) {
    const rest = 1 - i / steps; // 1 - tau_i
    grid[i] = 1 - (shift * rest) / (1 + (shift - 1) * rest);
  }
  return grid;
}
