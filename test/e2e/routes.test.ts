import * as grpc from '@grpc/grpc-js';
import request from 'supertest';
import sharp from 'sharp';
import { parseNpy, writeNpy } from '../../src/intake';
import { call, collect } from '../grpc/client';
import { binaryParser } from '../http/helpers';
import { startService, type Service } from './service';

/** Every route and RPC against the real model, through the real registry and ONNX Runtime. */
describe('e2e: every route over HTTP and every RPC over gRPC', () => {
  let svc: Service;
  let base: string;
  let png: Buffer;
  beforeAll(async () => {
    svc = await startService();
    base = `/v1/models/${svc.model}`;
    const pixels = Buffer.alloc(28 * 28);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37) % 256;
    png = await sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toBuffer();
  });
  afterAll(() => svc.close());

  it('answers health, readiness and the OpenAPI document', async () => {
    await request(svc.app).get('/healthz').expect(200, { status: 'ok' });
    const ready = await request(svc.app).get('/readyz').expect(200);
    expect(ready.body.models).toContain(svc.model);
    const doc = await request(svc.app).get('/openapi.yaml').expect(200);
    expect(doc.text).toMatch(/^openapi: 3\.1\.0/);
  });

  it('describes classes, shapes, sampler defaults and providers in use', async () => {
    const handle = svc.registry.get(svc.model);
    const list = await request(svc.app).get('/v1/models').expect(200);
    expect(list.body.models.map((m: { name: string }) => m.name)).toContain(svc.model);
    const info = await request(svc.app).get(base).expect(200);
    expect(info.body.classes).toEqual(handle.classes);
    expect(info.body.classes.map((c: { id: number }) => c.id)).not.toContain(
      handle.manifest.null_class,
    );
    expect(info.body.latent.shape).toEqual(handle.latentShape);
    expect(info.body.sampler.steps).toBe(handle.manifest.sampler.steps);
    expect(info.body.providers.map((p: { graph: string }) => p.graph).sort()).toEqual([
      'classifier',
      'decoder',
      'encoder',
      'generator',
    ]);
    for (const p of info.body.providers) expect(p.actual).toBe('cpu');
    const g = await call(svc.grpc.client, 'GetModel', { model: svc.model });
    expect(g.classes).toEqual(handle.classes);
    expect(g.latentShape).toEqual(handle.latentShape);
    const all = await call(svc.grpc.client, 'ListModels', {});
    expect(all.models.map((m: { name: string }) => m.name)).toContain(svc.model);
  });

  it('encodes one image to one latent over raw, multipart, JSON, .npy and gRPC', async () => {
    const raw = await request(svc.app)
      .post(`${base}/encode`)
      .type('image/png')
      .send(png)
      .expect(200);
    const multi = await request(svc.app)
      .post(`${base}/encode`)
      .attach('x', png, 'x.png')
      .expect(200);
    const json = await request(svc.app)
      .post(`${base}/encode`)
      .send({ image: png.toString('base64') })
      .expect(200);
    const npy = await request(svc.app)
      .post(`${base}/encode`)
      .type('image/png')
      .set('Accept', 'application/x-npy')
      .buffer(true)
      .parse(binaryParser)
      .send(png)
      .expect(200);
    const rpc = await call(svc.grpc.client, 'Encode', { model: svc.model, images: [png] });
    const expected = raw.body.latents.data;
    expect(raw.body.latents.shape).toEqual([1, ...svc.registry.get(svc.model).latentShape]);
    expect(multi.body.latents.data).toBe(expected);
    expect(json.body.latents.data).toBe(expected);
    expect(rpc.latents.data.toString('base64')).toBe(expected);
    const fromNpy = parseNpy(npy.body as Buffer);
    const npyBytes = Buffer.alloc(fromNpy.data.length * 4);
    fromNpy.data.forEach((v, i) => npyBytes.writeFloatLE(v, 4 * i));
    expect(npyBytes.toString('base64')).toBe(expected);
  });

  it('decodes over HTTP (.npy -> PNG, JSON form -> JSON) and gRPC to the same pixels', async () => {
    const enc = await request(svc.app)
      .post(`${base}/encode`)
      .type('image/png')
      .send(png)
      .expect(200);
    const bytes = Buffer.from(enc.body.latents.data, 'base64');
    const values = new Float32Array(bytes.length / 4).map((_, i) => bytes.readFloatLE(4 * i));
    const npyBody = writeNpy({ data: values, shape: enc.body.latents.shape });
    const img = await request(svc.app)
      .post(`${base}/decode`)
      .type('application/x-npy')
      .buffer(true)
      .parse(binaryParser)
      .send(npyBody)
      .expect(200);
    expect(img.headers['content-type']).toBe('image/png');
    const viaJson = await request(svc.app)
      .post(`${base}/decode`)
      .set('Accept', 'application/json')
      .send({ latents: enc.body.latents })
      .expect(200);
    const rpc = await call(svc.grpc.client, 'Decode', {
      model: svc.model,
      latents: {
        data: Buffer.from(enc.body.latents.data, 'base64'),
        shape: enc.body.latents.shape,
        dtype: 'float32',
      },
    });
    expect(rpc.mediaType).toBe('image/png');
    const pixels = async (b: Buffer) => (await sharp(b).raw().toBuffer()).toString('base64');
    const p0 = await pixels(img.body as Buffer);
    expect(await pixels(Buffer.from(viaJson.body.images[0], 'base64'))).toBe(p0);
    expect(await pixels(rpc.images[0])).toBe(p0);
  });

  it('generates by seed: identical bytes over HTTP and gRPC', async () => {
    const body = { class: 7, seed: 1234, count: 2, steps: 4 };
    const a = await request(svc.app).post(`${base}/generate`).send(body).expect(200);
    const b = await request(svc.app).post(`${base}/generate`).send(body).expect(200);
    expect(a.body.images).toHaveLength(2);
    expect(b.body.images).toEqual(a.body.images);
    const other = await request(svc.app)
      .post(`${base}/generate`)
      .send({ ...body, seed: 1235 })
      .expect(200);
    expect(other.body.images).not.toEqual(a.body.images);
    const req = { model: svc.model, classId: '7', seed: '1234', count: 2, steps: 4 };
    const g1 = await collect(svc.grpc.client.Generate(req));
    const g2 = await collect(svc.grpc.client.Generate(req));
    const last = (r: { messages: any[] }) => r.messages[r.messages.length - 1].result;
    expect(g1.error).toBeUndefined();
    expect(last(g2).images).toEqual(last(g1).images);
    expect(last(g1).images.map((i: Buffer) => i.toString('base64'))).toEqual(a.body.images);
    // one progress message per sampler step, whichever sampler the model defaults to
    const progress = g1.messages.filter((m) => m.progress).map((m) => m.progress.step);
    expect(progress).toEqual([1, 2, 3, 4]);
  });

  it('streams generate progress over SSE, then the same result as the JSON reply', async () => {
    const body = { class: 'Sneaker', seed: 99, steps: 3, sampler: 'euler' };
    const res = await request(svc.app)
      .post(`${base}/generate`)
      .set('Accept', 'text/event-stream')
      .send(body)
      .buffer(true)
      .parse((r, done) => {
        let text = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => (text += c));
        r.on('end', () => done(null, text));
      })
      .expect(200);
    const events = (res.body as string)
      .split('\n\n')
      .filter(Boolean)
      .map((block) => ({
        event: /^event: (.*)$/m.exec(block)?.[1],
        data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null'),
      }));
    expect(events.map((e) => e.event)).toEqual(['progress', 'progress', 'progress', 'result']);
    expect(events[2].data).toMatchObject({ step: 3, totalSteps: 3 });
    // t is where each sampler step arrived: rising from noise (0) to exactly 1 (data).
    const ts = events.slice(0, 3).map((e) => e.data.t);
    expect(ts[0]).toBeGreaterThan(0);
    expect(ts[1]).toBeGreaterThan(ts[0]);
    expect(ts[2]).toBeGreaterThan(ts[1]);
    expect(ts[2]).toBe(1);
    const json = await request(svc.app).post(`${base}/generate`).send(body).expect(200);
    expect(events[3].data).toEqual(json.body);
  });

  it('reports gRPC health SERVING for the server and the service', async () => {
    for (const service of ['', 'dmvae.v1.Dmvae']) {
      const res = await call(svc.grpc.health, 'check', { service });
      expect(res.status).toBe('SERVING');
    }
  });

  it('maps an unknown model to 404 over HTTP and NOT_FOUND over gRPC', async () => {
    const res = await request(svc.app)
      .post('/v1/models/nope/generate')
      .send({ class: 1 })
      .expect(404);
    expect(res.body.available).toContain(svc.model);
    const err = await call(svc.grpc.client, 'GetModel', { model: 'nope' }).catch((e) => e);
    expect(err.code).toBe(grpc.status.NOT_FOUND);
  });

  it('refuses huge finite latents with 400 invalid_latent over .npy, JSON and gRPC', async () => {
    const [c, h, w] = svc.registry.get(svc.model).latentShape;
    const data = new Float32Array(c * h * w).fill(0.1);
    data[5] = 3e38; // decodes to NaN pixels on this model
    const latent = { data, shape: [1, c, h, w] };
    const npy = await request(svc.app)
      .post(`${base}/decode`)
      .type('application/x-npy')
      .send(writeNpy(latent));
    expect(npy.status).toBe(400);
    expect(npy.body).toMatchObject({ code: 'invalid_latent', index: 5, limit: 1000 });
    expect(npy.body.detail).toMatch(/outside this model's range for raw latents/);
    const bytes = Buffer.from(data.buffer);
    const json = await request(svc.app)
      .post(`${base}/decode?latents=normalized`)
      .send({ latents: { shape: [c, h, w], dtype: 'float32', data: bytes.toString('base64') } });
    expect(json.status).toBe(400);
    expect(json.body).toMatchObject({ code: 'invalid_latent', range: [-1000, 1000] });
    const err = await call(svc.grpc.client, 'Decode', {
      model: svc.model,
      latents: { data: bytes, shape: ['1', String(c), String(h), String(w)], dtype: 'float32' },
    }).catch((e) => e);
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.metadata.get('error-code')).toEqual(['invalid_latent']);
  });

  it('never answers 500 when the decoder itself turns client latents into NaN', async () => {
    // Below the API's range check, the model handle reports NaN output as the input's fault.
    const handle = svc.registry.get(svc.model);
    const data = new Float32Array(handle.latentShape.reduce((a, b) => a * b)).fill(3e38);
    await expect(handle.decode({ data, shape: [1, ...handle.latentShape] })).rejects.toMatchObject({
      code: 'invalid_latent',
      details: { index: 0 },
    });
  });

  it('refuses a shift outside [0.01, 100] over HTTP and gRPC before sampling', async () => {
    for (const shift of [1e-20, 0, 101]) {
      const res = await request(svc.app).post(`${base}/generate`).send({ class: 3, shift });
      expect(res.status).toBe(400);
      expect(res.body.detail).toContain('shift must be in [0.01, 100]');
    }
    const stream = svc.grpc.client.Generate({ model: svc.model, classId: '3', shift: 1e-20 });
    const { messages, error } = await collect(stream);
    expect(messages).toEqual([]);
    expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('answers malformed percent-encoding in the path with 400, not 500', async () => {
    const get = await request(svc.app).get('/v1/models/%E0%A4%A').expect(400);
    expect(get.body.code).toBe('invalid_request');
    const post = await request(svc.app).post('/v1/models/%ZZ/encode').send(png);
    expect(post.status).toBe(400);
    expect(post.body.detail).toMatch(/percent-encoding/);
  });
});
