import request from 'supertest';
import { fakeApp } from './helpers';

const GENERATE = '/v1/models/fake/generate';

/** Parses an SSE body into its events. */
export function sseEvents(text: string): { event: string; data: any }[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim())
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null');
      return { event, data };
    });
}

describe('POST /v1/models/{model}/generate', () => {
  it('reads JSON as UTF-8 only: another charset is 415, invalid bytes 400, a BOM is dropped', async () => {
    const { app } = fakeApp();
    const body = JSON.stringify({ class: 'Sneaker', seed: 1 });
    const utf16 = await request(app)
      .post(GENERATE)
      .set('Content-Type', 'application/json; charset=utf-16le')
      .serialize((raw: any) => raw)
      .send(Buffer.from(body, 'utf16le'));
    expect([utf16.status, utf16.body.code, utf16.body.charset]).toEqual([
      415,
      'unsupported_media_type',
      'utf-16le',
    ]);
    const latin1 = Buffer.from('{"class": "Sneak\xe9r"}', 'latin1');
    const invalid = await request(app)
      .post(GENERATE)
      .set('Content-Type', 'application/json; charset="UTF-8"')
      .serialize((raw: any) => raw)
      .send(latin1);
    expect([invalid.status, invalid.body.detail]).toEqual([
      400,
      'Malformed JSON: the body is not valid UTF-8',
    ]);
    const bom = await request(app)
      .post(GENERATE)
      .set('Content-Type', 'application/json')
      .serialize((raw: any) => raw)
      .send(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body)]));
    expect([bom.status, bom.body.class]).toEqual([200, 7]);
  });

  it('refuses JSON nested deeper than 32 levels with 400, wherever the nesting is', async () => {
    const { app } = fakeApp();
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    for (const body of [`{"class": ${deep(6000)}}`, `{"class": 1, "x": ${deep(40)}}`]) {
      const res = await request(app)
        .post(GENERATE)
        .set('Content-Type', 'application/json')
        .send(body);
      expect([res.status, res.body.code, res.body.limit]).toEqual([400, 'invalid_request', 32]);
    }
    const decode = await request(app)
      .post('/v1/models/fake/decode')
      .set('Content-Type', 'application/json')
      .send(`{"latents": {"shape": ${deep(20000)}, "dtype": "float32", "data": ""}}`);
    expect([decode.status, decode.body.code]).toEqual([400, 'invalid_request']);
  });

  it('keeps a refusal small when it quotes huge client input (keys, many fields)', async () => {
    const { app } = fakeApp();
    const hugeKey = JSON.stringify({ class: 7, ['k'.repeat(1_000_000)]: 1 });
    const many = JSON.stringify(
      Object.fromEntries([['class', 7], ...Array.from({ length: 20_000 }, (_, i) => [`f${i}`, 1])]),
    );
    for (const body of [hugeKey, many]) {
      const res = await request(app)
        .post(GENERATE)
        .set('Content-Type', 'application/json')
        .send(body)
        .expect(400);
      expect(res.body.code).toBe('invalid_request');
      expect(res.text.length).toBeLessThan(80_000);
    }
  });

  it('fills in defaults, echoes every parameter, picks a random seed', async () => {
    const { app, calls } = fakeApp();
    const res = await request(app).post(GENERATE).send({ class: 7 }).expect(200);
    expect(res.body).toMatchObject({
      model: 'fake',
      format: 'png',
      class: 7,
      className: 'Sneaker',
      count: 1,
      steps: 4,
      sampler: 'heun',
      cfgScale: 3,
      cfgInterval: [0, 1],
      shift: 2.5,
    });
    expect(Number.isSafeInteger(res.body.seed)).toBe(true);
    expect(res.body.images).toHaveLength(1);
    expect(calls.generate[0].seed).toBe(res.body.seed);
    expect(res.body.latents).toBeUndefined();
    const again = await request(app).post(GENERATE).send({ class: 7 }).expect(200);
    expect(again.body.seed).not.toBe(res.body.seed);
  });

  it('passes the given parameters through and returns latents on request', async () => {
    const { app, calls } = fakeApp();
    const body = {
      class: 'sneaker',
      count: 2,
      steps: 3,
      cfgScale: 1.5,
      cfgInterval: [0.1, 0.9],
      sampler: 'euler',
      shift: 1,
      seed: 2 ** 53 - 1,
      format: 'webp',
      returnLatents: true,
    };
    const res = await request(app).post(GENERATE).send(body).expect(200);
    expect(calls.generate[0]).toEqual({
      classId: 7,
      count: 2,
      steps: 3,
      method: 'euler',
      cfgScale: 1.5,
      cfgInterval: [0.1, 0.9],
      shift: 1,
      seed: 2 ** 53 - 1,
    });
    expect(res.body.seed).toBe(2 ** 53 - 1);
    expect(res.body.latents.shape).toEqual([2, 4, 7, 7]);
    expect(Buffer.from(res.body.images[0], 'base64').subarray(8, 12).toString()).toBe('WEBP');
  });

  it('gives identical bytes for the same seed', async () => {
    const { app } = fakeApp();
    const a = await request(app).post(GENERATE).send({ class: 3, seed: 42, count: 2 }).expect(200);
    const b = await request(app).post(GENERATE).send({ class: 3, seed: 42, count: 2 }).expect(200);
    expect(b.body.images).toEqual(a.body.images);
  });

  it.each([
    [{ class: 7, cuont: 2 }, 400, 'invalid_request'],
    [{ count: 2 }, 400, 'invalid_class'],
    [{ class: null }, 400, 'invalid_class'],
    [{ class: true }, 400, 'invalid_class'],
    [{ class: [7] }, 400, 'invalid_class'],
    [{ class: {} }, 400, 'invalid_class'],
    [{ class: 10 }, 400, 'invalid_class'],
    [{ class: 3.5 }, 400, 'invalid_class'],
    [{ class: '7' }, 400, 'invalid_class'],
    [{ class: 1, count: 0 }, 400, 'invalid_request'],
    [{ class: 1, count: 1.5 }, 400, 'invalid_request'],
    [{ class: 1, count: 65 }, 422, 'limit_exceeded'],
    [{ class: 1, steps: 251 }, 422, 'limit_exceeded'],
    [{ class: 1, seed: -1 }, 400, 'invalid_request'],
    [{ class: 1, seed: 2 ** 53 }, 400, 'invalid_request'],
    [{ class: 1, seed: 1.5 }, 400, 'invalid_request'],
    [{ class: 1, cfgInterval: [0.8, 0.2] }, 400, 'invalid_request'],
    [{ class: 1, shift: 0 }, 400, 'invalid_request'],
    [{ class: 1, sampler: 'dpm' }, 400, 'invalid_request'],
    [{ class: 1, count: '2' }, 400, 'invalid_request'],
  ])('refuses %j with %i %s before sampling', async (body, status, code) => {
    const { app, calls } = fakeApp();
    const res = await request(app).post(GENERATE).send(body);
    expect(res.status).toBe(status);
    expect(res.body.code).toBe(code);
    expect(calls.generate).toHaveLength(0);
  });

  it('says what a class must be when it is missing or of the wrong type', async () => {
    const { app } = fakeApp();
    const missing = await request(app).post(GENERATE).send({ seed: 1 }).expect(400);
    expect(missing.body.detail).toMatch(/^class is required: an integer id or a class name \(0 /);
    expect(missing.body.detail).toContain('7 Sneaker');
    for (const [value, shown] of [
      [null, 'null'],
      [true, 'true'],
      [[7], '[7]'],
    ] as const) {
      const res = await request(app).post(GENERATE).send({ class: value }).expect(400);
      expect(res.body.code).toBe('invalid_class');
      expect(res.body.detail).toContain(`class ${shown} is not valid`);
      expect(res.body.detail).toContain('7 Sneaker');
    }
  });

  it('names the limit when count or steps are over it', async () => {
    const { app } = fakeApp({ MAX_GENERATE_COUNT: '4', MAX_STEPS: '10' });
    const count = await request(app).post(GENERATE).send({ class: 1, count: 5 }).expect(422);
    expect(count.body).toMatchObject({ limit: 4, actual: 5, field: 'count' });
    expect(count.body.detail).toContain('MAX_GENERATE_COUNT');
    const steps = await request(app).post(GENERATE).send({ class: 1, steps: 11 }).expect(422);
    expect(steps.body.detail).toContain('MAX_STEPS');
  });

  it('takes only application/json bodies and no query parameters', async () => {
    const { app } = fakeApp();
    const form = await request(app).post(GENERATE).type('form').send('class=1');
    expect(form.status).toBe(415);
    const query = await request(app).post(`${GENERATE}?seed=1`).send({ class: 1 });
    expect(query.status).toBe(400);
    expect(query.body.detail).toContain('in the JSON body, not the query; got: seed');
  });

  it('streams one progress event per sampler step, then the result, over SSE', async () => {
    const { app } = fakeApp();
    const res = await request(app)
      .post(GENERATE)
      .set('Accept', 'text/event-stream')
      .send({ class: 2, seed: 9, steps: 3 })
      .buffer(true)
      .parse((r, done) => {
        let text = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => (text += c));
        r.on('end', () => done(null, text));
      })
      .expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    const events = sseEvents(res.body as string);
    const progress = events.filter((e) => e.event === 'progress');
    expect(progress.map((e) => e.data.step)).toEqual([1, 2, 3]);
    expect(progress[0].data.totalSteps).toBe(3);
    expect(events[events.length - 1].event).toBe('result');
    const json = await request(app)
      .post(GENERATE)
      .send({ class: 2, seed: 9, steps: 3 })
      .expect(200);
    expect(events[events.length - 1].data).toEqual(json.body);
  });

  it('reports a failure after the stream started as an error event without internals', async () => {
    const { app, lines } = fakeApp({}, { failGenerateAt: 3 });
    const res = await request(app)
      .post(GENERATE)
      .set('Accept', 'text/event-stream')
      .set('X-Request-Id', 'sse-fail')
      .send({ class: 2, seed: 9 })
      .buffer(true)
      .parse((r, done) => {
        let text = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => (text += c));
        r.on('end', () => done(null, text));
      })
      .expect(200);
    const events = sseEvents(res.body as string);
    expect(events.map((e) => e.event)).toEqual(['progress', 'progress', 'error']);
    expect(events[2].data).toMatchObject({
      status: 500,
      code: 'internal',
      detail: 'Internal error',
    });
    expect(JSON.stringify(events[2].data)).not.toContain('secrets');
    expect(lines.find((l) => l.reqId === 'sse-fail' && l.msg === 'request')).toMatchObject({
      code: 'internal',
    });
  });

  it('refuses an SSE generation the queue cannot take with a plain 503, not a 200 stream', async () => {
    const { app } = fakeApp({}, { busy: true });
    const res = await request(app)
      .post(GENERATE)
      .set('Accept', 'text/event-stream')
      .send({ class: 2, seed: 9 })
      .expect(503);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 503, code: 'queue_full' });
    expect(res.headers['retry-after']).toBe('1');
  });

  it('answers a failure without streaming as a 500 problem without internals', async () => {
    const { app } = fakeApp({}, { failGenerateAt: 1 });
    const res = await request(app).post(GENERATE).send({ class: 2 }).expect(500);
    expect(res.body).toMatchObject({ code: 'internal', detail: 'Internal error' });
    expect(JSON.stringify(res.body)).not.toContain('secrets');
  });
});
