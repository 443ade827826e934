import type { ProviderRequest } from '../config';
import type { GraphName } from '../models/manifest';

/**
 * Messages between the pool (main thread) and the ORT worker threads. Tensor buffers travel in
 * the transfer list, so a message moves them instead of copying.
 */

export type TensorData = Float32Array | BigInt64Array;

export interface WireTensor {
  type: 'float32' | 'int64';
  data: TensorData;
  dims: number[];
}

export type Feeds = Record<string, WireTensor>;

export interface WorkerModelSpec {
  name: string;
  graphs: Partial<Record<GraphName, string>>;
  /** One batch-of-1 input per graph, run once at load so the first request is not slow. */
  warmup: Partial<Record<GraphName, Feeds>>;
}

export interface InitMessage {
  kind: 'init';
  models: WorkerModelSpec[];
  providers: ProviderRequest[];
  fallback: boolean;
  intraOpThreads: number;
}

export interface RunMessage {
  kind: 'run';
  id: number;
  model: string;
  graph: GraphName;
  feeds: Feeds;
}

/** Finish what is running, release every session, then end the thread. */
export interface CloseMessage {
  kind: 'close';
}

export type ToWorker = InitMessage | RunMessage | CloseMessage;

export interface SessionReport {
  model: string;
  graph: GraphName;
  requested: string[];
  actual: string;
  inputNames: string[];
  outputNames: string[];
  /** Providers tried and refused for this session, with ORT's reason. */
  refused: { provider: string; reason: string }[];
}

/** "model/graph" -> output name -> dims of the warm-up run's outputs (batch of 1). */
export type WarmupDims = Record<string, Record<string, number[]>>;

export type FromWorker =
  | { kind: 'ready'; sessions: SessionReport[]; warmupMs: number; warmupDims: WarmupDims }
  | { kind: 'init-failed'; message: string }
  | { kind: 'result'; id: number; outputs: Feeds; runMs: number }
  | { kind: 'run-failed'; id: number; message: string };

export function providerLabel(p: ProviderRequest): string {
  return p.deviceId === undefined ? p.name : `${p.name}:${p.deviceId}`;
}

/** The buffers of these tensors, for a postMessage transfer list. */
export function transferList(feeds: Feeds): ArrayBuffer[] {
  const seen = new Set<ArrayBuffer>();
  for (const t of Object.values(feeds)) seen.add(t.data.buffer as ArrayBuffer);
  return [...seen];
}
