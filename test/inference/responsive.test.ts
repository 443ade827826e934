import { silentLogger } from '../../src/logger';
import { Registry } from '../../src/models/registry';
import type { ModelHandle } from '../../src/types';
import { testConfig } from '../models/helpers';

/**
 * ONNX Runtime blocks the thread it runs on; it runs in worker threads, so the main event loop
 * (health checks, other requests) must stay responsive while a large batch is computed.
 */

const MAX_ROWS = 32768;

async function timeEncode(model: ModelHandle, rows: number): Promise<number> {
  const { channels: c, height: h, width: w } = model.imageSpec;
  const data = new Float32Array(rows * c * h * w).map((_, i) => Math.sin(i));
  const started = performance.now();
  await model.encode({ data, shape: [rows, c, h, w] });
  return performance.now() - started;
}

test('timers fire on time while one large encode batch runs in a worker', async () => {
  const registry = new Registry({
    config: testConfig({
      BATCH_MAX_IMAGES: String(MAX_ROWS),
      QUEUE_MAX_IMAGES: String(MAX_ROWS),
      BATCH_MAX_WAIT_MS: '0',
    }),
    logger: silentLogger,
  });
  await registry.load();
  try {
    const model = registry.list()[0];
    // Size one ONNX run to take about a second on this machine.
    const probeMs = await timeEncode(model, 64);
    const rows = Math.min(MAX_ROWS, Math.max(64, Math.ceil((64 * 1000) / Math.max(probeMs, 1))));
    const { channels: c, height: h, width: w } = model.imageSpec;
    const data = new Float32Array(rows * c * h * w).map((_, i) => Math.sin(i));

    const running = model.encode({ data, shape: [rows, c, h, w] });
    // Input checks and the copy into the batch happen on this thread before the run starts.
    await new Promise((r) => setTimeout(r, 20));
    let maxLag = 0;
    let ticks = 0;
    let last = performance.now();
    const windowStart = last;
    const ticker = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last - 10);
      last = now;
      ticks += 1;
    }, 10);
    await running;
    clearInterval(ticker);
    const windowMs = performance.now() - windowStart;

    expect(windowMs).toBeGreaterThan(300); // the run was long enough to show a blocked loop
    expect(ticks).toBeGreaterThan(windowMs / 10 / 2);
    expect(maxLag).toBeLessThan(100);
  } finally {
    await registry.close();
  }
});
