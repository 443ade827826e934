import { getEventListeners } from 'node:events';
import request from 'supertest';
import { fakeApp } from './helpers';

describe('HTTP app: health, routing, errors, request ids', () => {
  it('answers /healthz with 200 and echoes a fresh X-Request-Id', async () => {
    const { app } = fakeApp();
    const res = await request(app).get('/healthz').expect(200);
    expect(res.body).toEqual({ status: 'ok' });
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('reports /readyz 503 not_ready until models are ready, then 200', async () => {
    const { app, ready } = fakeApp();
    ready.value = false;
    const before = await request(app).get('/readyz').expect(503);
    expect(before.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(before.body.code).toBe('not_ready');
    const models = await request(app).get('/v1/models').expect(503);
    expect(models.body.code).toBe('not_ready');
    expect(models.headers['retry-after']).toBe('1');
    ready.value = true;
    const after = await request(app).get('/readyz').expect(200);
    expect(after.body).toEqual({ status: 'ready', models: ['fake'] });
  });

  it('serves openapi.yaml describing every route the app has', async () => {
    const { app } = fakeApp();
    const res = await request(app).get('/openapi.yaml').expect(200);
    expect(res.headers['content-type']).toMatch(/^application\/yaml/);
    const text = res.text;
    for (const path of [
      '/healthz:',
      '/readyz:',
      '/openapi.yaml:',
      '/v1/models:',
      '/v1/models/{model}:',
      '/v1/models/{model}/encode:',
      '/v1/models/{model}/decode:',
      '/v1/models/{model}/generate:',
    ]) {
      expect(text).toContain(`\n  ${path}\n`);
    }
    expect(text.match(/^ {2}\/\S+:$/gm)).toHaveLength(8);
  });

  it.each(['/healthz', '/readyz', '/openapi.yaml', '/v1/models', '/v1/models/fake'])(
    'refuses a query parameter on GET %s with 400 naming it',
    async (path) => {
      const { app } = fakeApp();
      const res = await request(app).get(`${path}?verbose=1&x=2`).expect(400);
      expect(res.body.code).toBe('invalid_request');
      expect(res.body.detail).toBe(`GET ${path} takes no query parameters; got: verbose, x`);
      expect(res.body.query).toEqual(['verbose', 'x']);
    },
  );

  it('answers an unknown route with 404 problem+json', async () => {
    const { app } = fakeApp();
    const res = await request(app).get('/v2/nothing').expect(404);
    expect(res.body).toMatchObject({
      type: 'urn:dmvae:problem:not_found',
      title: 'Not found',
      status: 404,
      code: 'not_found',
      instance: '/v2/nothing',
    });
    expect(res.body.requestId).toBe(res.headers['x-request-id']);
  });

  it('answers a wrong method with 405 and an Allow header', async () => {
    const { app } = fakeApp();
    const res = await request(app).get('/v1/models/fake/encode').expect(405);
    expect(res.headers.allow).toBe('POST');
    expect(res.body.code).toBe('method_not_allowed');
    const del = await request(app).delete('/healthz').expect(405);
    expect(del.headers.allow).toBe('GET, HEAD');
  });

  it('answers an unknown model with 404 model_not_found naming the known ones', async () => {
    const { app } = fakeApp();
    const res = await request(app).get('/v1/models/nope').expect(404);
    expect(res.body.code).toBe('model_not_found');
    expect(res.body.available).toEqual(['fake']);
  });

  it('keeps a safe incoming X-Request-Id and replaces an unsafe one', async () => {
    const { app, lines } = fakeApp();
    const kept = await request(app).get('/healthz').set('X-Request-Id', 'abc-123.x:y').expect(200);
    expect(kept.headers['x-request-id']).toBe('abc-123.x:y');
    const replaced = await request(app).get('/healthz').set('X-Request-Id', 'bad id\u00e9<script>');
    expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(lines.some((l) => l.reqId === 'abc-123.x:y' && l.msg === 'request')).toBe(true);
  });

  it('unhooks every finished request from the shutdown signal (no per-request leak)', async () => {
    const { app, lifecycle } = fakeApp();
    for (let i = 0; i < 20; i++) {
      await request(app)
        .get(i % 2 ? '/healthz' : '/v1/models/nope')
        .expect(i % 2 ? 200 : 404);
    }
    expect(getEventListeners(lifecycle.signal, 'abort')).toHaveLength(0);
  });

  it('writes one structured log line per request', async () => {
    const { app, lines } = fakeApp();
    await request(app).get('/v1/models/fake').set('X-Request-Id', 'log-test').expect(200);
    const mine = lines.filter((l) => l.reqId === 'log-test');
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({
      msg: 'request',
      method: 'GET',
      path: '/v1/models/fake',
      status: 200,
      model: 'fake',
    });
    expect(typeof mine[0].durationMs).toBe('number');
  });

  it('describes a model: classes (no null class), shapes, defaults, providers', async () => {
    const { app } = fakeApp();
    const res = await request(app).get('/v1/models/fake').expect(200);
    expect(res.body).toMatchObject({
      name: 'fake',
      image: { height: 28, width: 28, channels: 1 },
      latent: { shape: [4, 7, 7], mean: 0.5, scale: 2 },
      sampler: { sampler: 'heun', steps: 4, cfgScale: 3, cfgInterval: [0, 1], shift: 2.5 },
      providers: [{ graph: 'encoder', requested: ['cpu'], actual: 'cpu' }],
    });
    expect(res.body.classes).toHaveLength(10);
    const list = await request(app).get('/v1/models').expect(200);
    expect(list.body.models.map((m: { name: string }) => m.name)).toEqual(['fake']);
  });

  it('refuses new requests with 503 shutting_down while draining; liveness still answers', async () => {
    const { app, lifecycle } = fakeApp();
    lifecycle.drain();
    const res = await request(app).get('/v1/models/fake').expect(503);
    expect(res.body.code).toBe('shutting_down');
    expect(res.headers.connection).toBe('close');
    expect((await request(app).get('/readyz').expect(503)).body.code).toBe('shutting_down');
    await request(app).get('/healthz').expect(200);
  });

  it('stops a request in flight when shutdown cancels it, answering shutting_down', async () => {
    const { app, lifecycle } = fakeApp({}, { slowMs: 1000 });
    const pending = request(app).post('/v1/models/fake/generate').send({ class: 1, steps: 50 });
    setTimeout(() => lifecycle.cancelInFlight(), 50);
    const res = await pending;
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('shutting_down');
  });

  it('logs expected 503s below error level: not_ready at info', async () => {
    const { app, ready, lines } = fakeApp();
    ready.value = false;
    await request(app).get('/readyz').set('X-Request-Id', 'warming').expect(503);
    const line = lines.find((l) => l.reqId === 'warming' && l.msg === 'request');
    expect(line).toMatchObject({ status: 503, code: 'not_ready', level: 30 });
  });
});
