import request from 'supertest';
import { parseNpy } from '../../src/intake';
import { binaryParser, fakeApp, greyPng } from './helpers';

const ENCODE = '/v1/models/fake/encode';

function latentValues(body: { latents: { shape: number[]; dtype: string; data: string } }) {
  const bytes = Buffer.from(body.latents.data, 'base64');
  const itemSize = body.latents.dtype === 'float16' ? 2 : 4;
  return { count: bytes.length / itemSize, bytes };
}

describe('POST /v1/models/{model}/encode', () => {
  let png: Buffer;
  beforeAll(async () => {
    png = await greyPng(28, 28, (x) => x * 9);
  });

  it('takes one raw image/png body; JSON latents [1, 4, 7, 7] and image info', async () => {
    const { app, calls } = fakeApp();
    const res = await request(app).post(ENCODE).type('image/png').send(png).expect(200);
    expect(res.body.latents.shape).toEqual([1, 4, 7, 7]);
    expect(res.body.latents.dtype).toBe('float32');
    expect(latentValues(res.body).count).toBe(196);
    expect(res.body.latentSpace).toBe('raw');
    expect(res.body.images).toEqual([
      { sourceWidth: 28, sourceHeight: 28, sourceFormat: 'png', frames: 1, warnings: [] },
    ]);
    expect(calls.encode[0].shape).toEqual([1, 1, 28, 28]);
  });

  it('lets the bytes decide: a PNG sent as image/jpeg is still a PNG', async () => {
    const { app } = fakeApp();
    for (const type of ['image/jpeg', 'application/octet-stream']) {
      const res = await request(app).post(ENCODE).type(type).send(png).expect(200);
      expect(res.body.images[0].sourceFormat).toBe('png');
    }
  });

  it('returns .npy for Accept: application/x-npy', async () => {
    const { app } = fakeApp();
    const res = await request(app)
      .post(ENCODE)
      .type('image/png')
      .set('Accept', 'application/x-npy')
      .buffer(true)
      .parse(binaryParser)
      .send(png)
      .expect(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-npy/);
    const tensor = parseNpy(res.body as Buffer);
    expect(tensor.shape).toEqual([1, 4, 7, 7]);
  });

  it('takes several images as multipart file parts, in order', async () => {
    const { app, calls } = fakeApp();
    const dark = await greyPng(28, 28, () => 0);
    const light = await greyPng(28, 28, () => 255);
    const res = await request(app)
      .post(ENCODE)
      .attach('a', dark, 'a.png')
      .attach('b', light, 'b.png')
      .attach('c', png, 'c.png')
      .field('dtype', 'float16')
      .expect(200);
    expect(res.body.latents.shape).toEqual([3, 4, 7, 7]);
    expect(res.body.latents.dtype).toBe('float16');
    const batch = calls.encode[0];
    expect(batch.data[0]).toBe(-1);
    expect(batch.data[784]).toBe(1);
  });

  it('takes JSON {"images": [...]} and {"image": "..."} with base64 (data URLs too)', async () => {
    const { app } = fakeApp();
    const b64 = png.toString('base64');
    const many = await request(app)
      .post(ENCODE)
      .send({ images: [b64, b64] })
      .expect(200);
    expect(many.body.latents.shape).toEqual([2, 4, 7, 7]);
    const one = await request(app)
      .post(ENCODE)
      .send({ image: `data:image/png;base64,${b64}`, latents: 'normalized' })
      .expect(200);
    expect(one.body.latentSpace).toBe('normalized');
  });

  it('applies latents=normalized through the model: (z - mean) * scale', async () => {
    const { app } = fakeApp();
    const raw = await request(app).post(ENCODE).type('image/png').send(png).expect(200);
    const norm = await request(app)
      .post(`${ENCODE}?latents=normalized`)
      .type('image/png')
      .send(png)
      .expect(200);
    const a = latentValues(raw.body).bytes.readFloatLE(0);
    const b = latentValues(norm.body).bytes.readFloatLE(0);
    expect(b).toBeCloseTo((a - 0.5) * 2, 5);
  });

  it('refuses unknown fields and parameters, and conflicting options', async () => {
    const { app } = fakeApp();
    const typo = await request(app)
      .post(ENCODE)
      .send({ image: png.toString('base64'), resise: 'pad' });
    expect(typo.status).toBe(400);
    expect(typo.body.code).toBe('invalid_request');
    expect(typo.body.detail).toContain('resise');
    const query = await request(app).post(`${ENCODE}?size=3`).type('image/png').send(png);
    expect(query.status).toBe(400);
    const both = await request(app)
      .post(`${ENCODE}?resize=pad`)
      .send({ image: png.toString('base64'), resize: 'stretch' });
    expect(both.status).toBe(400);
    expect(both.body.detail).toContain('resize');
    const bad = await request(app).post(`${ENCODE}?resize=squash`).type('image/png').send(png);
    expect(bad.status).toBe(400);
  });

  it('refuses an option repeated in the form or the query rather than pick one', async () => {
    const { app, calls } = fakeApp();
    const form = await request(app)
      .post(ENCODE)
      .attach('a', png, 'a.png')
      .field('resize', 'pad')
      .field('resize', 'stretch')
      .expect(400);
    expect(form.body).toMatchObject({ code: 'invalid_request', field: 'resize', count: 2 });
    expect(form.body.detail).toBe('Form field resize is given 2 times; give it once');
    const query = await request(app)
      .post(`${ENCODE}?dtype=float16&dtype=float32`)
      .type('image/png')
      .send(png)
      .expect(400);
    expect(query.body.detail).toBe('Query parameter dtype is given 2 times; give it once');
    const unknown = await request(app).post(`${ENCODE}?size=1&size=2`).type('image/png').send(png);
    expect(unknown.body.detail).toBe('Invalid query: unknown field(s) size');
    expect(calls.encode).toHaveLength(0);
  });

  it('answers malformed JSON with 400 and a JSON body without images with 400', async () => {
    const { app } = fakeApp();
    const res = await request(app).post(ENCODE).type('application/json').send('{"images": [');
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/Malformed JSON/);
    const none = await request(app).post(ENCODE).send({});
    expect(none.status).toBe(400);
    const empty = await request(app).post(ENCODE).send({ images: [] });
    expect(empty.status).toBe(400);
  });

  it('answers a Content-Type it does not take with 415 naming the accepted ones', async () => {
    const { app } = fakeApp();
    const res = await request(app).post(ENCODE).type('text/plain').send('hello');
    expect(res.status).toBe(415);
    expect(res.body.code).toBe('unsupported_media_type');
    expect(res.body.accepted).toEqual(expect.arrayContaining(['image/*', 'multipart/form-data']));
  });

  it('answers an impossible Accept with 406 naming what it can send', async () => {
    const { app } = fakeApp();
    const res = await request(app)
      .post(ENCODE)
      .type('image/png')
      .set('Accept', 'text/html')
      .send(png);
    expect(res.status).toBe(406);
    expect(res.body.code).toBe('not_acceptable');
    expect(res.body.available).toEqual(['application/json', 'application/x-npy']);
  });

  it('answers a body over MAX_BODY_BYTES with 413 naming the limit', async () => {
    const { app } = fakeApp({ MAX_BODY_BYTES: '2048' });
    const res = await request(app).post(ENCODE).type('image/png').send(Buffer.alloc(5000, 1));
    expect(res.status).toBe(413);
    expect(res.body.code).toBe('body_too_large');
    expect(res.body.limit).toBe(2048);
    expect(res.body.detail).toContain('MAX_BODY_BYTES');
  });

  it('answers too many images with 413 too_many_items, any body type', async () => {
    const { app } = fakeApp({ MAX_IMAGES_PER_REQUEST: '2' });
    const b64 = png.toString('base64');
    const json = await request(app)
      .post(ENCODE)
      .send({ images: [b64, b64, b64] });
    expect(json.status).toBe(413);
    expect(json.body.code).toBe('too_many_items');
    expect(json.body.limit).toBe(2);
    const multi = await request(app)
      .post(ENCODE)
      .attach('a', png, 'a.png')
      .attach('b', png, 'b.png')
      .attach('c', png, 'c.png');
    expect(multi.status).toBe(413);
    expect(multi.body.code).toBe('too_many_items');
  });

  it('names the limit when a form has too many or too long text fields', async () => {
    const { app } = fakeApp();
    let form = request(app).post(ENCODE).attach('a', png, 'a.png');
    for (let i = 0; i < 4; i++) form = form.field(`f${i}`, 'x');
    const many = await form;
    expect([many.status, many.body.code, many.body.limit]).toEqual([400, 'invalid_request', 3]);
    expect(many.body.detail).toMatch(/More than 3 text fields in the form/);
    const long = await request(app)
      .post(ENCODE)
      .attach('a', png, 'a.png')
      .field('resize', 'x'.repeat(2000));
    expect([long.status, long.body.code]).toEqual([400, 'invalid_request']);
    expect(long.body.detail).toMatch(/longer than 1024 bytes/);
  });

  it('names the failing image of a batch by index', async () => {
    const { app } = fakeApp();
    const res = await request(app)
      .post(ENCODE)
      .send({ images: [png.toString('base64'), Buffer.from('not an image').toString('base64')] });
    expect(res.status).toBe(415);
    expect(res.body.index).toBe(1);
    expect(res.body.detail).toMatch(/^image 1: /);
  });

  it('logs the model and image count of an encode request', async () => {
    const { app, lines } = fakeApp();
    await request(app)
      .post(ENCODE)
      .set('X-Request-Id', 'enc-1')
      .attach('a', png, 'a.png')
      .attach('b', png, 'b.png')
      .expect(200);
    const line = lines.find((l) => l.reqId === 'enc-1' && l.msg === 'request');
    expect(line).toMatchObject({ model: 'fake', images: 2, status: 200, method: 'POST' });
  });
});
