import { Registry } from '../../src/models/registry';
import type { Tensor } from '../../src/types';
import { captureLogger, compare, testConfig } from '../models/helpers';

/** ORT_WORKERS > 1: every worker loads and warms up its own sessions and takes its own runs. */

test('two workers run batches side by side and agree with each other', async () => {
  const { logger, lines } = captureLogger('debug');
  const registry = new Registry({
    config: testConfig({ ORT_WORKERS: '2', BATCH_MAX_IMAGES: '8', BATCH_MAX_WAIT_MS: '0' }),
    logger,
  });
  await registry.load();
  try {
    expect(registry.workers?.size).toBe(2);
    const ready = lines.filter((l) => l.msg === 'ORT worker ready').map((l) => l.worker);
    expect(ready.sort()).toEqual([0, 1]);

    const model = registry.get(registry.list()[0].name);
    const { channels: c, height: h, width: w } = model.imageSpec;
    const image = (seed: number): Tensor => ({
      data: new Float32Array(8 * c * h * w).map((_, i) => Math.sin(i * seed)),
      shape: [8, c, h, w],
    });
    const first = await Promise.all([1, 2, 3, 4].map((s) => model.encode(image(s))));
    const again = await Promise.all([1, 2, 3, 4].map((s) => model.encode(image(s))));
    first.forEach((r, i) => expect(compare(r.data, again[i].data, 1e-6).ok).toBe(true));
    expect(lines.filter((l) => l.msg === 'batch run')).toHaveLength(8); // 8 rows per run
    expect(model.batchStats().encoder.peakInFlight).toBe(2); // both workers busy at once

    await registry.workers?.terminateWorker(0);
    const during = await model.encode(image(5)); // the other worker keeps serving
    expect(during.shape).toEqual([8, ...model.latentShape]);
  } finally {
    await registry.close();
  }
});
