import { SAMPLERS } from '../api/options';
import type { Config } from '../config';
import { ServiceError } from '../errors';
import { resolveClass } from '../intake';
import { MAX_SEED } from '../sampler/philox';
import { SHIFT_RANGE } from '../sampler/schedule';
import type { ClassInfo, GenerateParams } from '../types';

/**
 * What a generation may ask for, stated once: api/generate checks a request with it after
 * filling in the defaults, and the model handle checks again before sampling. Field names are
 * the public ones (HTTP JSON, gRPC camelCase), so both transports read the same messages.
 */

export type GenerateLimits = Pick<Config, 'maxGenerateCount' | 'maxSteps'>;

/** Guidance weights the service accepts; 1 turns guidance off, 0 is the unconditional model. */
export const CFG_SCALE_RANGE: readonly [number, number] = [0, 100];

function invalid(field: string, message: string): ServiceError {
  return new ServiceError('invalid_request', `${field} ${message}`, { field });
}

/** A seed outside 0..2^53-1; `value` as the client sent it (a uint64 stays exact as text). */
export function seedOutOfRange(value: number | string | bigint): ServiceError {
  return invalid('seed', `must be an integer in 0..${MAX_SEED}; got ${value}`);
}

function positiveInt(field: string, value: number, limit: number, setting: string): void {
  if (!Number.isInteger(value) || value < 1) {
    throw invalid(field, `must be an integer >= 1; got ${value}`);
  }
  if (value > limit) {
    throw new ServiceError(
      'limit_exceeded',
      `${field} = ${value} is over the limit ${setting} = ${limit}`,
      { field, limit, actual: value },
    );
  }
}

function inRange(field: string, value: number, [lo, hi]: readonly [number, number]): void {
  if (!(Number.isFinite(value) && value >= lo && value <= hi)) {
    throw invalid(field, `must be in [${lo}, ${hi}]; got ${value}`);
  }
}

/**
 * Throws the first problem with `p` as a ServiceError (invalid_class, invalid_request or
 * limit_exceeded naming the setting); returns `p` unchanged when every field is acceptable.
 */
export function checkGenerateParams(
  p: GenerateParams,
  classes: ClassInfo[],
  limits: GenerateLimits,
): GenerateParams {
  resolveClass(p.classId, classes);
  positiveInt('count', p.count, limits.maxGenerateCount, 'MAX_GENERATE_COUNT');
  positiveInt('steps', p.steps, limits.maxSteps, 'MAX_STEPS');
  if (!(SAMPLERS as readonly string[]).includes(p.method)) {
    throw invalid('sampler', `must be one of ${SAMPLERS.join(', ')}; got ${p.method}`);
  }
  inRange('cfgScale', p.cfgScale, CFG_SCALE_RANGE);
  const [lo, hi] = Array.isArray(p.cfgInterval) ? p.cfgInterval : [NaN, NaN];
  inRange('cfgInterval[0]', lo, [0, 1]);
  inRange('cfgInterval[1]', hi, [0, 1]);
  if (lo > hi) throw invalid('cfgInterval', `must have lo <= hi; got [${lo}, ${hi}]`);
  inRange('shift', p.shift, SHIFT_RANGE);
  if (!Number.isSafeInteger(p.seed) || p.seed < 0 || p.seed > MAX_SEED) {
    throw seedOutOfRange(p.seed);
  }
  return p;
}
