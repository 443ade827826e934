import { ServiceError } from '../errors';
import type { ImageFormat, ResizePolicy, SamplerMethod } from '../types';
import type { LatentSpace } from '../api/options';

/**
 * Proto enum names <-> the API's option values. UNSPECIFIED (or an unset field) maps to
 * undefined, which the shared code turns into the default.
 */

const RESIZE: Record<string, ResizePolicy> = {
  RESIZE_POLICY_CENTER_CROP: 'center-crop',
  RESIZE_POLICY_PAD: 'pad',
  RESIZE_POLICY_STRETCH: 'stretch',
};
const SPACE: Record<string, LatentSpace> = {
  LATENT_SPACE_RAW: 'raw',
  LATENT_SPACE_NORMALIZED: 'normalized',
};
const FORMAT: Record<string, ImageFormat> = {
  IMAGE_FORMAT_PNG: 'png',
  IMAGE_FORMAT_JPEG: 'jpeg',
  IMAGE_FORMAT_WEBP: 'webp',
};
const SAMPLER: Record<string, SamplerMethod> = { SAMPLER_EULER: 'euler', SAMPLER_HEUN: 'heun' };

/**
 * An enum number this proto does not know (a newer client, or a bug) arrives as a number: it
 * is refused rather than read as "unset", which would silently run with the default.
 */
const lookup =
  <T>(field: string, table: Record<string, T>) =>
  (name: unknown): T | undefined => {
    const unset = name === undefined || name === null || /_UNSPECIFIED$/.test(String(name));
    if (unset) return undefined;
    if (typeof name === 'string' && Object.hasOwn(table, name)) return table[name];
    throw new ServiceError(
      'invalid_request',
      `${field} ${name} is not a known value; use one of ${Object.keys(table).join(', ')} ` +
        '(or leave it unset for the default)',
      { field, value: String(name), allowed: Object.keys(table) },
    );
  };
const reverse =
  <T extends string>(table: Record<string, T>) =>
  (value: T): string =>
    Object.keys(table).find((k) => table[k] === value) as string;

export const resizeFromProto = lookup('resize', RESIZE);
export const spaceFromProto = lookup('latent_space', SPACE);
export const formatFromProto = lookup('format', FORMAT);
export const samplerFromProto = lookup('sampler', SAMPLER);
export const spaceToProto = reverse(SPACE);
export const samplerToProto = reverse(SAMPLER);
