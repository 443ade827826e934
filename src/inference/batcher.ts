import { abortError, ServiceError } from '../errors';
import { shuttingDown } from '../lifecycle';
import type { Logger } from '../logger';
import type { RunResult } from './pool';
import type { Feeds, TensorData, WireTensor } from './protocol';
import type { RowBudget } from './row-budget';

/**
 * Dynamic batching for one graph of one model. Concurrent requests are concatenated along the
 * batch axis into one ONNX run of at most `maxRows` rows; a run starts when that many rows
 * wait or the oldest request has waited `maxWaitMs`, and at most `concurrency` runs are in
 * flight (rows pile up meanwhile, which is what makes batches under load). A request larger
 * than `maxRows` is split across runs and reassembled. Every input is batched the same way,
 * so generator rows each carry their own t and y.
 *
 * Cost: a lone request waits up to maxWaitMs before its run; a generation pays it once per
 * generator evaluation (16 for the default Heun 8 steps). BATCH_MAX_WAIT_MS=0 removes that
 * wait; batches then form only from rows that arrive while a run is in flight.
 */

export interface InputSpec {
  type: WireTensor['type'];
  /** Dims after the batch axis, e.g. [1, 28, 28] for an image input. */
  rowDims: number[];
}

export interface BatcherOptions {
  /** For logs, e.g. "fmnist-dmvae/encoder". */
  name: string;
  inputs: Record<string, InputSpec>;
  maxRows: number;
  maxWaitMs: number;
  concurrency: number;
  budget: RowBudget;
  run: (feeds: Feeds) => Promise<RunResult>;
  logger: Logger;
}

export interface SubmitOptions {
  signal?: AbortSignal;
  /** The rows are already counted by a lease on the budget (generation holds one). */
  reserved?: boolean;
}

interface Item {
  feeds: Feeds;
  rows: number;
  taken: number;
  done: number;
  pieces: { start: number; outputs: Feeds }[];
  enqueuedAt: number;
  settled: boolean;
  resolve: (out: Feeds) => void;
  reject: (err: Error) => void;
  cleanup: () => void;
}

interface Segment {
  item: Item;
  start: number;
  count: number;
}

export class Batcher {
  private queue: Item[] = [];
  private queuedRows = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private runs = 0;
  private rowsRun = 0;
  private peakInFlight = 0;

  constructor(private readonly opts: BatcherOptions) {}

  /** Counters for tests and benchmarks. */
  stats() {
    return {
      runs: this.runs,
      rows: this.rowsRun,
      queuedRows: this.queuedRows,
      inFlight: this.inFlight,
      peakInFlight: this.peakInFlight,
    };
  }

  /** Queues `feeds` (all inputs with the same batch size N >= 1); resolves with N output rows. */
  submit(feeds: Feeds, { signal, reserved = false }: SubmitOptions = {}): Promise<Feeds> {
    let rows: number;
    try {
      rows = this.checkFeeds(feeds);
      if (this.closed) throw shuttingDown();
      if (signal?.aborted) throw cancelled(signal);
      if (!reserved) this.opts.budget.acquire(rows);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<Feeds>((resolve, reject) => {
      const item: Item = {
        feeds,
        rows,
        taken: 0,
        done: 0,
        pieces: [],
        enqueuedAt: performance.now(),
        settled: false,
        resolve,
        reject,
        cleanup: () => {},
      };
      const onAbort = () => this.settle(item, () => reject(cancelled(signal)));
      signal?.addEventListener('abort', onAbort, { once: true });
      item.cleanup = () => {
        signal?.removeEventListener('abort', onAbort);
        if (!reserved) this.opts.budget.release(rows);
      };
      this.queue.push(item);
      this.queuedRows += rows;
      this.schedule();
    });
  }

  /** Fails everything still queued; runs in flight finish on their own. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const item of [...this.queue]) {
      this.settle(item, () => item.reject(shuttingDown('queued work was dropped')));
    }
  }

  private schedule(): void {
    while (!this.closed && this.inFlight < this.opts.concurrency && this.queuedRows > 0) {
      const waited = performance.now() - this.queue[0].enqueuedAt;
      if (this.queuedRows < this.opts.maxRows && waited < this.opts.maxWaitMs) {
        this.timer ??= setTimeout(() => {
          this.timer = null;
          this.schedule();
        }, this.opts.maxWaitMs - waited);
        return;
      }
      this.dispatch();
    }
    if (this.queuedRows === 0 && this.timer) {
      clearTimeout(this.timer); // nothing left to wait for
      this.timer = null;
    }
  }

  private dispatch(): void {
    const segments: Segment[] = [];
    let total = 0;
    while (total < this.opts.maxRows && this.queue.length > 0) {
      const item = this.queue[0];
      const count = Math.min(item.rows - item.taken, this.opts.maxRows - total);
      segments.push({ item, start: item.taken, count });
      item.taken += count;
      total += count;
      if (item.taken === item.rows) this.queue.shift();
    }
    this.queuedRows -= total;
    const started = performance.now();
    const waitMs = started - Math.min(...segments.map((s) => s.item.enqueuedAt));
    this.inFlight += 1;
    this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
    this.opts
      .run(this.merge(segments, total))
      .then(
        (res) => {
          this.scatter(segments, res.outputs, total);
          this.runs += 1;
          this.rowsRun += total;
          this.opts.logger.debug(
            {
              batcher: this.opts.name,
              rows: total,
              requests: segments.length,
              waitMs: round(waitMs),
              runMs: round(res.runMs),
              totalMs: round(performance.now() - started),
            },
            'batch run',
          );
        },
        (err: Error) => this.fail(segments, err),
      )
      .finally(() => {
        this.inFlight -= 1;
        this.schedule();
      });
  }

  private merge(segments: Segment[], total: number): Feeds {
    const feeds: Feeds = {};
    for (const [name, spec] of Object.entries(this.opts.inputs)) {
      const rowSize = product(spec.rowDims);
      const data =
        spec.type === 'int64'
          ? new BigInt64Array(total * rowSize)
          : new Float32Array(total * rowSize);
      let offset = 0;
      for (const { item, start, count } of segments) {
        const src = item.feeds[name].data.subarray(start * rowSize, (start + count) * rowSize);
        (data as TensorData).set(src as never, offset);
        offset += count * rowSize;
      }
      feeds[name] = { type: spec.type, data, dims: [total, ...spec.rowDims] };
    }
    return feeds;
  }

  private scatter(segments: Segment[], outputs: Feeds, total: number): void {
    for (const [name, t] of Object.entries(outputs)) {
      if (t.dims[0] !== total) {
        const msg = `${this.opts.name} output ${name} has ${t.dims[0]} rows for ${total} input rows`;
        return this.fail(segments, new ServiceError('inference_failed', msg));
      }
    }
    let offset = 0;
    for (const { item, start, count } of segments) {
      const at = offset;
      offset += count;
      if (item.settled) continue;
      const whole = segments.length === 1 && count === item.rows;
      item.pieces.push({ start, outputs: whole ? outputs : sliceRows(outputs, total, at, count) });
      item.done += count;
      if (item.done === item.rows) this.settle(item, () => item.resolve(assemble(item)));
    }
  }

  private fail(segments: Segment[], err: Error): void {
    const error =
      err instanceof ServiceError ? err : new ServiceError('inference_failed', 'Inference failed');
    for (const { item } of segments) this.settle(item, () => item.reject(error));
  }

  private settle(item: Item, finish: () => void): void {
    if (item.settled) return;
    item.settled = true;
    const at = this.queue.indexOf(item);
    if (at >= 0) {
      this.queue.splice(at, 1);
      this.queuedRows -= item.rows - item.taken;
    }
    item.cleanup();
    finish();
  }

  /** Batch size of the feeds, after checking them against the graph's input specs. */
  private checkFeeds(feeds: Feeds): number {
    let rows = -1;
    for (const [name, spec] of Object.entries(this.opts.inputs)) {
      const t = feeds[name];
      const n = t?.dims[0];
      const ok =
        t !== undefined &&
        t.type === spec.type &&
        Number.isInteger(n) &&
        n > 0 &&
        (rows < 0 || n === rows) &&
        t.dims.length === spec.rowDims.length + 1 &&
        spec.rowDims.every((d, i) => t.dims[i + 1] === d) &&
        t.data.length === n * product(spec.rowDims);
      if (!ok) {
        const got = t ? `${t.type} [${t.dims.join(', ')}] (${t.data.length} values)` : 'nothing';
        throw new Error(
          `${this.opts.name}: input ${name} must be ${spec.type} [N, ${spec.rowDims.join(', ')}], got ${got}`,
        );
      }
      rows = n;
    }
    return rows;
  }
}

/** Rows offset..offset+count of every output, copied out of the batch's buffers. */
function sliceRows(outputs: Feeds, total: number, offset: number, count: number): Feeds {
  const out: Feeds = {};
  for (const [name, t] of Object.entries(outputs)) {
    const rowSize = t.data.length / total;
    const data = t.data.slice(offset * rowSize, (offset + count) * rowSize);
    out[name] = { type: t.type, data, dims: [count, ...t.dims.slice(1)] };
  }
  return out;
}

function assemble(item: Item): Feeds {
  if (item.pieces.length === 1) return item.pieces[0].outputs;
  const pieces = [...item.pieces].sort((a, b) => a.start - b.start);
  const out: Feeds = {};
  for (const [name, first] of Object.entries(pieces[0].outputs)) {
    const rowSize = first.data.length / first.dims[0];
    const data =
      first.type === 'int64'
        ? new BigInt64Array(item.rows * rowSize)
        : new Float32Array(item.rows * rowSize);
    for (const p of pieces)
      (data as TensorData).set(p.outputs[name].data as never, p.start * rowSize);
    out[name] = { type: first.type, data, dims: [item.rows, ...first.dims.slice(1)] };
  }
  return out;
}

const product = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
const round = (ms: number) => Math.round(ms * 10) / 10;
const cancelled = (signal?: AbortSignal) => abortError(signal, 'Request');
