import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { clientErrorHandler } from '../../src/http/client-error';
import { silentLogger } from '../../src/logger';
import { fakeApp } from './helpers';

/** Requests Node's HTTP parser refuses get problem+json too (main.ts wires the handler). */
describe('HTTP parser refusals as problem+json', () => {
  let server: http.Server;
  let port: number;

  beforeAll(async () => {
    const ctx = fakeApp();
    // a short request timeout, checked often, so the 408 comes quickly
    server = http.createServer({ requestTimeout: 300, connectionsCheckingInterval: 50 }, ctx.app);
    server.on('clientError', clientErrorHandler(silentLogger));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  /** Sends raw bytes (keeping the socket open) and reads the reply until the server closes. */
  function raw(bytes: string): Promise<{ status: number; type: string; body: any }> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
      let text = '';
      socket.on('data', (c) => (text += c));
      socket.on('error', reject);
      socket.on('close', () => {
        const [head, body] = text.split('\r\n\r\n');
        resolve({
          status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]),
          type: /content-type: ([^\r\n]+)/i.exec(head)?.[1] ?? '',
          body: JSON.parse(body),
        });
      });
    });
  }

  it.each([
    ['a negative Content-Length', 'Content-Length: -5\r\n'],
    ['two different Content-Lengths', 'Content-Length: 5\r\nContent-Length: 6\r\n'],
    [
      'Content-Length with Transfer-Encoding',
      'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n',
    ],
  ])('answers %s with 400 invalid_request', async (_name, headers) => {
    const reply = await raw(`POST /v1/models/fake/encode HTTP/1.1\r\nHost: x\r\n${headers}\r\n`);
    expect(reply.status).toBe(400);
    expect(reply.type).toBe('application/problem+json');
    expect(reply.body).toMatchObject({ status: 400, code: 'invalid_request' });
    expect(reply.body.detail).toMatch(/^Malformed HTTP request: /);
  });

  it('refuses a transfer coding the parser leaves unapplied (gzip, chunked) with 415', async () => {
    const body = '{"class": 7}';
    const reply = await raw(
      'POST /v1/models/fake/generate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n' +
        'Content-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n' +
        `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
    );
    expect(reply.status).toBe(415);
    expect(reply.body).toMatchObject({ code: 'unsupported_media_type' });
    expect(reply.body.detail).toBe(
      'Transfer-Encoding gzip, chunked is not supported; send the body uncompressed',
    );
  });

  it('answers an upload slower than the request timeout with 408 request_timeout', async () => {
    const reply = await raw(
      'POST /v1/models/fake/encode HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc',
    );
    expect(reply.status).toBe(408);
    expect(reply.body).toMatchObject({ status: 408, code: 'request_timeout' });
    expect(reply.body.detail).toContain('REQUEST_TIMEOUT_MS');
  });
});
