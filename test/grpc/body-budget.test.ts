import * as grpc from '@grpc/grpc-js';
import { RowBudget } from '../../src/inference/row-budget';
import { capturingLogger, fakeModel, fakeRegistry, testConfig } from '../http/fake-model';
import { greyPng } from '../http/helpers';
import { call, startGrpc } from './client';

/** gRPC payloads count against the body budget HTTP uses (main.ts shares one). */
describe('gRPC and BODY_QUEUE_MAX_BYTES', () => {
  const budget = new RowBudget(4096, 'BODY_QUEUE_MAX_BYTES', 'body bytes');
  let g: Awaited<ReturnType<typeof startGrpc>>;
  let png: Buffer;

  beforeAll(async () => {
    const { logger } = capturingLogger();
    const registry = fakeRegistry([fakeModel('fake').handle], { value: true });
    g = await startGrpc({ registry, config: testConfig(), logger, bodyBudget: budget });
    png = await greyPng(28, 28, (x, y) => (x * y) & 255);
  });
  afterAll(() => g.close());

  it('refuses an Encode the budget cannot hold with RESOURCE_EXHAUSTED, and frees its bytes', async () => {
    budget.acquire(4096 - png.length + 1); // what other requests hold: one byte too many
    const err = await call(g.client, 'Encode', { model: 'fake', images: [png] }).catch((e) => e);
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err.metadata.get('error-code')).toEqual(['queue_full']);
    expect(err.details).toContain('BODY_QUEUE_MAX_BYTES');
    budget.release(4096 - png.length + 1);
    const ok = await call(g.client, 'Encode', { model: 'fake', images: [png] });
    expect(ok.latents.shape.map(Number)).toEqual([1, 4, 7, 7]);
    expect(budget.inUse).toBe(0); // the call released what it held
  });
});
