import http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS, PROTO_FILE } from '../../src/grpc/proto';
import { collect } from '../grpc/client';
import { startServerProcess } from './process';
import { shippedModelName } from './service';

/**
 * SIGTERM against the real process: requests in flight are drained; past SHUTDOWN_TIMEOUT_MS
 * they are cancelled between sampler steps and answer shutting_down, ONNX Runtime is never torn
 * down mid-run, and the process exits 0 with "stopped" as its last line.
 */

const model = shippedModelName();

interface Reply {
  status: number;
  body: string;
  /** Resolves once the first body bytes arrived (for SSE: the first event). */
  started: Promise<void>;
}

function postJson(port: number, path: string, body: object, accept = 'application/json') {
  let onStart: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (onStart = resolve));
  const done = new Promise<Reply>((resolve, reject) => {
    const headers = { 'Content-Type': 'application/json', Accept: accept };
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
        onStart();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, started }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
  return { done, started };
}

describe('e2e: SIGTERM', () => {
  it('drains a request in flight, then exits 0', async () => {
    const server = await startServerProcess();
    const generate = postJson(server.httpPort, `/v1/models/${model}/generate`, {
      class: 1,
      count: 4,
      steps: 16,
    });
    await new Promise((r) => setTimeout(r, 100));
    const code = server.stop('SIGTERM');
    const reply = await generate.done;
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body).images).toHaveLength(4);
    expect(await code).toBe(0);
    const msgs = server.lines.map((l) => l.msg);
    const stopping = msgs.indexOf('shutting down: draining requests');
    const served = server.lines.findIndex((l) => l.msg === 'request' && /generate$/.test(l.path));
    expect(stopping).toBeGreaterThanOrEqual(0);
    expect(served).toBeGreaterThan(stopping); // the request finished after shutdown began
    expect(msgs[msgs.length - 1]).toBe('stopped');
  });

  it('cancels long generations at SHUTDOWN_TIMEOUT_MS with shutting_down, exits 0', async () => {
    const server = await startServerProcess({ SHUTDOWN_TIMEOUT_MS: '1000' });
    // Long enough to outlast the timeout by far on any machine (CFG: 64 rows, 200 evaluations).
    const long = { class: 3, count: 32, steps: 100 };
    const path = `/v1/models/${model}/generate`;
    const json = postJson(server.httpPort, path, long);
    const sse = postJson(server.httpPort, path, long, 'text/event-stream');
    const def = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS)) as any;
    const client = new def.dmvae.v1.Dmvae(
      `127.0.0.1:${server.grpcPort}`,
      grpc.credentials.createInsecure(),
    );
    const stream = collect(client.Generate({ model, classId: '3', count: 32, steps: 100 }));
    await sse.started; // sampling is under way
    await new Promise((r) => setTimeout(r, 200));

    const exited = server.stop('SIGTERM');
    const [jsonReply, sseReply, grpcReply, code] = await Promise.all([
      json.done,
      sse.done,
      stream,
      exited,
    ]);
    client.close();

    expect(server.stderr()).not.toMatch(/terminate called|Napi::Error/);
    expect(code).toBe(0);
    expect(jsonReply.status).toBe(503);
    expect(JSON.parse(jsonReply.body)).toMatchObject({ code: 'shutting_down', status: 503 });
    expect(sseReply.body).toMatch(/event: progress\n/);
    expect(sseReply.body).toMatch(/event: error\ndata: \{[^\n]*"code":"shutting_down"/);
    expect(grpcReply.error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(grpcReply.error?.metadata.get('error-code')).toEqual(['shutting_down']);

    const msgs = server.lines.map((l) => l.msg);
    expect(msgs).toContain('shutdown timeout: cancelling requests');
    expect(msgs[msgs.length - 1]).toBe('stopped');
    // Stopped between steps, well before the generations could have finished.
    const cancelledAt = server.lines.find((l) => l.msg === 'shutdown timeout: cancelling requests');
    const stoppedAt = server.lines[server.lines.length - 1];
    expect(stoppedAt.time - cancelledAt?.time).toBeLessThan(5000);
  });
});
