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
    // Worded as for a declared Content-Length (next test), with the limit in place of a size.
    expect(body.detail).toBe(
      'Request body is more than 4096 bytes; the limit is MAX_BODY_BYTES = 4096 bytes',
    );
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
    expect(body.detail).toBe(
      'Request body is 10000 bytes; the limit is MAX_BODY_BYTES = 4096 bytes',
    );
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

  /** The access line of the request with this id, once it is written. */
  async function accessLine(id: string) {
    for (let i = 0; i < 200; i++) {
      const line = ctx.lines.find((l) => l.reqId === id && l.msg === 'request');
      if (line) return line;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`no access line for ${id}`);
  }

  it('logs a client gone mid-upload as cancelled (499) at info, with no error line', async () => {
    const req = post('/v1/models/fake/encode', {
      'Content-Type': 'image/png',
      'Content-Length': '4000',
      'X-Request-Id': 'drop-upload',
    });
    req.on('error', () => undefined);
    req.write(Buffer.alloc(1000, 1));
    await new Promise((r) => setTimeout(r, 30));
    req.destroy();
    const line = await accessLine('drop-upload');
    await new Promise((r) => setTimeout(r, 30)); // an error line would come after the close
    expect(line).toMatchObject({ status: 499, code: 'cancelled', aborted: true, level: 30 });
    const mine = ctx.lines.filter((l) => l.reqId === 'drop-upload');
    expect(mine.filter((l) => (l.level as number) >= 50)).toEqual([]);
  });

  it('logs an abandoned JSON generate as cancelled (499) at info', async () => {
    const req = post('/v1/models/fake/generate', {
      'Content-Type': 'application/json',
      'X-Request-Id': 'drop-generate',
    });
    req.on('error', () => undefined);
    req.end(JSON.stringify({ class: 1, steps: 20 }));
    await new Promise((r) => setTimeout(r, 120)); // a few fake steps of 50 ms
    req.destroy();
    const line = await accessLine('drop-generate');
    expect(line).toMatchObject({ status: 499, code: 'cancelled', aborted: true, level: 30 });
  });

  it('holds body bytes against BODY_QUEUE_MAX_BYTES until the reply: 503 past it, freed after', async () => {
    const small = fakeApp({ MAX_BODY_BYTES: '4096', BODY_QUEUE_MAX_BYTES: '4096' });
    const other = http.createServer(small.app);
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const at = (other.address() as AddressInfo).port;
    const send = (length: number) =>
      http.request({
        host: '127.0.0.1',
        port: at,
        path: '/v1/models/fake/encode',
        method: 'POST',
        headers: { 'Content-Type': 'image/png', 'Content-Length': String(length) },
      });
    try {
      // Declaring a size holds nothing: only bytes that arrived count (stalled connections
      // that declare 16 MB and send 4 bytes must not lock everyone out) ...
      const stalled = send(4000);
      stalled.on('error', () => undefined);
      stalled.write(Buffer.alloc(4, 1));
      // ... while a slow upload holds the 3000 bytes it has sent
      const slow = send(4000);
      slow.on('error', () => undefined);
      slow.write(Buffer.alloc(3000, 1));
      await new Promise((r) => setTimeout(r, 50));
      expect(small.bodyBudget.inUse).toBe(3004);
      // so a second body of 2000 does not fit beside them
      const busy = send(2000);
      const refused = reply(busy);
      busy.end(Buffer.alloc(2000, 2));
      const { status, body } = await refused;
      expect(status).toBe(503);
      expect(body).toMatchObject({ code: 'queue_full', setting: 'BODY_QUEUE_MAX_BYTES' });
      expect(body.detail).toMatch(
        /^Server busy: request bodies in memory already hold \d+ bytes, and this upload \(\d+ bytes of 2000 received\) would pass BODY_QUEUE_MAX_BYTES = 4096; retry later$/,
      );
      // Once the slow client is gone its bytes are free again: the same body is read (and
      // refused for what it is, not for room).
      slow.destroy();
      stalled.destroy();
      await new Promise((r) => setTimeout(r, 30));
      const again = send(2000);
      const answered = reply(again);
      again.end(Buffer.alloc(2000, 2));
      const next = await answered;
      expect(next.status).toBe(415);
      expect(small.bodyBudget.inUse).toBe(0);
    } finally {
      await new Promise<void>((r) => other.close(() => r()));
    }
  });
});

