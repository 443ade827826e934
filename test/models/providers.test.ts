import fs from 'node:fs';
import path from 'node:path';
import { silentLogger } from '../../src/logger';
import { Registry } from '../../src/models/registry';
import { captureLogger, REPO, testConfig } from './helpers';

/**
 * Execution providers: this repository's onnxruntime-node has no CUDA libraries, so asking
 * for CUDA must be noticed at startup: a loud warning and CPU with PROVIDER_FALLBACK=true, a
 * refusal to start with false. On a machine with the CUDA EP installed these tests skip.
 */

const ortBin = path.join(REPO, 'node_modules', 'onnxruntime-node', 'bin');
const cudaInstalled = fs
  .readdirSync(ortBin, { recursive: true })
  .some((f) => String(f).includes('libonnxruntime_providers_cuda'));
const noCuda = cudaInstalled ? test.skip : test;

describe('execution providers', () => {
  test('cpu is requested and used by default, per graph', async () => {
    const registry = new Registry({ config: testConfig(), logger: silentLogger });
    try {
      await registry.load();
      for (const model of registry.list()) {
        expect(model.providers.map((p) => p.graph).sort()).toEqual([
          'decoder',
          'encoder',
          'generator',
        ]);
        for (const p of model.providers)
          expect(p).toMatchObject({ requested: ['cpu'], actual: 'cpu' });
      }
    } finally {
      await registry.close();
    }
  });

  noCuda(
    'unavailable cuda falls back to cpu with a warning per session naming the reason',
    async () => {
      const { logger, lines } = captureLogger('info');
      const config = testConfig({ EXECUTION_PROVIDERS: 'cuda:0' });
      const registry = new Registry({ config, logger });
      try {
        await registry.load();
        const model = registry.list()[0];
        for (const p of model.providers)
          expect(p).toMatchObject({ requested: ['cuda:0'], actual: 'cpu' });
        const warnings = lines.filter((l) => l.level === 40 && String(l.msg).includes('FALLBACK'));
        expect(warnings.length).toBe(model.providers.length);
        expect(warnings[0]).toMatchObject({ requested: ['cuda:0'], actual: 'cpu' });
        expect(JSON.stringify(warnings[0].refused)).toMatch(/cuda:0.*Cuda/i);
        // and it still computes
        const [c, h, w] = [model.imageSpec.channels, model.imageSpec.height, model.imageSpec.width];
        const out = await model.encode({ data: new Float32Array(c * h * w), shape: [1, c, h, w] });
        expect(out.shape).toEqual([1, ...model.latentShape]);
      } finally {
        await registry.close();
      }
    },
  );

  noCuda('with PROVIDER_FALLBACK=false an unavailable provider stops the startup', async () => {
    const config = testConfig({ EXECUTION_PROVIDERS: 'cuda:0,cpu', PROVIDER_FALLBACK: 'false' });
    const registry = new Registry({ config, logger: silentLogger });
    try {
      await expect(registry.load()).rejects.toThrow(
        /execution provider cuda:0 is unavailable .*PROVIDER_FALLBACK=false/,
      );
      expect(registry.isReady()).toBe(false);
    } finally {
      await registry.close();
    }
  });
});
