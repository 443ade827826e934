/**
 * Worker thread entry: owns ONNX Runtime sessions and runs them on request. ORT's run blocks
 * the thread it runs on, so keeping it here leaves the main event loop free; it also keeps
 * ORT's typed arrays out of jest's VM realm (tests load this compiled file from dist/).
 */
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { ProviderRequest } from '../config';
import type { GraphName } from '../models/manifest';
import {
  providerLabel,
  transferList,
  type Feeds,
  type FromWorker,
  type InitMessage,
  type SessionReport,
  type ToWorker,
  type WarmupDims,
} from './protocol';

if (!parentPort) throw new Error('inference/worker must run as a worker thread');
const port = parentPort;

// A refused provider (e.g. CUDA without its libraries) otherwise prints native error lines.
ort.env.logLevel = 'fatal';

const sessions = new Map<string, ort.InferenceSession>();
/** Providers that failed once in this thread; not retried for the next graphs. */
const refusedHere = new Map<string, string>();

const send = (msg: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);

/** Init and runs not finished yet: close waits for them (see close). */
const busy = new Set<Promise<void>>();
const track = (work: Promise<void>) => {
  busy.add(work);
  void work.finally(() => busy.delete(work));
};

port.on('message', (msg: ToWorker) => {
  if (msg.kind === 'init') {
    track(init(msg).catch((err: Error) => send({ kind: 'init-failed', message: err.message })));
  } else if (msg.kind === 'run') {
    const failed = (err: Error) => send({ kind: 'run-failed', id: msg.id, message: err.message });
    track(run(msg.id, `${msg.model}/${msg.graph}`, msg.feeds).catch(failed));
  } else if (msg.kind === 'close') {
    void close();
  }
});

/**
 * Ends the thread cleanly. worker.terminate() while ORT's native run is on the stack aborts the
 * whole process (Napi::Error thrown during teardown), so the pool asks instead: this waits for
 * the init or run in progress, releases the sessions, and only then exits.
 */
async function close(): Promise<void> {
  while (busy.size > 0) await Promise.allSettled([...busy]);
  for (const session of sessions.values()) await session.release().catch(() => undefined);
  sessions.clear();
  process.exit(0); // in a worker thread this ends the thread, not the process
}

async function init(msg: InitMessage): Promise<void> {
  const reports: SessionReport[] = [];
  for (const model of msg.models) {
    for (const [graph, file] of Object.entries(model.graphs) as [GraphName, string][]) {
      const { session, report } = await openSession(file, msg);
      sessions.set(`${model.name}/${graph}`, session);
      reports.push({ ...report, model: model.name, graph });
    }
  }
  const started = performance.now();
  const warmupDims: WarmupDims = {};
  for (const model of msg.models) {
    for (const [graph, feeds] of Object.entries(model.warmup) as [GraphName, Feeds][]) {
      const key = `${model.name}/${graph}`;
      const session = sessions.get(key);
      if (!session) continue;
      const out = await session.run(toOrt(feeds)).catch((err: Error) => {
        throw new Error(`warm-up run of ${key} failed: ${err.message}`);
      });
      warmupDims[key] = Object.fromEntries(Object.entries(out).map(([n, t]) => [n, [...t.dims]]));
    }
  }
  send({ kind: 'ready', sessions: reports, warmupMs: performance.now() - started, warmupDims });
}

/** Tries the requested providers in order; the first that ORT accepts is the one used. */
async function openSession(file: string, msg: InitMessage) {
  const requested = msg.providers.map(providerLabel);
  const candidates: ProviderRequest[] = [...msg.providers];
  if (msg.fallback && !candidates.some((p) => p.name === 'cpu')) candidates.push({ name: 'cpu' });
  const refused: SessionReport['refused'] = [];
  for (const p of candidates) {
    const label = providerLabel(p);
    const known = refusedHere.get(label);
    if (known === undefined) {
      try {
        const session = await ort.InferenceSession.create(file, {
          executionProviders: [p.deviceId === undefined ? p.name : ({ ...p } as never)],
          intraOpNumThreads: msg.intraOpThreads,
          interOpNumThreads: 1,
          graphOptimizationLevel: 'all',
        });
        const names = {
          inputNames: [...session.inputNames],
          outputNames: [...session.outputNames],
        };
        return { session, report: { requested, actual: label, refused, ...names } };
      } catch (err) {
        refusedHere.set(label, (err as Error).message);
      }
    }
    refused.push({ provider: label, reason: refusedHere.get(label) as string });
    if (!msg.fallback) {
      throw new Error(
        `execution provider ${label} is unavailable for ${file} (${refusedHere.get(label)}) ` +
          'and PROVIDER_FALLBACK=false',
      );
    }
  }
  throw new Error(`no execution provider could open ${file}: ${JSON.stringify(refused)}`);
}

async function run(id: number, key: string, feeds: Feeds): Promise<void> {
  const session = sessions.get(key);
  if (!session) throw new Error(`no session ${key} in this worker`);
  const started = performance.now();
  const result = await session.run(toOrt(feeds));
  const runMs = performance.now() - started;
  const outputs: Feeds = {};
  for (const [name, tensor] of Object.entries(result)) {
    if (tensor.type !== 'float32' && tensor.type !== 'int64') {
      throw new Error(`${key} output ${name} has type ${tensor.type}; expected float32 or int64`);
    }
    outputs[name] = {
      type: tensor.type,
      data: tensor.data as Float32Array,
      dims: [...tensor.dims],
    };
  }
  send({ kind: 'result', id, outputs, runMs }, transferList(outputs));
}

function toOrt(feeds: Feeds): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) out[name] = new ort.Tensor(t.type, t.data, t.dims);
  return out;
}
