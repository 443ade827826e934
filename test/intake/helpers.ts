import fs from 'node:fs';
import path from 'node:path';
import { ServiceError } from '../../src/errors';
import { prepareImage, type PrepareImageOptions } from '../../src/intake';
import type { ClassInfo, ImageSpec } from '../../src/types';

/** Shared fixtures for the intake tests: the failure cases, specs, and an error catcher. */

import { CASES_DIR } from '../cases-dir';

export { CASES_DIR };

export interface CaseEntry {
  file: string;
  case: string;
  kind: string;
  transport: string;
  what: string;
  expected: 'accept' | 'reject-4xx';
  notes: string;
}

const casesAvailable = fs.existsSync(path.join(CASES_DIR, 'manifest.json'));
/** describe() over the shared cases; when the folder is missing, one failing test that says
 * where it was looked for (the body is not run, so it may read case files freely). */
export function describeCases(name: string, body: () => void): void {
  if (casesAvailable) describe(name, body);
  else
    test(`${name}: failure cases found`, () => {
      throw new Error(`no manifest.json in ${CASES_DIR}: check out beside ../shared or set CASES_DIR`);
    });
}

export function manifest(): CaseEntry[] {
  return JSON.parse(fs.readFileSync(path.join(CASES_DIR, 'manifest.json'), 'utf8'));
}

export function caseBytes(file: string): Buffer {
  return fs.readFileSync(path.join(CASES_DIR, file));
}

/** The shipped Fashion-MNIST model's image and latent, and an RGB model for generality. */
export const GREY: ImageSpec = { height: 28, width: 28, channels: 1 };
export const RGB: ImageSpec = { height: 28, width: 28, channels: 3 };
export const LATENT_SHAPE = [4, 7, 7];
export const MAX_PIXELS = 25_000_000;

export const FMNIST_CLASSES: ClassInfo[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
].map((name, id) => ({ id, name }));

/** Runs fn and returns the ServiceError it throws; fails the test if it succeeds or throws
 * anything else (a plain Error would become a 500). */
export async function rejection(fn: () => unknown): Promise<ServiceError> {
  let result: unknown;
  try {
    result = await fn();
  } catch (err) {
    if (err instanceof ServiceError) return err;
    throw new Error(`expected a ServiceError, got ${String(err)}`);
  }
  throw new Error(
    `expected a ServiceError, but the call succeeded: ${String(result).slice(0, 80)}`,
  );
}

/** Model values [-1, 1] back to 0..255 grey levels, for readable assertions. */
export const toLevels = (data: Float32Array) =>
  Array.from(data, (x) => Math.round((x + 1) * 127.5));

/** An image prepared at its source size (so pixels can be compared one to one). */
export async function atSize(
  bytes: Buffer,
  width: number,
  height: number,
  channels: 1 | 3 = 1,
  opts: Partial<PrepareImageOptions> = {},
) {
  return prepareImage(bytes, { width, height, channels }, { maxPixels: MAX_PIXELS, ...opts });
}

/** Level of pixel (x, y) in channel c of a [C, H, W] level array. */
export function px(levels: number[], width: number, height: number, x: number, y: number, c = 0) {
  return levels[c * width * height + y * width + x];
}

export const meanAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
};
