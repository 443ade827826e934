import { ModelLoadError, type GraphName, type Manifest, type ModelFolder } from './manifest';
import type { InputSpec } from '../inference/batcher';
import type { Feeds, WorkerModelSpec } from '../inference/protocol';

/** What each graph takes and gives, from docs/model-format.md and the model's manifest. */

/** Graph inputs and outputs fixed by docs/model-format.md. */
export const GRAPH_IO: Record<GraphName, { inputs: string[]; outputs: string[] }> = {
  encoder: { inputs: ['image'], outputs: ['latent'] },
  decoder: { inputs: ['latent'], outputs: ['image'] },
  generator: { inputs: ['x', 't', 'y'], outputs: ['v'] },
  classifier: { inputs: ['image'], outputs: ['logits'] },
};

export function inputSpecs(m: Manifest, graph: GraphName): Record<string, InputSpec> {
  const image = [m.image.channels, m.image.height, m.image.width];
  const latent = [...m.latent.shape];
  switch (graph) {
    case 'encoder':
    case 'classifier':
      return { image: { type: 'float32', rowDims: image } };
    case 'decoder':
      return { latent: { type: 'float32', rowDims: latent } };
    case 'generator':
      return {
        x: { type: 'float32', rowDims: latent },
        t: { type: 'float32', rowDims: [] },
        y: { type: 'int64', rowDims: [] },
      };
  }
}

export function expectedOutputDims(m: Manifest, graph: GraphName): number[] {
  const image = [m.image.channels, m.image.height, m.image.width];
  if (graph === 'decoder') return [1, ...image];
  if (graph === 'classifier') return [1, m.classes.length];
  return [1, ...m.latent.shape];
}

export function workerSpec(f: ModelFolder, graphs: GraphName[]): WorkerModelSpec {
  const spec: WorkerModelSpec = { name: f.manifest.name, graphs: {}, warmup: {} };
  for (const graph of graphs) {
    const file = f.graphPaths[graph];
    if (!file) throw new ModelLoadError(f.dir, `manifest names no ${graph} graph`);
    spec.graphs[graph] = file;
    spec.warmup[graph] = warmupFeeds(f.manifest, graph);
  }
  return spec;
}

/** A batch of one neutral input (zeros; the first real class for y). */
export function warmupFeeds(m: Manifest, graph: GraphName): Feeds {
  const feeds: Feeds = {};
  for (const [name, spec] of Object.entries(inputSpecs(m, graph))) {
    const size = spec.rowDims.reduce((a, b) => a * b, 1);
    const data = spec.type === 'int64' ? new BigInt64Array(size) : new Float32Array(size);
    feeds[name] = { type: spec.type, data, dims: [1, ...spec.rowDims] };
  }
  return feeds;
}
