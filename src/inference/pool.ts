import { existsSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { ServiceError } from '../errors';
import { shuttingDown } from '../lifecycle';
import type { Logger } from '../logger';
import type { GraphName } from '../models/manifest';
import {
  transferList,
  type CloseMessage,
  type Feeds,
  type FromWorker,
  type InitMessage,
  type SessionReport,
  type WarmupDims,
} from './protocol';

/**
 * A fixed set of worker threads, each holding its own ORT sessions for every model. A job goes
 * to the first idle worker, else waits in FIFO order. A worker that dies fails only the job it
 * was running (inference_failed) and is replaced; the process stays up.
 *
 * Limits: a run has no time limit of its own (a hung ORT call holds its worker until the
 * process stops; callers time out through their AbortSignal), and an input that crashes the
 * worker every time also fails the requests batched with it.
 */

export interface RunResult {
  outputs: Feeds;
  runMs: number;
}

interface Job {
  model: string;
  graph: GraphName;
  feeds: Feeds;
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
}

interface Slot {
  index: number;
  worker: Worker;
  ready: boolean;
  job: Job | null;
  jobId: number;
  exited: boolean;
}

export interface PoolOptions {
  size: number;
  init: InitMessage;
  logger: Logger;
  /** Compiled worker file; found next to this module or under dist/ by default. */
  workerFile?: string;
}

const MAX_RESPAWN_DELAY_MS = 5000;
/** How long close() waits for a worker to finish its run; runs take milliseconds to seconds. */
const CLOSE_WAIT_MS = 30_000;

/** dist/inference/worker.js, whether this module runs from dist/ or from src/ under ts-jest. */
export function resolveWorkerFile(): string {
  const candidates = [
    path.join(__dirname, 'worker.js'),
    path.resolve(__dirname, '..', '..', 'dist', 'inference', 'worker.js'),
  ];
  const found = candidates.find((c) => existsSync(c));
  if (!found) {
    throw new Error(`ORT worker not built: none of ${candidates.join(', ')} exist (npm run build)`);
  }
  return found;
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private readonly workerFile: string;
  private closed = false;
  /** Set once start() succeeded; before that a dying worker is a startup failure, not a crash. */
  private running = false;
  private nextJobId = 1;
  private failures = 0;
  /** What the first worker reported: one entry per session. */
  sessions: SessionReport[] = [];
  warmupDims: WarmupDims = {};

  constructor(private readonly opts: PoolOptions) {
    this.workerFile = opts.workerFile ?? resolveWorkerFile();
  }

  /** Starts every worker and waits until each has loaded and warmed up its sessions. */
  async start(): Promise<void> {
    const started = Array.from({ length: this.opts.size }, (_, i) => this.spawn(i));
    const results = await Promise.allSettled(started);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) {
      await this.close();
      throw (failed as PromiseRejectedResult).reason;
    }
    this.running = true;
  }

  get size(): number {
    return this.slots.filter((s) => s.ready).length;
  }

  run(model: string, graph: GraphName, feeds: Feeds): Promise<RunResult> {
    if (this.closed) return Promise.reject(shuttingDown());
    return new Promise((resolve, reject) => {
      this.queue.push({ model, graph, feeds, resolve, reject });
      this.dispatch();
    });
  }

  /** Kills worker `index` as a crash would; for tests and operators checking recovery. */
  async terminateWorker(index: number): Promise<void> {
    await this.slots[index]?.worker.terminate();
  }

  /**
   * Fails queued jobs, lets each worker finish the run it has, release its sessions and exit.
   * A worker still running after CLOSE_WAIT_MS (a hung ORT call) is terminated: that is the one
   * case left where ORT can take the process down with it, and it is logged first.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(shuttingDown('queued work was dropped'));
    await Promise.all(this.slots.map((slot) => this.stopWorker(slot)));
  }

  private stopWorker(slot: Slot): Promise<void> {
    if (slot.exited) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.opts.logger.error(
          { worker: slot.index, waitedMs: CLOSE_WAIT_MS },
          'ORT worker did not finish its run in time; terminating it',
        );
        void slot.worker.terminate();
      }, CLOSE_WAIT_MS);
      slot.worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      slot.worker.postMessage({ kind: 'close' } satisfies CloseMessage);
    });
  }

  private spawn(index: number): Promise<void> {
    const worker = new Worker(this.workerFile);
    const slot: Slot = { index, worker, ready: false, job: null, jobId: 0, exited: false };
    this.slots[index] = slot;
    return new Promise((resolve, reject) => {
      worker.on('message', (msg: FromWorker) => {
        if (msg.kind === 'ready') {
          slot.ready = true;
          this.failures = 0;
          if (this.sessions.length === 0) {
            this.sessions = msg.sessions;
            this.warmupDims = msg.warmupDims;
          }
          const warmupMs = Math.round(msg.warmupMs);
          this.opts.logger.info(
            { worker: index, threadId: worker.threadId, warmupMs },
            'ORT worker ready',
          );
          resolve();
          this.dispatch();
        } else if (msg.kind === 'init-failed') {
          reject(new Error(`ORT worker ${index} failed to start: ${msg.message}`));
          void worker.terminate();
        } else {
          this.finish(slot, msg);
        }
      });
      worker.on('error', (err) => {
        this.opts.logger.error({ worker: index, err }, 'ORT worker error');
        reject(err);
      });
      worker.on('exit', (code) => this.onExit(slot, code));
      worker.postMessage(this.opts.init);
    });
  }

  private onExit(slot: Slot, code: number): void {
    slot.exited = true;
    if (this.slots[slot.index] !== slot) return;
    slot.ready = false;
    if (slot.job) {
      slot.job.reject(
        new ServiceError('inference_failed', 'Inference worker stopped during the run', { code }),
      );
      slot.job = null;
    }
    if (this.closed || !this.running) return;
    this.failures += 1;
    const delay = Math.min(MAX_RESPAWN_DELAY_MS, 50 * 2 ** (this.failures - 1));
    this.opts.logger.error({ worker: slot.index, code, respawnInMs: delay }, 'ORT worker exited');
    setTimeout(() => {
      if (this.closed) return;
      this.spawn(slot.index).catch((err: Error) => {
        this.opts.logger.error({ worker: slot.index, err }, 'ORT worker restart failed');
        // With no worker left, queued jobs would wait for a restart that keeps failing.
        if (this.size === 0) {
          for (const job of this.queue.splice(0)) {
            job.reject(new ServiceError('inference_failed', 'No inference worker is running'));
          }
        }
      });
    }, delay);
  }

  private finish(slot: Slot, msg: FromWorker): void {
    const job = slot.job;
    if (!job || !('id' in msg) || msg.id !== slot.jobId) return;
    slot.job = null;
    if (msg.kind === 'result') job.resolve({ outputs: msg.outputs, runMs: msg.runMs });
    else if (msg.kind === 'run-failed') {
      this.opts.logger.error(
        { model: job.model, graph: job.graph, reason: msg.message },
        'ORT run failed',
      );
      job.reject(new ServiceError('inference_failed', `Inference failed in ${job.graph}`));
    }
    this.dispatch();
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (!slot || !slot.ready || slot.job) continue;
      const job = this.queue.shift() as Job;
      slot.job = job;
      slot.jobId = this.nextJobId++;
      const msg = {
        kind: 'run',
        id: slot.jobId,
        model: job.model,
        graph: job.graph,
        feeds: job.feeds,
      };
      slot.worker.postMessage(msg, transferList(job.feeds));
    }
  }
}
