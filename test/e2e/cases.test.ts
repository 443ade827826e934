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
  kind: 'image' | 'not-an-image' | 'svg' | 'base64-string' | 'latent-npy' | 'latent-json' | 'generate-request';
  transport: 'any' | 'http-json';
  expected: 'accept' | 'reject-4xx';
  notes: string;
}

const CASES: Case[] = JSON.parse(fs.readFileSync(path.join(CASES_DIR, 'manifest.json'), 'utf8'));
const read = (file: string) => fs.readFileSync(path.join(CASES_DIR, file));
const TYPE_BY_EXT: Record<string, string> = {
  '.png': 'image/png', '.jpg': 'image/jpeg', '.gif': 'image/gif', '.webp': 'image/webp',
  '.svg': 'image/svg+xml', '.bin': 'application/octet-stream',
};

/** One attempt: where it went, and what came back. */
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
  if (res.status >= 400) expect(problem).toBe(true);
  return { via, ok: res.status === 200, status: res.status, code: res.body?.code, body: res.body };
}

function grpcOutcome(via: string, result: { reply?: any; error?: grpc.ServiceError }): Outcome {
  if (!result.error) return { via, ok: true, status: 0, body: result.reply };
  const code = result.error.metadata.get('error-code')[0] as string | undefined;
  return { via, ok: false, status: result.error.code, code };
}

/** Checks one case's outcomes against its expectation; returns them for note-specific checks. */
function expectOutcomes(c: Case, outcomes: Outcome[]): void {
  const summary = outcomes.map((o) => `${o.via}: ${o.status} ${o.code ?? ''}`).join('; ');
  for (const o of outcomes) {
    const isGrpc = o.via.startsWith('grpc');
    if (c.expected === 'accept') {
      expect({ file: c.file, via: o.via, ok: o.ok, summary }).toMatchObject({ ok: true });
      continue;
    }
    expect({ file: c.file, via: o.via, ok: o.ok }).toMatchObject({ ok: false });
    expect(o.code).toBeDefined();
    if (isGrpc) {
      expect({ file: c.file, via: o.via, status: o.status }).toEqual({
        file: c.file, via: o.via, status: ERROR_CATALOG[o.code as ErrorCode].grpc });
    } else {
      expect({ file: c.file, via: o.via, status4xx: o.status >= 400 && o.status < 500, summary })
        .toMatchObject({ status4xx: true });
    }
  }
  if (c.expected === 'reject-4xx') {
    const codes = new Set(outcomes.map((o) => o.code));
    expect({ file: c.file, codes: [...codes], summary }).toMatchObject({ codes: [outcomes[0].code] });
  }
}

describe('e2e: the shared failure cases, every way the API takes them', () => {
  let svc: Service;
  let base: string;
  const grpcEncode = (images: Buffer[]) =>
    call(svc.grpc.client, 'Encode', { model: svc.model, images }).then((reply) => ({ reply }), (error) => ({ error }));
  beforeAll(async () => {
    svc = await startService();
    base = `/v1/models/${svc.model}`;
  });
  afterAll(() => svc.close());

  const imageLike = CASES.filter((c) => ['image', 'not-an-image', 'svg'].includes(c.kind));
  it.each(imageLike.map((c) => [c.file, c] as const))('%s: raw body, multipart, JSON base64 and gRPC', async (_f, c) => {
    const bytes = read(c.file);
    const type = TYPE_BY_EXT[path.extname(c.file)];
    const encode = () => request(svc.app).post(`${base}/encode`);
    const outcomes: Outcome[] = [
      httpOutcome(`raw ${type}`, await encode().type(type).send(bytes)),
      httpOutcome('multipart', await encode().attach('image', bytes, { filename: c.file, contentType: type })),
      httpOutcome('json', await encode().send({ image: bytes.toString('base64') })),
      grpcOutcome('grpc', await grpcEncode([bytes])),
    ];
    // The body decides, never the header: an SVG declared as PNG is still refused as SVG.
    if (c.kind === 'svg') outcomes.push(httpOutcome('raw as image/png', await encode().type('image/png').send(bytes)));
    expectOutcomes(c, outcomes);
    if (c.kind === 'svg') for (const o of outcomes) expect(o.code).toBe('unsupported_image_format');
    if (c.expected === 'accept') {
      // Every transport saw the same image: identical latents.
      const latents = outcomes.map((o) => (o.via === 'grpc' ? o.body.latents.data.toString('base64') : o.body.latents.data));
      expect(new Set(latents).size).toBe(1);
    }
  });

  it('bc02: every orientation comes back upright: size 64x48 and a latent close to orientation 1', async () => {
    const encode = async (file: string) =>
      (await request(svc.app).post(`${base}/encode`).type('image/jpeg').send(read(file)).expect(200)).body;
    const latent = (body: any) => new Float32Array(new Uint8Array(Buffer.from(body.latents.data, 'base64')).buffer);
    const ref = latent(await encode('bc02-orientation-1.jpg'));
    const norm = Math.hypot(...ref);
    const files = CASES.filter((c) => c.case === 'BC-02').map((c) => c.file);
    for (const file of files) {
      const body = await encode(file);
      expect({ file, w: body.images[0].sourceWidth, h: body.images[0].sourceHeight }).toEqual({ file, w: 64, h: 48 });
      const z = latent(body);
      // Relative L2 distance: about 0.004 for the eight orientations on the shipped model
      // (JPEG noise), 0.8-1.1 for an image mirrored or turned the wrong way.
      const dist = Math.hypot(...z.map((v, i) => v - ref[i])) / norm;
      expect({ file, close: dist < 0.05, dist }).toMatchObject({ close: true });
    }
  });

  it('bc14: an animated image is encoded from frame 1 and the reply says 3 frames', async () => {
    for (const file of ['bc14-animated-3-frames.gif', 'bc14-animated-3-frames.webp']) {
      const res = await request(svc.app).post(`${base}/encode`).attach('a', read(file), file).expect(200);
      expect(res.body.images[0].frames).toBe(3);
      expect(res.body.images[0].warnings.join(' ')).toMatch(/frame/);
    }
  });

  const base64Cases = CASES.filter((c) => c.kind === 'base64-string');
  it.each(base64Cases.map((c) => [c.file, c] as const))('%s: as the JSON image field', async (_f, c) => {
    const text = read(c.file).toString('utf8');
    const res = await request(svc.app).post(`${base}/encode`).send({ image: text });
    const many = await request(svc.app).post(`${base}/encode`).send({ images: [text] });
    expectOutcomes(c, [httpOutcome('json image', res), httpOutcome('json images', many)]);
    if (c.expected === 'accept') {
      const ref = await request(svc.app).post(`${base}/encode`).type('image/png').send(read('bc15-base.png'));
      expect(res.body.latents.data).toBe(ref.body.latents.data);
    }
  });

  const decodePixels = async (res: request.Response) => sharp(res.body as Buffer).raw().toBuffer();
  const npyCases = CASES.filter((c) => c.kind === 'latent-npy');
  it.each(npyCases.map((c) => [c.file, c] as const))('%s: as a .npy body and a gRPC tensor', async (_f, c) => {
    const bytes = read(c.file);
    const decode = (type: string) => request(svc.app).post(`${base}/decode`).type(type)
      .buffer(true).parse(binaryParser).send(bytes);
    const outcomes = [httpOutcome('npy', await decode('application/x-npy')),
      httpOutcome('octet-stream', await decode('application/octet-stream'))];
    const tensor = npyAsTensorMessage(bytes);
    // The gRPC tensor is little-endian C order by contract: big-endian or Fortran files have no
    // gRPC form (a client converts them), so only the others are sent as they are.
    if (tensor) {
      const result = await call(svc.grpc.client, 'Decode', { model: svc.model, latents: tensor })
        .then((reply) => ({ reply }), (error) => ({ error }));
      outcomes.push(grpcOutcome(`grpc ${tensor.dtype}`, result));
    }
    for (const o of outcomes) if (!o.ok && typeof o.body === 'object' && Buffer.isBuffer(o.body)) {
      o.code = JSON.parse(o.body.toString()).code;
    }
    expectOutcomes(c, outcomes);
    if (c.expected === 'accept') {
      const ref = await decodePixels(await request(svc.app).post(`${base}/decode`).type('application/x-npy')
        .buffer(true).parse(binaryParser).send(read('bc18-latent-f4.npy')).expect(200));
      const got = await decodePixels(await decode('application/x-npy'));
      const maxDiff = Math.max(...got.map((v, i) => Math.abs(v - ref[i])));
      // float16 rounds each latent value to ~3 significant digits: allow a few grey levels.
      const limit = c.file.includes('f2') ? 3 : 0;
      expect({ file: c.file, withinLimit: maxDiff <= limit, maxDiff }).toMatchObject({ withinLimit: true });
    }
  });

  const latentJsonCases = CASES.filter((c) => c.kind === 'latent-json');
  it.each(latentJsonCases.map((c) => [c.file, c] as const))('%s: as the JSON latents field', async (_f, c) => {
    const latents = JSON.parse(read(c.file).toString('utf8'));
    const res = await request(svc.app).post(`${base}/decode`).set('Accept', 'application/json').send({ latents });
    expectOutcomes(c, [httpOutcome('json', res)]);
    if (c.expected === 'accept') {
      const ref = await request(svc.app).post(`${base}/decode`).type('application/x-npy').set('Accept', 'application/json')
        .send(read('bc18-latent-f4.npy')).expect(200);
      expect(res.body.images).toEqual(ref.body.images);
    }
  });

  const generateCases = CASES.filter((c) => c.kind === 'generate-request');
  it.each(generateCases.map((c) => [c.file, c] as const))('%s: as the generate body, and over gRPC', async (_f, c) => {
    const body = JSON.parse(read(c.file).toString('utf8'));
    const outcomes = [httpOutcome('json', await request(svc.app).post(`${base}/generate`).send(body))];
    const label = body.class;
    // gRPC has an int64 id or a name: 3.5 has no gRPC form; strings go as names.
    if (typeof label === 'string' || Number.isInteger(label)) {
      const req = { model: svc.model, count: body.count, seed: String(body.seed),
        ...(typeof label === 'string' ? { className: label } : { classId: String(label) }) };
      const { messages, error } = await collect(svc.grpc.client.Generate(req));
      outcomes.push(grpcOutcome('grpc', error ? { error } : { reply: messages[messages.length - 1] }));
    }
    expectOutcomes(c, outcomes);
    if (c.expected === 'reject-4xx') {
      expect(outcomes[0].code).toBe('invalid_class');
      expect(outcomes[0].body.detail).toMatch(/Sneaker/);
    } else {
      const seven = await request(svc.app).post(`${base}/generate`).send({ ...body, class: 7 }).expect(200);
      expect(outcomes[0].body.class).toBe(7);
      expect(outcomes[0].body.images).toEqual(seven.body.images);
    }
  });

  it('refuses the valid 16000x16000 PNG sent 8 times in parallel, with flat memory, and still answers', async () => {
    const flood = read('bc01-flood-png-valid-16000x16000.png');
    const rssBefore = process.memoryUsage().rss;
    const started = Date.now();
    const replies = await Promise.all([
      ...Array.from({ length: 8 }, () =>
        request(svc.baseUrl).post(`${base}/encode`).type('image/png').send(flood)),
      ...Array.from({ length: 8 }, () => grpcEncode([flood])),
    ]);
    const elapsed = Date.now() - started;
    for (const r of replies.slice(0, 8) as request.Response[]) {
      expect(r.status).toBe(413);
      expect(r.body.code).toBe('image_too_large');
      expect(r.body.detail).toMatch(/16000\s*x\s*16000/);
    }
    for (const r of replies.slice(8) as { error?: grpc.ServiceError }[]) {
      expect(r.error?.metadata.get('error-code')).toEqual(['image_too_large']);
    }
    // Decoding even one would inflate 256 MB of grey pixels; refusing from the header keeps
    // the growth to request buffers.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(128 * 1024 * 1024);
    expect(elapsed).toBeLessThan(5000);
    await request(svc.baseUrl).get('/healthz').expect(200);
    await request(svc.app).post(`${base}/encode`).type('image/png').send(read('bc15-base.png')).expect(200);
  });
});

/** A .npy file as the gRPC Tensor a client would send, when its layout is little-endian C order. */
function npyAsTensorMessage(bytes: Buffer) {
  const major = bytes[6];
  const headerLen = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = bytes.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1] ?? '';
  if (/True/.test(/'fortran_order':\s*(\w+)/.exec(header)?.[1] ?? '') || descr.startsWith('>')) return undefined;
  const dtype = { '<f4': 'float32', '<f2': 'float16', '<f8': 'float64', '<i4': 'int32' }[descr] ?? descr;
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return { data: bytes.subarray(start), shape, dtype };
}
