import { randomBytes } from 'node:crypto';
import { ServiceError } from '../errors';
import {
  checkGenerateParams,
  seedOutOfRange,
  type GenerateLimits,
} from '../inference/generate-params';
import { resolveClass } from '../intake';
import { MAX_SEED } from '../sampler/philox';
import type { ClassInfo, GenerateParams, ModelHandle, SamplerMethod } from '../types';

/** A generate request as either transport hands it over: unset fields take model defaults. */
export interface GenerateFields {
  /** An id or a class name; resolveClass decides. Anything else, or unset, is invalid_class. */
  class?: unknown;
  count?: number;
  steps?: number;
  cfgScale?: number;
  cfgInterval?: [number, number];
  sampler?: SamplerMethod;
  shift?: number;
  seed?: number;
}

/** A uniformly random seed in 0..2^53-1 (53 of 64 random bits). */
export function randomSeed(): number {
  return Number(randomBytes(8).readBigUInt64BE() >> 11n);
}

/** A uint64 seed as gRPC hands it over (decimal text) -> a number, refusing what is past 2^53-1. */
export function seedFromText(text: string): number {
  const seed = /^\d+$/.test(text) ? BigInt(text) : -1n;
  if (seed < 0n || seed > BigInt(MAX_SEED)) throw seedOutOfRange(text);
  return Number(seed);
}

function missingClass(classes: ClassInfo[]): ServiceError {
  const list = classes.map((c) => `${c.id} ${c.name}`).join(', ');
  return new ServiceError(
    'invalid_class',
    `class is required: an integer id or a class name (${list})`,
    { classes },
  );
}

/**
 * Validates a request against the model and the service limits and fills in the manifest's
 * sampler defaults: the result is exactly what the sampler will run, echoed to the client.
 */
export function resolveGenerateParams(
  handle: ModelHandle,
  fields: GenerateFields,
  limits: GenerateLimits,
): GenerateParams {
  if (fields.class === undefined) throw missingClass(handle.classes);
  const defaults = handle.manifest.sampler;
  const params: GenerateParams = {
    classId: resolveClass(fields.class, handle.classes),
    count: fields.count ?? 1,
    steps: fields.steps ?? defaults.steps,
    method: fields.sampler ?? defaults.method,
    cfgScale: fields.cfgScale ?? defaults.cfg_scale,
    cfgInterval: fields.cfgInterval ?? [...defaults.cfg_interval],
    shift: fields.shift ?? defaults.shift,
    seed: fields.seed ?? randomSeed(),
  };
  return checkGenerateParams(params, handle.classes, limits);
}
