/**
 * Throughput of concurrent single-image encode requests with dynamic batching on and off,
 * measured in one process on the same model, side by side. Not a test: numbers depend on the
 * machine and its load.
 *
 *   npm run bench:batching -- [--requests 512] [--concurrency 64] [--rounds 2] [--models-dir models]
 *
 * "on" uses BATCH_MAX_IMAGES / BATCH_MAX_WAIT_MS from the environment (defaults 32 / 5);
 * "off" is BATCH_MAX_IMAGES=1 (one ONNX run per request). Rounds alternate on/off.
 */
const { parseArgs } = require('node:util');
const path = require('node:path');
const { loadConfig } = require('../dist/config');
const { silentLogger } = require('../dist/logger');
const { Registry } = require('../dist/models/registry');

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '512' },
    concurrency: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '2' },
    'models-dir': { type: 'string', default: path.join(__dirname, '..', 'models') },
  },
});
const requests = Number(args.requests);
const concurrency = Number(args.concurrency);

async function open(batching) {
  const env = {
    ...process.env,
    MODELS_DIR: args['models-dir'],
    LOG_LEVEL: 'silent',
    QUEUE_MAX_IMAGES: String(Math.max(1024, concurrency)),
    ...(batching ? {} : { BATCH_MAX_IMAGES: '1', BATCH_MAX_WAIT_MS: '0' }),
  };
  const config = loadConfig(env, []);
  const registry = new Registry({ config, logger: silentLogger });
  await registry.load();
  return { registry, config };
}

/** `concurrency` clients, each sending one-image requests back to back, `requests` in all. */
async function drive(model) {
  const { channels: c, height: h, width: w } = model.imageSpec;
  const image = new Float32Array(c * h * w).map((_, i) => Math.sin(i));
  const latencies = [];
  let next = 0;
  const client = async () => {
    while (next < requests) {
      next += 1;
      const started = performance.now();
      await model.encode({ data: image, shape: [1, c, h, w] });
      latencies.push(performance.now() - started);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, client));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  return { rps: requests / seconds, p50: pct(0.5), p99: pct(0.99) };
}

async function round(batching) {
  const { registry, config } = await open(batching);
  try {
    const model = registry.list()[0];
    await drive(model); // warm-up: JIT, allocator, thread pools
    const before = model.batchStats().encoder;
    const result = await drive(model);
    const after = model.batchStats().encoder;
    const runs = after.runs - before.runs;
    return { ...result, runs, rowsPerRun: (after.rows - before.rows) / runs, config };
  } finally {
    await registry.close();
  }
}

const fmt = (r) =>
  `${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(1).padStart(7)} ms  ` +
  `p99 ${r.p99.toFixed(1).padStart(7)} ms  ${String(r.runs).padStart(5)} runs  ` +
  `${r.rowsPerRun.toFixed(1).padStart(5)} rows/run`;

(async () => {
  const on = [];
  const off = [];
  for (let i = 0; i < Number(args.rounds); i++) {
    on.push(await round(true));
    off.push(await round(false));
  }
  const c = on[0].config;
  console.log(
    `encode, ${requests} single-image requests, ${concurrency} concurrent clients, ` +
      `ORT_WORKERS=${c.ortWorkers}, intra-op threads ${c.ortIntraOpThreads}`,
  );
  on.forEach((r) =>
    console.log(`batching on  (max ${c.batchMaxImages} rows, ${c.batchMaxWaitMs} ms): ${fmt(r)}`),
  );
  off.forEach((r) => console.log(`batching off (max 1 row,  0 ms):  ${fmt(r)}`));
  const best = (rs) => Math.max(...rs.map((r) => r.rps));
  console.log(`throughput ratio on/off (best round each): ${(best(on) / best(off)).toFixed(2)}x`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
