import { ServiceError } from '../../src/errors';
import { Batcher, type BatcherOptions } from '../../src/inference/batcher';
import type { Feeds } from '../../src/inference/protocol';
import { RowBudget } from '../../src/inference/row-budget';
import { silentLogger } from '../../src/logger';

/**
 * The batcher against a fake graph: out = 10 * x + t, one row per input row, so every output
 * value says which row of which request it came from. Runs are recorded.
 */

interface Fake {
  batcher: Batcher;
  runs: { rows: number; t: number[] }[];
  budget: RowBudget;
  /** Resolve held runs when `hold` is set. */
  release: () => void;
}

function makeBatcher(
  opts: Partial<BatcherOptions> & { hold?: boolean; fail?: boolean } = {},
): Fake {
  const runs: Fake['runs'] = [];
  const held: (() => void)[] = [];
  const budget = opts.budget ?? new RowBudget(1000);
  const batcher = new Batcher({
    name: 'test/gen',
    inputs: { x: { type: 'float32', rowDims: [2] }, t: { type: 'float32', rowDims: [] } },
    maxRows: 4,
    maxWaitMs: 20,
    concurrency: 1,
    budget,
    logger: silentLogger,
    ...opts,
    run: async (feeds: Feeds) => {
      const rows = feeds.x.dims[0];
      const t = Array.from(feeds.t.data as Float32Array);
      runs.push({ rows, t });
      if (opts.hold) await new Promise<void>((r) => held.push(r));
      if (opts.fail) throw new Error('boom');
      const v = new Float32Array(rows * 2);
      for (let i = 0; i < rows * 2; i++)
        v[i] = 10 * (feeds.x.data[i] as number) + t[Math.floor(i / 2)];
      return { outputs: { v: { type: 'float32', data: v, dims: [rows, 2] } }, runMs: 1 };
    },
  });
  return { batcher, runs, budget, release: () => held.splice(0).forEach((r) => r()) };
}

/** A request of `rows` rows: x = [id, row], t = id. */
function request(id: number, rows: number): Feeds {
  const x = new Float32Array(rows * 2);
  for (let r = 0; r < rows; r++) x.set([id, r], r * 2);
  return {
    x: { type: 'float32', data: x, dims: [rows, 2] },
    t: { type: 'float32', data: new Float32Array(rows).fill(id), dims: [rows] },
  };
}

function expected(id: number, rows: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) out.push(10 * id + id, 10 * r + id);
  return out;
}

const values = (f: Feeds) => Array.from(f.v.data as Float32Array);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Batcher', () => {
  test('merges concurrent requests into one run and gives each its own rows back', async () => {
    const { batcher, runs } = makeBatcher({ maxRows: 8 });
    const outs = await Promise.all([1, 2, 3].map((id) => batcher.submit(request(id, 2))));
    expect(runs).toEqual([{ rows: 6, t: [1, 1, 2, 2, 3, 3] }]);
    outs.forEach((out, i) => {
      expect(out.v.dims).toEqual([2, 2]);
      expect(values(out)).toEqual(expected(i + 1, 2));
    });
  });

  test('each row keeps its own t, so requests at different steps share a run', async () => {
    const { batcher, runs } = makeBatcher({ maxRows: 8 });
    const a = request(1, 1);
    const b = request(2, 1);
    (b.t.data as Float32Array)[0] = 0.25;
    const [ra, rb] = await Promise.all([batcher.submit(a), batcher.submit(b)]);
    expect(runs).toHaveLength(1);
    expect(runs[0].t).toEqual([1, 0.25]);
    expect(values(ra)).toEqual([11, 1]);
    expect(values(rb)).toEqual([20.25, 0.25]);
  });

  test('dispatches at once when maxRows rows wait, without waiting maxWaitMs', async () => {
    const { batcher, runs } = makeBatcher({ maxRows: 4, maxWaitMs: 10_000 });
    const started = Date.now();
    await Promise.all([batcher.submit(request(1, 2)), batcher.submit(request(2, 2))]);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(runs.map((r) => r.rows)).toEqual([4]);
  });

  test('a lone small request waits about maxWaitMs, then runs alone', async () => {
    const { batcher, runs } = makeBatcher({ maxRows: 4, maxWaitMs: 60 });
    const started = performance.now();
    await batcher.submit(request(1, 1));
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(55);
    expect(waited).toBeLessThan(1000);
    expect(runs.map((r) => r.rows)).toEqual([1]);
  });

  test('splits a request larger than maxRows across runs and reassembles it in order', async () => {
    const { batcher, runs } = makeBatcher({ maxRows: 4 });
    const out = await batcher.submit(request(7, 10));
    expect(runs.map((r) => r.rows)).toEqual([4, 4, 2]);
    expect(out.v.dims).toEqual([10, 2]);
    expect(values(out)).toEqual(expected(7, 10));
  });

  test('fills a run with part of the next request when the first does not fill it', async () => {
    const { batcher, runs } = makeBatcher({ maxRows: 4 });
    const [a, b] = await Promise.all([
      batcher.submit(request(1, 3)),
      batcher.submit(request(2, 3)),
    ]);
    expect(runs.map((r) => r.rows)).toEqual([4, 2]);
    expect(runs[0].t).toEqual([1, 1, 1, 2]);
    expect(values(a)).toEqual(expected(1, 3));
    expect(values(b)).toEqual(expected(2, 3));
  });

  test('rows pile up while a run is in flight and go out together in the next run', async () => {
    const fake = makeBatcher({ maxRows: 8, maxWaitMs: 0, hold: true });
    const first = fake.batcher.submit(request(1, 1));
    await sleep(5);
    const rest = [2, 3, 4].map((id) => fake.batcher.submit(request(id, 1)));
    await sleep(5);
    expect(fake.runs.map((r) => r.rows)).toEqual([1]); // concurrency 1: the others wait
    fake.release();
    await first;
    await sleep(5);
    fake.release();
    await Promise.all(rest);
    expect(fake.runs.map((r) => r.rows)).toEqual([1, 3]);
  });

  test('refuses with queue_full when the shared row budget is spent, and frees it after', async () => {
    const budget = new RowBudget(5);
    const fake = makeBatcher({ budget, hold: true, maxWaitMs: 0 });
    const a = fake.batcher.submit(request(1, 4));
    await expect(fake.batcher.submit(request(2, 2))).rejects.toMatchObject({
      code: 'queue_full',
      details: { queued: 4, requested: 2, limit: 5 },
    });
    expect(budget.inUse).toBe(4);
    await sleep(5);
    fake.release();
    await a;
    expect(budget.inUse).toBe(0);
    const b = fake.batcher.submit(request(3, 2));
    await sleep(5);
    fake.release();
    await expect(b).resolves.toBeDefined();
  });

  test('reserved submissions do not count against the budget again', async () => {
    const budget = new RowBudget(2);
    const { batcher } = makeBatcher({ budget });
    budget.acquire(2); // as a generation's lease would
    await expect(batcher.submit(request(1, 2), { reserved: true })).resolves.toBeDefined();
    expect(budget.inUse).toBe(2);
  });

  test('an aborted queued request is dropped: cancelled, budget freed, never run', async () => {
    const fake = makeBatcher({ maxWaitMs: 50 });
    const controller = new AbortController();
    const cancelled = fake.batcher.submit(request(1, 2), { signal: controller.signal });
    const kept = fake.batcher.submit(request(2, 1));
    controller.abort();
    await expect(cancelled).rejects.toMatchObject({ code: 'cancelled' });
    expect(values(await kept)).toEqual(expected(2, 1));
    expect(fake.runs).toEqual([{ rows: 1, t: [2] }]);
    expect(fake.budget.inUse).toBe(0);
  });

  test('an already aborted signal is refused before queueing', async () => {
    const { batcher, runs } = makeBatcher();
    await expect(
      batcher.submit(request(1, 1), { signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({
      code: 'cancelled',
    });
    expect(runs).toHaveLength(0);
  });

  test('a failed run fails every request in it with inference_failed', async () => {
    const { batcher, budget } = makeBatcher({ fail: true, maxRows: 8 });
    const results = await Promise.allSettled([
      batcher.submit(request(1, 2)),
      batcher.submit(request(2, 2)),
    ]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const err = (r as PromiseRejectedResult).reason;
      expect(err).toBeInstanceOf(ServiceError);
      expect(err.code).toBe('inference_failed');
    }
    expect(budget.inUse).toBe(0);
  });

  test('rejects feeds whose shape does not match the graph inputs', async () => {
    const { batcher } = makeBatcher();
    const bad = request(1, 2);
    bad.x.dims = [2, 3];
    await expect(batcher.submit(bad)).rejects.toThrow(
      /input x must be float32 \[N, 2\], got float32 \[2, 3\]/,
    );
  });

  test('close fails queued and later requests with shutting_down', async () => {
    const { batcher } = makeBatcher({ maxWaitMs: 10_000 });
    const pending = batcher.submit(request(1, 1));
    batcher.close();
    await expect(pending).rejects.toMatchObject({ code: 'shutting_down' });
    await expect(batcher.submit(request(1, 1))).rejects.toMatchObject({ code: 'shutting_down' });
  });

  test('an abort whose reason is a ServiceError rejects with that error', async () => {
    const { batcher } = makeBatcher({ maxWaitMs: 10_000 });
    const controller = new AbortController();
    const pending = batcher.submit(request(1, 1), { signal: controller.signal });
    controller.abort(new ServiceError('shutting_down', 'stopping'));
    await expect(pending).rejects.toMatchObject({ code: 'shutting_down' });
  });
});
