import request from 'supertest';
import sharp from 'sharp';
import { latentToJson, writeNpy } from '../../src/intake';
import { binaryParser, fakeApp, latentNpy } from './helpers';

const DECODE = '/v1/models/fake/decode';

describe('POST /v1/models/{model}/decode', () => {
  it('returns one latent as image/png by default', async () => {
    const { app, calls } = fakeApp();
    const res = await request(app)
      .post(DECODE)
      .type('application/x-npy')
      .buffer(true)
      .parse(binaryParser)
      .send(latentNpy(1, 0.5))
      .expect(200);
    expect(res.headers['content-type']).toBe('image/png');
    const meta = await sharp(res.body as Buffer).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 28, 28]);
    const { data } = await sharp(res.body as Buffer)
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect(data[0]).toBe(Math.round((0.5 + 1) * 127.5));
    expect(calls.decode[0].shape).toEqual([1, 4, 7, 7]);
  });

  it('takes [Cz, h, w] as one image; format by Accept, else ?format', async () => {
    const { app } = fakeApp();
    const single = writeNpy({ data: new Float32Array(196), shape: [4, 7, 7] });
    const webp = await request(app)
      .post(DECODE)
      .type('application/x-npy')
      .set('Accept', 'image/webp')
      .buffer(true)
      .parse(binaryParser)
      .send(single)
      .expect(200);
    expect(webp.headers['content-type']).toBe('image/webp');
    expect((await sharp(webp.body as Buffer).metadata()).format).toBe('webp');
    const jpeg = await request(app)
      .post(`${DECODE}?format=jpeg`)
      .type('application/x-npy')
      .buffer(true)
      .parse(binaryParser)
      .send(single)
      .expect(200);
    expect(jpeg.headers['content-type']).toBe('image/jpeg');
  });

  it('returns a batch as JSON base64 images, and one latent as JSON on request', async () => {
    const { app } = fakeApp();
    const batch = await request(app)
      .post(DECODE)
      .type('application/x-npy')
      .send(latentNpy(3))
      .expect(200);
    expect(batch.body.format).toBe('png');
    expect(batch.body.images).toHaveLength(3);
    const png = Buffer.from(batch.body.images[2], 'base64');
    expect((await sharp(png).metadata()).width).toBe(28);
    const one = await request(app)
      .post(DECODE)
      .type('application/x-npy')
      .set('Accept', 'application/json')
      .send(latentNpy(1))
      .expect(200);
    expect(one.body.images).toHaveLength(1);
  });

  it('answers a batch with Accept: image/png only with 406', async () => {
    const { app } = fakeApp();
    const res = await request(app)
      .post(DECODE)
      .type('application/x-npy')
      .set('Accept', 'image/png')
      .send(latentNpy(2));
    expect(res.status).toBe(406);
    expect(res.body.available).toEqual(['application/json']);
  });

  it('takes the JSON latent form, float16 included, and ?latents=normalized', async () => {
    const { app, calls } = fakeApp();
    const tensor = { data: new Float32Array(196).fill(1), shape: [1, 4, 7, 7] };
    await request(app)
      .post(DECODE)
      .set('Accept', 'application/json')
      .send({ latents: latentToJson(tensor, 'float16') })
      .expect(200);
    expect(calls.decode[0].data[0]).toBe(1);
    await request(app)
      .post(`${DECODE}?latents=normalized`)
      .set('Accept', 'application/json')
      .send({ latents: latentToJson(tensor) })
      .expect(200);
    expect(calls.decode[1].data[0]).toBeCloseTo(1 / 2 + 0.5);
  });

  it('refuses a wrong shape, a bad dtype and non-finite values with 400', async () => {
    const { app, calls } = fakeApp();
    const wrong = await request(app)
      .post(DECODE)
      .type('application/x-npy')
      .send(writeNpy({ data: new Float32Array(4 * 8 * 8), shape: [1, 4, 8, 8] }));
    expect(wrong.status).toBe(400);
    expect(wrong.body.code).toBe('invalid_latent');
    const dtype = await request(app)
      .post(DECODE)
      .send({ latents: { shape: [1, 4, 7, 7], dtype: 'float64', data: '' } });
    expect(dtype.status).toBe(400);
    expect(dtype.body.code).toBe('unsupported_dtype');
    const nan = await request(app)
      .post(DECODE)
      .type('application/x-npy')
      .send(writeNpy({ data: new Float32Array(196).fill(NaN), shape: [1, 4, 7, 7] }));
    expect(nan.status).toBe(400);
    const extra = await request(app)
      .post(DECODE)
      .send({ latents: latentToJson({ data: new Float32Array(196), shape: [4, 7, 7] }), x: 1 });
    expect(extra.status).toBe(400);
    expect(calls.decode).toHaveLength(0);
  });

  it('refuses a field inside the JSON latents beyond shape, dtype and data', async () => {
    const { app, calls } = fakeApp();
    const latents = latentToJson({ data: new Float32Array(196), shape: [4, 7, 7] });
    const res = await request(app)
      .post(DECODE)
      .send({ latents: { ...latents, order: 'F', scale: 2 } })
      .expect(400);
    expect(res.body.code).toBe('invalid_latent');
    expect(res.body.detail).toBe(
      'latent JSON has unknown field(s) order, scale; it takes exactly shape, dtype, data',
    );
    expect(calls.decode).toHaveLength(0);
  });

  it('refuses a repeated query parameter rather than picking one', async () => {
    const { app, calls } = fakeApp();
    const res = await request(app)
      .post(`${DECODE}?format=png&format=webp`)
      .type('application/x-npy')
      .send(latentNpy(1))
      .expect(400);
    expect(res.body.detail).toBe('Query parameter format is given 2 times; give it once');
    expect(calls.decode).toHaveLength(0);
  });

  it('refuses too many latents with 413 and image bodies with 415', async () => {
    const { app } = fakeApp({ MAX_IMAGES_PER_REQUEST: '2' });
    const many = await request(app).post(DECODE).type('application/x-npy').send(latentNpy(3));
    expect(many.status).toBe(413);
    expect(many.body.code).toBe('too_many_items');
    const img = await request(app).post(DECODE).type('image/png').send(Buffer.from('x'));
    expect(img.status).toBe(415);
    expect(img.body.accepted).toContain('application/x-npy');
  });
});
