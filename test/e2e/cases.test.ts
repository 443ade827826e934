import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import request from 'supertest';
import sharp from 'sharp';
import { ERROR_CATALOG, type ErrorCode } from '../../src/errors';
import { call, collect } from '../grpc/client';
import { binaryParser } from '../http/helpers';
import { CASES_DIR, startService, type Service } from './service';

/**
 * Every file in the shared failure cases, sent every way its manifest "transport" allows,
 * against the real model. A reject-4xx case must get the same 4xx code over every HTTP body
 * type and the catalog status (with the same code in the error-code trailer) over gRPC.
 */

interface Case {
  file: string;
  case: string;
  kind: string;
  transport: 'any' | 'http-json';
  expected: 'accept' | 'reject-4xx';
}

const CASES: Case[] = JSON.parse(fs.readFileSync(path.join(CASES_DIR, 'manifest.json'), 'utf8'));
const read = (file: string) => fs.readFileSync(path.join(CASES_DIR, file));
const text = (file: string) => read(file).toString('utf8');
const casesOf = (...kinds: string[]) =>
  CASES.filter((c) => kinds.includes(c.kind)).map((c) => [c.file, c] as const);
const TYPE_BY_EXT: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
  '.bin': 'application/octet-stream',
};

/** One attempt: which way it went, and what came back. */
interface Outcome {
  via: string;
  ok: boolean;
  /** HTTP status, or the gRPC status code. */
  status: number;
  code?: string;
  body?: any;
}

function httpOutcome(via: string, res: request.Response): Outcome {
  const problem = /problem\+json/.test(res.headers['content-type'] ?? '');
  if (res.status >= 400) expect({ via, problem }).toEqual({ via, problem: true });
  // Binary replies (images, .npy) come back as Buffers, problems too when parsed as binary.
  const body = Buffer.isBuffer(res.body) && problem ? JSON.parse(res.body.toString()) : res.body;
  return { via, ok: res.status === 200, status: res.status, code: body?.code, body };
}

type GrpcResult = { reply?: any; error?: grpc.ServiceError };

function grpcOutcome(via: string, result: GrpcResult): Outcome {
  if (!result.error) return { via, ok: true, status: 0, body: result.reply };
  const code = result.error.metadata.get('error-code')[0] as string | undefined;
  return { via, ok: false, status: result.error.code, code };
}

const settle = (p: Promise<any>): Promise<GrpcResult> =>
  p.then(
    (reply) => ({ reply }),
    (error) => ({ error }),
  );

/** Checks a case's outcomes: all accepted, or all refused with one code and the right status. */
function expectOutcomes(c: Case, outcomes: Outcome[]): void {
  const summary = outcomes.map((o) => `${o.via}: ${o.status} ${o.code ?? ''}`).join('; ');
  const seen = (o: Outcome) => ({ file: c.file, via: o.via, summary });
  for (const o of outcomes) {
    if (c.expected === 'accept') {
      expect({ ...seen(o), ok: o.ok }).toEqual({ ...seen(o), ok: true });
      continue;
    }
    expect({ ...seen(o), ok: o.ok, hasCode: o.code !== undefined }).toEqual({
      ...seen(o),
      ok: false,
      hasCode: true,
    });
    const statusOk = o.via.startsWith('grpc')
      ? o.status === ERROR_CATALOG[o.code as ErrorCode].grpc
      : o.status >= 400 && o.status < 500;
    expect({ ...seen(o), statusOk }).toEqual({ ...seen(o), statusOk: true });
  }
  if (c.expected === 'reject-4xx') {
    const codes = [...new Set(outcomes.map((o) => o.code))];
    const one = [outcomes[0].code];
    expect({ file: c.file, codes, summary }).toEqual({ file: c.file, codes: one, summary });
  }
}

/** A .npy file as the gRPC Tensor a client would send, when it is little-endian C order. */
function npyAsTensorMessage(bytes: Buffer) {
  const major = bytes[6];
  const headerStart = major === 1 ? 10 : 12;
  const headerLen = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const header = bytes.toString('latin1', headerStart, headerStart + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1] ?? '';
  const fortran = /'fortran_order':\s*True/.test(header);
  if (fortran || descr.startsWith('>')) return undefined;
  const dtypes: Record<string, string> = {
    '<f4': 'float32',
    '<f2': 'float16',
    '<f8': 'float64',
    '<i4': 'int32',
  };
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '').split(',').map((s) => s.trim());
  return {
    data: bytes.subarray(headerStart + headerLen),
    shape: shape.filter(Boolean),
    dtype: dtypes[descr] ?? descr,
  };
}

function floats(base64: string): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  return new Float32Array(bytes.length / 4).map((_, i) => bytes.readFloatLE(4 * i));
}

describe('e2e: the shared failure cases, every way the API takes them', () => {
  let svc: Service;
  let base: string;
  const post = (route: string) => request(svc.app).post(`${base}/${route}`);
  const grpcEncode = (images: Buffer[]) =>
    settle(call(svc.grpc.client, 'Encode', { model: svc.model, images }));
  const decodeNpy = (bytes: Buffer, type = 'application/x-npy') =>
    post('decode').type(type).buffer(true).parse(binaryParser).send(bytes);

  beforeAll(async () => {
    svc = await startService();
    base = `/v1/models/${svc.model}`;
  });
  afterAll(() => svc.close());

  const imageCases = casesOf('image', 'not-an-image', 'svg');
  it.each(imageCases)('%s: raw, multipart, JSON and gRPC', async (file, c) => {
    const bytes = read(file);
    const type = TYPE_BY_EXT[path.extname(file)];
    const part = { filename: file, contentType: type };
    const outcomes: Outcome[] = [
      httpOutcome(`raw ${type}`, await post('encode').type(type).send(bytes)),
      httpOutcome('multipart', await post('encode').attach('image', bytes, part)),
      httpOutcome('json', await post('encode').send({ image: bytes.toString('base64') })),
      grpcOutcome('grpc', await grpcEncode([bytes])),
    ];
    // The body decides, never the header: an SVG declared as PNG is still refused as SVG.
    if (c.kind === 'svg') {
      const asPng = await post('encode').type('image/png').send(bytes);
      outcomes.push(httpOutcome('raw as image/png', asPng));
      for (const o of outcomes) expect(o.code).toBe('unsupported_image_format');
    }
    expectOutcomes(c, outcomes);
    if (c.expected === 'accept') {
      // Every transport saw the same image: identical latents.
      const latents = outcomes.map((o) =>
        o.via === 'grpc' ? o.body.latents.data.toString('base64') : o.body.latents.data,
      );
      expect(new Set(latents).size).toBe(1);
    }
  });

  it('bc02: every orientation comes back upright, 64x48, latent close to #1', async () => {
    const encode = async (file: string) =>
      (await post('encode').type('image/jpeg').send(read(file)).expect(200)).body;
    const ref = floats((await encode('bc02-orientation-1.jpg')).latents.data);
    const norm = Math.hypot(...ref);
    for (const file of CASES.filter((c) => c.case === 'BC-02').map((c) => c.file)) {
      const body = await encode(file);
      const { sourceWidth: w, sourceHeight: h } = body.images[0];
      expect({ file, w, h }).toEqual({ file, w: 64, h: 48 });
      // Relative L2 distance: about 0.004 for the eight orientations on the shipped model
      // (JPEG noise), 0.8-1.1 for an image mirrored or turned the wrong way.
      const z = floats(body.latents.data);
      const dist = Math.hypot(...z.map((v, i) => v - ref[i])) / norm;
      expect({ file, close: dist < 0.05, dist }).toMatchObject({ close: true });
    }
  });

  it('bc14: an animated image is encoded from frame 1 and the reply says 3 frames', async () => {
    for (const file of ['bc14-animated-3-frames.gif', 'bc14-animated-3-frames.webp']) {
      const res = await post('encode').attach('a', read(file), file).expect(200);
      expect(res.body.images[0].frames).toBe(3);
      expect(res.body.images[0].warnings.join(' ')).toMatch(/frame/);
    }
  });

  it.each(casesOf('base64-string'))('%s: as the JSON image field', async (file, c) => {
    const res = await post('encode').send({ image: text(file) });
    const many = await post('encode').send({ images: [text(file)] });
    expectOutcomes(c, [httpOutcome('json image', res), httpOutcome('json images', many)]);
    if (c.expected === 'accept') {
      const ref = await post('encode').type('image/png').send(read('bc15-base.png')).expect(200);
      expect(res.body.latents.data).toBe(ref.body.latents.data);
    }
  });

  it.each(casesOf('latent-npy'))('%s: as a .npy body and a gRPC tensor', async (file, c) => {
    const bytes = read(file);
    const outcomes = [
      httpOutcome('npy', await decodeNpy(bytes)),
      httpOutcome('octet-stream', await decodeNpy(bytes, 'application/octet-stream')),
    ];
    // The gRPC tensor is little-endian C order by contract: big-endian or Fortran files have
    // no gRPC form (a client converts them first), so only the others are sent as they are.
    const tensor = npyAsTensorMessage(bytes);
    if (tensor) {
      const reply = call(svc.grpc.client, 'Decode', { model: svc.model, latents: tensor });
      outcomes.push(grpcOutcome(`grpc ${tensor.dtype}`, await settle(reply)));
    }
    expectOutcomes(c, outcomes);
    if (c.expected === 'accept') {
      const pixels = async (png: Buffer) => sharp(png).raw().toBuffer();
      const ref = await pixels((await decodeNpy(read('bc18-latent-f4.npy')).expect(200)).body);
      const got = await pixels(outcomes[0].body);
      const maxDiff = Math.max(...got.map((v, i) => Math.abs(v - ref[i])));
      // float16 keeps about 3 significant digits of each latent value: a few grey levels.
      const limit = file.includes('f2') ? 3 : 0;
      expect({ file, maxDiff, ok: maxDiff <= limit }).toMatchObject({ ok: true });
    }
  });

  it.each(casesOf('latent-json'))('%s: as the JSON latents field', async (file, c) => {
    const latents = JSON.parse(text(file));
    const res = await post('decode').set('Accept', 'application/json').send({ latents });
    expectOutcomes(c, [httpOutcome('json', res)]);
    if (c.expected === 'accept') {
      const ref = await post('decode')
        .type('application/x-npy')
        .set('Accept', 'application/json')
        .send(read('bc18-latent-f4.npy'))
        .expect(200);
      expect(res.body.images).toEqual(ref.body.images);
    }
  });

  it.each(casesOf('generate-request'))('%s: as generate body and over gRPC', async (file, c) => {
    const body = JSON.parse(text(file));
    const outcomes = [httpOutcome('json', await post('generate').send(body))];
    // gRPC has an int64 id or a name: 3.5 has no gRPC form; strings go as names.
    const label = body.class;
    if (typeof label === 'string' || Number.isInteger(label)) {
      const which = typeof label === 'string' ? { className: label } : { classId: String(label) };
      const req = { model: svc.model, count: body.count, seed: String(body.seed), ...which };
      const { messages, error } = await collect(svc.grpc.client.Generate(req));
      outcomes.push(grpcOutcome('grpc', error ? { error } : { reply: messages.at(-1) }));
    }
    expectOutcomes(c, outcomes);
    if (c.expected === 'reject-4xx') {
      expect(outcomes[0].code).toBe('invalid_class');
      expect(outcomes[0].body.detail).toMatch(/Sneaker/);
    } else {
      const seven = await post('generate')
        .send({ ...body, class: 7 })
        .expect(200);
      expect(outcomes[0].body.class).toBe(7);
      expect(outcomes[0].body.images).toEqual(seven.body.images);
    }
  });

  it('refuses the 16000x16000 PNG 8x at once per transport, memory flat', async () => {
    const flood = read('bc01-flood-png-valid-16000x16000.png');
    const rssBefore = process.memoryUsage().rss;
    const started = Date.now();
    const eight = <T>(f: () => Promise<T>) => Promise.all(Array.from({ length: 8 }, f));
    const [http, rpc] = await Promise.all([
      eight(() => request(svc.baseUrl).post(`${base}/encode`).type('image/png').send(flood)),
      eight(() => grpcEncode([flood])),
    ]);
    const elapsed = Date.now() - started;
    for (const r of http) {
      expect(r.status).toBe(413);
      expect(r.body.code).toBe('image_too_large');
      expect(r.body.detail).toMatch(/16000\s*x\s*16000/);
    }
    for (const r of rpc) expect(r.error?.metadata.get('error-code')).toEqual(['image_too_large']);
    // Decoding even one would inflate 256 MB of grey pixels; refusing from the header keeps
    // the growth to request buffers.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(128 * 1024 * 1024);
    expect(elapsed).toBeLessThan(5000);
    await request(svc.baseUrl).get('/healthz').expect(200);
    await post('encode').type('image/png').send(read('bc15-base.png')).expect(200);
  });
});
