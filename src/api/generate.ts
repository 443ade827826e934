import { randomBytes } from 'node:crypto';
import type { Config } from '../config';
import { ServiceError } from '../errors';
import { resolveClass } from '../intake';
import { SHIFT_RANGE } from '../sampler/schedule';
import type { GenerateParams, ModelHandle, SamplerMethod } from '../types';

/** A generate request as either transport hands it over: unset fields take model defaults. */
export interface GenerateFields {
  /** An id or a class name; resolveClass decides. */
  class: unknown;
  count?: number;
  steps?: number;
  cfgScale?: number;
  cfgInterval?: [number, number];
  sampler?: SamplerMethod;
  shift?: number;
  seed?: number;
}

type Limits = Pick<Config, 'maxGenerateCount' | 'maxSteps'>;

/** Largest seed the noise contract takes (docs/model-format.md): 2^53 - 1. */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

/** A uniformly random seed in 0..2^53-1 (53 of 64 random bits). */
export function randomSeed(): number {
  return Number(randomBytes(8).readBigUInt64BE() >> 11n);
}

function invalid(field: string, message: string, extra: Record<string, unknown> = {}): never {
  throw new ServiceError('invalid_request', `${field} ${message}`, { field, ...extra });
}

function overLimit(field: string, value: number, limit: number, setting: string): never {
  throw new ServiceError(
    'limit_exceeded',
    `${field} = ${value} is over the limit ${setting} = ${limit}`,
    { field, limit, actual: value },
  );
}

function positiveInt(field: string, value: number, limit: number, setting: string): number {
  if (!Number.isInteger(value) || value < 1) {
    invalid(field, `must be an integer >= 1; got ${value}`);
  }
  if (value > limit) overLimit(field, value, limit, setting);
  return value;
}

function inRange(field: string, value: number, lo: number, hi: number, openLo = false): number {
  const ok = Number.isFinite(value) && (openLo ? value > lo : value >= lo) && value <= hi;
  if (!ok) invalid(field, `must be in ${openLo ? '(' : '['}${lo}, ${hi}]; got ${value}`);
  return value;
}

/**
 * Validates a request against the model and the service limits and fills in the manifest's
 * sampler defaults: the result is exactly what the sampler will run, echoed to the client.
 */
export function resolveGenerateParams(
  handle: ModelHandle,
  fields: GenerateFields,
  limits: Limits,
): GenerateParams {
  const defaults = handle.manifest.sampler;
  const classId = resolveClass(fields.class, handle.classes);
  const { maxGenerateCount, maxSteps } = limits;
  const count = positiveInt('count', fields.count ?? 1, maxGenerateCount, 'MAX_GENERATE_COUNT');
  const steps = positiveInt('steps', fields.steps ?? defaults.steps, maxSteps, 'MAX_STEPS');
  const cfgScale = inRange('cfgScale', fields.cfgScale ?? defaults.cfg_scale, 0, 100);
  const [lo, hi] = fields.cfgInterval ?? defaults.cfg_interval;
  inRange('cfgInterval[0]', lo, 0, 1);
  inRange('cfgInterval[1]', hi, 0, 1);
  if (lo > hi) invalid('cfgInterval', `must have lo <= hi; got [${lo}, ${hi}]`);
  const shift = inRange('shift', fields.shift ?? defaults.shift, ...SHIFT_RANGE);
  const seed = fields.seed ?? randomSeed();
  if (!Number.isSafeInteger(seed) || seed < 0) {
    invalid('seed', `must be an integer in 0..${MAX_SEED}; got ${seed}`);
  }
  return {
    classId,
    count,
    steps,
    method: fields.sampler ?? defaults.method,
    cfgScale,
    cfgInterval: [lo, hi],
    shift,
    seed,
  };
}
