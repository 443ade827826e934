import type { Manifest } from './manifest';

/**
 * How far from its training latents a model is asked to decode. Normalised latents,
 * (z - latent.mean) * latent.scale, have about unit spread over the training set (that is what
 * the manifest's mean and scale are measured for), so |z_norm| <= LATENT_LIMIT allows a
 * thousand standard deviations: far past any meaningful latent, interpolation or
 * extrapolation, and far below values such as 3e38 that overflow float32 inside the decoder
 * and come out as NaN pixels. The same bound applies to latents the sampler produces.
 */
export const LATENT_LIMIT = 1000;

export type LatentSpaceName = 'raw' | 'normalized';

/** The accepted interval of one latent value in the given space. */
export function latentInterval(
  latent: Pick<Manifest['latent'], 'mean' | 'scale'>,
  space: LatentSpaceName,
): [number, number] {
  if (space === 'normalized') return [-LATENT_LIMIT, LATENT_LIMIT];
  const reach = LATENT_LIMIT / Math.abs(latent.scale);
  return [latent.mean - reach, latent.mean + reach];
}

/** Flat index of the first value that is not finite or lies outside [lo, hi]; -1 if none. */
export function firstOutside(data: Float32Array, [lo, hi]: [number, number]): number {
  for (let i = 0; i < data.length; i++) {
    if (!(data[i] >= lo && data[i] <= hi)) return i;
  }
  return -1;
}
