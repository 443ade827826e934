import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fakeApp, greyPng } from './helpers';

/** Tests that need a real socket: chunked uploads, clients that go away. */
describe('HTTP over a real socket', () => {
  let server: http.Server;
  let port: number;
  let ctx: ReturnType<typeof fakeApp>;

  beforeAll(async () => {
    ctx = fakeApp({ MAX_BODY_BYTES: '4096' }, { slowMs: 50 });
    server = http.createServer(ctx.app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  function post(path: string, headers: Record<string, string>) {
    return http.request({ host: '127.0.0.1', port, path, method: 'POST', headers });
  }
  function reply(req: http.ClientRequest): Promise<{ status: number; body: any }> {
    return new Promise((resolve, reject) => {
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      });
      req.on('error', reject);
    });
  }

  it('refuses a chunked body (no Content-Length) once it passes MAX_BODY_BYTES', async () => {
    const req = post('/v1/models/fake/encode', {
      'Content-Type': 'image/png',
      'Transfer-Encoding': 'chunked',
    });
    const answer = reply(req);
    for (let i = 0; i < 10; i++) req.write(Buffer.alloc(1000, 7));
    req.end();
    const { status, body } = await answer;
    expect(status).toBe(413);
    expect(body).toMatchObject({ code: 'body_too_large', limit: 4096 });
  });

  it('refuses a declared Content-Length over the limit before reading the body', async () => {
    const req = post('/v1/models/fake/encode', {
      'Content-Type': 'image/png',
      'Content-Length': '10000',
    });
    const answer = reply(req);
    req.end(Buffer.alloc(10000));
    const { status, body } = await answer;
    expect(status).toBe(413);
    expect(body.actual).toBe(10000);
  });

  it('aborts the model call when the client goes away mid-request', async () => {
    const png = await greyPng(28, 28, () => 128);
    const req = post('/v1/models/fake/encode', { 'Content-Type': 'image/png' });
    req.on('error', () => undefined);
    req.end(png);
    const start = ctx.calls.encode.length;
    while (ctx.calls.encode.length === start) await new Promise((r) => setTimeout(r, 5));
    const signal = ctx.calls.lastSignal as AbortSignal;
    expect(signal.aborted).toBe(false);
    req.destroy();
    await new Promise((r) => setTimeout(r, 30));
    expect(signal.aborted).toBe(true);
  });
});
