/**
 * The sampler's time grid (docs/model-format.md, "Sampler"): t = 0 is noise, t = 1 is data.
 * tau_i = i / steps is warped by the shift s so that s > 1 spends more steps near the noise.
 */

/**
 * Shifts the service accepts. s warps the grid by a factor of up to s near the noise end; past
 * 100 (or below 1/100) nearly every step is spent at one end, and for s -> 0 the first point
 * becomes 0/0 in floating point (s = 1e-20 gives a NaN grid), so requests stay inside this.
 */
export const SHIFT_RANGE: readonly [number, number] = [0.01, 100];

/** float64 times t_0 = 0 < ... < t_steps = 1. */
export function timeGrid(steps: number, shift: number): Float64Array {
  if (!Number.isInteger(steps) || steps < 1) {
    throw new RangeError(`steps must be a positive integer, got ${steps}`);
  }
  if (!(shift >= SHIFT_RANGE[0] && shift <= SHIFT_RANGE[1])) {
    throw new RangeError(`shift must be in [${SHIFT_RANGE.join(', ')}], got ${shift}`);
  }
  const grid = new Float64Array(steps + 1);
  for (let i = 0; i <= steps; i++) {
    const rest = 1 - i / steps; // 1 - tau_i
    grid[i] = 1 - (shift * rest) / (1 + (shift - 1) * rest);
  }
  return grid;
}
