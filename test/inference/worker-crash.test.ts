import path from 'node:path';
import { silentLogger } from '../../src/logger';
import { Registry } from '../../src/models/registry';
import type { ModelHandle, Tensor } from '../../src/types';
import { testConfig } from '../models/helpers';

/**
 * A worker thread that dies mid-run (fixtures/crashing-worker.js exits on a marked input) must
 * fail only the requests in that run, with inference_failed, and be replaced.
 */

const CRASH_MARKER = 12345;
let registry: Registry;
let model: ModelHandle;

function images(n: number, first = 0): Tensor {
  const { channels: c, height: h, width: w } = model.imageSpec;
  const data = new Float32Array(n * c * h * w);
  data[0] = first;
  return { data, shape: [n, c, h, w] };
}

beforeAll(async () => {
  registry = new Registry({
    config: testConfig({ BATCH_MAX_WAIT_MS: '0' }),
    logger: silentLogger,
    workerFile: path.join(__dirname, 'fixtures', 'crashing-worker.js'),
  });
  await registry.load();
  model = registry.list()[0];
});

afterAll(() => registry.close());

test('a dying worker fails its run with inference_failed and a new worker takes over', async () => {
  // the marker sits in the first value; the input checks only refuse non-finite values
  expect(registry.isReady()).toBe(true);
  await expect(model.encode(images(2, CRASH_MARKER))).rejects.toMatchObject({
    code: 'inference_failed',
  });
  expect(registry.isReady()).toBe(false); // its only worker is gone until the respawn
  const out = await model.encode(images(3));
  expect(out.shape).toEqual([3, ...model.latentShape]);
  expect(registry.workers?.size).toBe(1);
  expect(registry.isReady()).toBe(true);
});

test('requests queued behind the crashed run are served by the replacement', async () => {
  const crashing = model.encode(images(1, CRASH_MARKER));
  const queued = [
    model.decode({
      data: new Float32Array(model.latentShape.reduce((a, b) => a * b)),
      shape: [1, ...model.latentShape],
    }),
  ];
  await expect(crashing).rejects.toMatchObject({ code: 'inference_failed' });
  await expect(Promise.all(queued)).resolves.toHaveLength(1);
});
