import type { ModelHandle } from '../types';

/** The public description of a model, shared by GET /v1/models/{model} and GetModel. */
export function describeModel(handle: ModelHandle) {
  const { manifest } = handle;
  const sampler = manifest.sampler;
  return {
    name: handle.name,
    description: manifest.description,
    image: { ...handle.imageSpec },
    latent: {
      shape: [...handle.latentShape],
      mean: manifest.latent.mean,
      scale: manifest.latent.scale,
    },
    // The null class is the sampler's business only; it is never listed or selectable.
    classes: handle.classes.map(({ id, name }) => ({ id, name })),
    sampler: {
      sampler: sampler.method,
      steps: sampler.steps,
      cfgScale: sampler.cfg_scale,
      cfgInterval: [...sampler.cfg_interval],
      shift: sampler.shift,
    },
    providers: handle.providers.map((p) => ({ ...p, requested: [...p.requested] })),
  };
}

export type ModelDescription = ReturnType<typeof describeModel>;
