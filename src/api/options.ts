import { ServiceError } from '../errors';
import type { ImageFormat, ResizePolicy, SamplerMethod } from '../types';

/**
 * Option values shared by the HTTP and gRPC transports, and their defaults. Each transport
 * maps its own spelling (query string, JSON field, proto enum) onto these names.
 */

export const RESIZE_POLICIES = ['center-crop', 'pad', 'stretch'] as const satisfies ResizePolicy[];
export const LATENT_SPACES = ['raw', 'normalized'] as const;
export const LATENT_DTYPES = ['float32', 'float16'] as const;
export const IMAGE_FORMATS = ['png', 'jpeg', 'webp'] as const satisfies ImageFormat[];
export const SAMPLERS = ['euler', 'heun'] as const satisfies SamplerMethod[];

export type LatentSpace = (typeof LATENT_SPACES)[number];
export type LatentDtype = (typeof LATENT_DTYPES)[number];

export const DEFAULT_RESIZE: ResizePolicy = 'center-crop';
export const DEFAULT_SPACE: LatentSpace = 'raw';
export const DEFAULT_DTYPE: LatentDtype = 'float32';
export const DEFAULT_FORMAT: ImageFormat = 'png';

export const MEDIA_TYPES: Record<ImageFormat, string> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
};

export function formatOfMediaType(type: string): ImageFormat | undefined {
  return (Object.keys(MEDIA_TYPES) as ImageFormat[]).find((f) => MEDIA_TYPES[f] === type);
}

/** One of `allowed`, or the fallback when the value is absent; 400 naming the choices if not. */
export function pickOption<T extends string>(
  name: string,
  value: unknown,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined || value === null || value === '') return fallback;
  const known = typeof value === 'string' && (allowed as readonly string[]).includes(value);
  if (known) return value as T;
  throw new ServiceError(
    'invalid_request',
    `${name} must be one of ${allowed.join(', ')}; got ${JSON.stringify(value)}`,
    { field: name, allowed },
  );
}
