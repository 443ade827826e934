import fs from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config';
import { ServiceError } from '../errors';
import { Batcher } from '../inference/batcher';
import { checkGenerateParams } from '../inference/generate-params';
import { OnnxModelHandle } from '../inference/model-handle';
import { WorkerPool } from '../inference/pool';
import { RowBudget } from '../inference/row-budget';
import { shuttingDown } from '../lifecycle';
import type { Logger } from '../logger';
import type { ModelHandle, ModelRegistry, ProviderReport } from '../types';
import {
  loadModelFolder,
  ModelLoadError,
  type GraphName,
  type Manifest,
  type ModelFolder,
} from './manifest';
import { expectedOutputDims, GRAPH_IO, inputSpecs, workerSpec } from './graphs';

/**
 * Every model folder under MODELS_DIR: verified on disk, opened in the worker pool with the
 * configured execution providers, warmed up, then served through one batcher per graph.
 */

/**
 * A manifest's sampler defaults must pass the same checks as a request: otherwise every
 * generation that leaves a field unset would be refused, blaming the client.
 */
function checkSamplerDefaults(f: ModelFolder, config: Config): void {
  const s = f.manifest.sampler;
  const defaults = {
    classId: 0,
    count: 1,
    seed: 0,
    steps: s.steps,
    method: s.method,
    cfgScale: s.cfg_scale,
    cfgInterval: s.cfg_interval,
    shift: s.shift,
  };
  try {
    checkGenerateParams(defaults, f.manifest.classes, config);
  } catch (err) {
    const detail = (err as Error).message;
    throw new ModelLoadError(f.dir, `manifest sampler defaults do not pass: ${detail}`);
  }
}

/** Admission budgets: encode and decode share one, generation has its own. */
interface Budgets {
  queue: RowBudget;
  generation: RowBudget;
}

export interface RegistryOptions {
  config: Config;
  logger: Logger;
  /** Also open classifier.onnx (tests and evaluation; the API never uses it). */
  withClassifier?: boolean;
  /** Override the compiled worker file (see inference/pool.ts). */
  workerFile?: string;
}

export class Registry implements ModelRegistry {
  private readonly handles = new Map<string, OnnxModelHandle>();
  private readonly batchers: Batcher[] = [];
  private pool: WorkerPool | null = null;
  private ready = false;
  private closed = false;

  constructor(private readonly opts: RegistryOptions) {}

  /** Loads every model; throws ModelLoadError (or the pool's startup error) naming the cause. */
  async load(): Promise<void> {
    const { config, logger } = this.opts;
    const folders = await this.scan();
    for (const f of folders) {
      checkSamplerDefaults(f, config);
      if (f.unlisted.length > 0) {
        logger.warn(
          { model: f.manifest.name, files: f.unlisted },
          'files not listed in manifest (unverified)',
        );
      }
    }
    const graphs = this.graphsToOpen();
    this.pool = new WorkerPool({
      size: config.ortWorkers,
      logger,
      workerFile: this.opts.workerFile,
      init: {
        kind: 'init',
        models: folders.map((f) => workerSpec(f, graphs)),
        providers: [...config.executionProviders],
        fallback: config.providerFallback,
        intraOpThreads: config.ortIntraOpThreads,
      },
    });
    await this.pool.start();
    try {
      if (this.closed) throw new Error('registry closed while loading');
      this.checkSessions(folders);
    } catch (err) {
      await this.pool.close();
      throw err;
    }
    const budgets: Budgets = {
      queue: new RowBudget(config.queueMaxImages, 'QUEUE_MAX_IMAGES'),
      generation: new RowBudget(config.generateQueueMaxImages, 'GENERATE_QUEUE_MAX_IMAGES'),
    };
    for (const f of folders) this.handles.set(f.manifest.name, this.makeHandle(f, graphs, budgets));
    this.ready = true;
  }

  list(): ModelHandle[] {
    return [...this.handles.values()];
  }

  get(name: string): OnnxModelHandle {
    if (this.closed) throw shuttingDown();
    if (!this.ready) throw new ServiceError('not_ready', 'Models are still loading');
    const handle = this.handles.get(name);
    if (!handle) {
      const known = [...this.handles.keys()];
      throw new ServiceError(
        'model_not_found',
        `No model "${name}"; available: ${known.join(', ')}`,
        {
          available: known,
        },
      );
    }
    return handle;
  }

  /** Loaded, warmed, and at least one ORT worker alive (not all crashed or respawning). */
  isReady(): boolean {
    return this.ready && (this.pool?.size ?? 0) > 0;
  }

  /** The worker pool, for tests that check crash recovery. */
  get workers(): WorkerPool | null {
    return this.pool;
  }

  /** Fails queued work, waits for ONNX runs in progress, then releases every session. */
  async close(): Promise<void> {
    this.closed = true;
    this.ready = false;
    for (const b of this.batchers) b.close();
    await this.pool?.close();
  }

  private async scan(): Promise<ModelFolder[]> {
    const root = this.opts.config.modelsDir;
    const entries = await fs.readdir(root, { withFileTypes: true }).catch((err: Error) => {
      throw new ModelLoadError(root, `cannot read MODELS_DIR: ${err.message}`);
    });
    const dirs: string[] = [];
    for (const e of entries
      .filter((e) => e.isDirectory())
      .sort((a, b) => a.name.localeCompare(b.name))) {
      const dir = path.join(root, e.name);
      if (await fs.stat(path.join(dir, 'manifest.json')).catch(() => null)) dirs.push(dir);
    }
    if (dirs.length === 0) {
      throw new ModelLoadError(
        root,
        'no model folder (a subfolder with manifest.json) in MODELS_DIR',
      );
    }
    const results = await Promise.allSettled(dirs.map((d) => loadModelFolder(d)));
    const errors = results.flatMap((r) =>
      r.status === 'rejected' ? [(r.reason as Error).message] : [],
    );
    if (errors.length > 0)
      throw new ModelLoadError(root, `${errors.length} model(s) failed:\n  ${errors.join('\n  ')}`);
    return results.map((r) => (r as PromiseFulfilledResult<ModelFolder>).value);
  }

  private graphsToOpen(): GraphName[] {
    const graphs: GraphName[] = ['encoder', 'decoder', 'generator'];
    return this.opts.withClassifier ? [...graphs, 'classifier'] : graphs;
  }

  /** Names and warm-up output shapes must be what the contract and the manifest say. */
  private checkSessions(folders: ModelFolder[]): void {
    const pool = this.pool as WorkerPool;
    for (const s of pool.sessions) {
      const want = GRAPH_IO[s.graph];
      const dir = folders.find((f) => f.manifest.name === s.model)?.dir ?? s.model;
      const same = (a: string[], b: string[]) => [...a].sort().join() === [...b].sort().join();
      if (!same(s.inputNames, want.inputs) || !same(s.outputNames, want.outputs)) {
        throw new ModelLoadError(
          dir,
          `${s.graph} graph has inputs [${s.inputNames}] and outputs [${s.outputNames}]; ` +
            `the contract says [${want.inputs}] -> [${want.outputs}]`,
        );
      }
      const m = folders.find((f) => f.manifest.name === s.model)?.manifest as Manifest;
      const expected = expectedOutputDims(m, s.graph);
      const got = pool.warmupDims[`${s.model}/${s.graph}`]?.[want.outputs[0]] ?? [];
      if (got.join() !== expected.join()) {
        throw new ModelLoadError(
          dir,
          `${s.graph} graph gives ${want.outputs[0]} [${got}] for a batch of 1; manifest implies [${expected}]`,
        );
      }
    }
    for (const s of pool.sessions) this.logSession(s);
  }

  private logSession(s: WorkerPool['sessions'][number]): void {
    const fields = { model: s.model, graph: s.graph, requested: s.requested, actual: s.actual };
    if (s.refused.length > 0) {
      this.opts.logger.warn(
        { ...fields, refused: s.refused },
        `EXECUTION PROVIDER FALLBACK: ${s.refused.map((r) => r.provider).join(', ')} unavailable, ` +
          `${s.model}/${s.graph} runs on ${s.actual}`,
      );
    }
    this.opts.logger.info(fields, 'ORT session ready');
  }

  private makeHandle(f: ModelFolder, graphs: GraphName[], budgets: Budgets): OnnxModelHandle {
    const { config, logger } = this.opts;
    const m = f.manifest;
    const pool = this.pool as WorkerPool;
    const make = (graph: GraphName) => {
      const batcher = new Batcher({
        name: `${m.name}/${graph}`,
        inputs: inputSpecs(m, graph),
        maxRows: config.batchMaxImages,
        maxWaitMs: config.batchMaxWaitMs,
        concurrency: config.ortWorkers,
        // Generations hold their rows for their whole run and submit to the generator (and
        // decoder) as "reserved"; a direct generator call draws on the generation budget too.
        budget: graph === 'generator' ? budgets.generation : budgets.queue,
        run: (feeds) => pool.run(m.name, graph, feeds),
        logger,
      });
      this.batchers.push(batcher);
      return batcher;
    };
    const providers: ProviderReport[] = pool.sessions
      .filter((s) => s.model === m.name)
      .map((s) => ({ graph: s.graph, requested: s.requested, actual: s.actual }));
    return new OnnxModelHandle({
      manifest: m,
      providers,
      batchers: {
        encoder: make('encoder'),
        decoder: make('decoder'),
        generator: make('generator'),
        classifier: graphs.includes('classifier') ? make('classifier') : undefined,
      },
      generationBudget: budgets.generation,
      limits: { maxGenerateCount: config.maxGenerateCount, maxSteps: config.maxSteps },
      generateTimeoutMs: config.generateTimeoutMs,
      logger,
    });
  }
}

/**
 * Creates the registry and loads every model; the usual way to start.
 * @example const registry = await loadRegistry({ config, logger });
 */
export async function loadRegistry(opts: RegistryOptions): Promise<Registry> {
  const registry = new Registry(opts);
  await registry.load();
  return registry;
}
