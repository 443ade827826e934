import request from 'supertest';
import { jsonShapeProblem } from '../../src/http/json-keys';
import { fakeApp } from './helpers';

const duplicateKey = (text: string) => jsonShapeProblem(text, Infinity)?.duplicateKey;

describe('jsonShapeProblem: duplicate keys', () => {
  it.each([
    ['{"class": 7, "class": 8}', 'class'],
    ['{"a": {"b": 1, "b": 2}}', 'b'],
    ['[{"x": 1}, {"y": 2, "y": 3}]', 'y'],
    ['{"a\\u0062": 1, "ab": 2}', 'ab'], // the same key, escaped once
    ['{"a": {"k": 1}, "b": {"k": 2}, "a": 3}', 'a'],
  ])('finds the repeated key in %s', (text, key) => {
    expect(duplicateKey(text)).toBe(key);
  });

  it.each([
    '{"class": 7, "count": 2}',
    '[{"k": 1}, {"k": 2}]', // one key in two different objects
    '{"s": "\\"class\\": 1, \\"class\\": 2", "class": 3}', // keys inside a string value
    '{"a\\\\": 1, "a": 2}', // an escaped backslash ends the first key
    '{"images": ["iVBOR==", "iVBOR=="], "x": {}}',
    '"class"',
    '[]',
  ])('finds none in %s', (text) => {
    expect(duplicateKey(text)).toBeUndefined();
  });
});

describe('compressed bodies', () => {
  it.each(['gzip', 'br', 'deflate'])(
    'are refused with 415 for Content-Encoding %s',
    async (enc) => {
      const { app } = fakeApp();
      const res = await request(app)
        .post('/v1/models/fake/generate')
        .type('application/json')
        .set('Content-Encoding', enc)
        .send('{"class": 7}')
        .expect(415);
      expect(res.body).toMatchObject({ code: 'unsupported_media_type', contentEncoding: enc });
      expect(res.body.detail).toBe(
        `Content-Encoding ${enc} is not supported; send the body uncompressed`,
      );
    },
  );

  it('takes Content-Encoding identity as no encoding', async () => {
    const { app } = fakeApp();
    await request(app)
      .post('/v1/models/fake/generate')
      .type('application/json')
      .set('Content-Encoding', 'identity')
      .send('{"class": 7, "steps": 1}')
      .expect(200);
  });
});

describe('JSON bodies with a key given twice', () => {
  it('are refused with 400 naming the key, not read last-wins', async () => {
    const { app } = fakeApp();
    const res = await request(app)
      .post('/v1/models/fake/generate')
      .type('application/json')
      .send('{"class": 7, "class": 8, "count": 1}')
      .expect(400);
    expect(res.body).toMatchObject({ code: 'invalid_request', field: 'class' });
    expect(res.body.detail).toBe(
      'JSON key "class" is given twice in one object; give each field once',
    );
  });
});
