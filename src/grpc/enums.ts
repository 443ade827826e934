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

// An enum number the proto does not know arrives as a number: treat it as unset.
const lookup =
  <T>(table: Record<string, T>) =>
  (name: unknown): T | undefined =>
    typeof name === 'string' ? table[name] : undefined;
const reverse =
  <T extends string>(table: Record<string, T>) =>
  (value: T): string =>
    Object.keys(table).find((k) => table[k] === value) as string;

export const resizeFromProto = lookup(RESIZE);
export const spaceFromProto = lookup(SPACE);
export const formatFromProto = lookup(FORMAT);
export const samplerFromProto = lookup(SAMPLER);
export const spaceToProto = reverse(SPACE);
export const samplerToProto = reverse(SAMPLER);
