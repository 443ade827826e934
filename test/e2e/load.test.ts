import http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import sharp from 'sharp';
import { LOADER_OPTIONS, PROTO_FILE } from '../../src/grpc/proto';
import { call } from '../grpc/client';
import { startServerProcess, type ServerProcess } from './process';
import { shippedModelName } from './service';

/**
 * The service in its own process, as deployed: liveness stays fast while a full batch is
 * decoded and encoded (image decoding and ONNX Runtime run off the event loop). Shutdown is
 * tested in shutdown.test.ts.
 */

function httpRequest(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: Buffer,
) {
  return new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A multipart body built before timing starts, so the client does no work while measuring. */
function multipart(files: Buffer[]): { body: Buffer; type: string } {
  const boundary = 'dmvae-load-test-boundary';
  const parts = files.flatMap((f, i) => [
    Buffer.from(
      `--${boundary}\r\n` +
        `Content-Disposition: form-data; name="img${i}"; filename="img${i}.jpg"\r\n` +
        'Content-Type: image/jpeg\r\n\r\n',
    ),
    f,
    Buffer.from('\r\n'),
  ]);
  return {
    body: Buffer.concat([...parts, Buffer.from(`--${boundary}--\r\n`)]),
    type: `multipart/form-data; boundary=${boundary}`,
  };
}

describe('e2e: the service process under load and at shutdown', () => {
  let server: ServerProcess;
  let images: Buffer[];
  const model = shippedModelName();
  beforeAll(async () => {
    server = await startServerProcess();
    // MAX_IMAGES_PER_REQUEST (64) 768x768 colour JPEGs, about 150 KB each: 32-pixel tiles
    // with a fine texture, each copy brightened differently. Every one must be decoded,
    // flattened and resized before the encoder sees it.
    const size = 768;
    const pixels = Buffer.alloc(size * size * 3);
    for (let i = 0; i < pixels.length; i++) {
      const x = Math.floor(i / 3) % size;
      const y = Math.floor(i / 3 / size);
      pixels[i] = (((x >> 5) + (y >> 5) * 5) * 37 + (i % 3) * 80 + ((x * 7 + y * 13) & 15)) & 255;
    }
    const raw = { raw: { width: size, height: size, channels: 3 as const } };
    images = await Promise.all(
      Array.from({ length: 64 }, (_, k) =>
        sharp(pixels, raw).linear(1, k).jpeg({ quality: 90 }).toBuffer(),
      ),
    );
  });
  afterAll(() => server.stop('SIGKILL'));

  async function pollWhile<T>(work: Promise<T>, probe: () => Promise<unknown>) {
    let finished = false;
    const done = work.finally(() => (finished = true));
    const latencies: number[] = [];
    while (!finished) {
      const start = performance.now();
      await probe();
      latencies.push(performance.now() - start);
      await new Promise((r) => setTimeout(r, 10));
    }
    return { result: await done, latencies };
  }

  it('answers /healthz within 100 ms while a full multipart encode batch runs', async () => {
    const { body, type } = multipart(images);
    const encode = () =>
      httpRequest(
        server.httpPort,
        'POST',
        `/v1/models/${model}/encode`,
        { 'Content-Type': type },
        body,
      );
    // The first batch pays one-time costs (lazy compilation, libvips start-up): not timed.
    expect((await encode()).status).toBe(200);
    const { result, latencies } = await pollWhile(encode(), async () =>
      expect((await httpRequest(server.httpPort, 'GET', '/healthz', {})).status).toBe(200),
    );
    expect(result.status).toBe(200);
    expect(JSON.parse(result.body.toString()).latents.shape[0]).toBe(64);
    // The batch must have lasted long enough for the check to mean something.
    expect(latencies.length).toBeGreaterThanOrEqual(5);
    expect(Math.max(...latencies)).toBeLessThan(100);
  });

  it('answers grpc.health.v1 within 100 ms during a gRPC Encode batch', async () => {
    const address = `127.0.0.1:${server.grpcPort}`;
    const def = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS)) as any;
    const client = new def.dmvae.v1.Dmvae(address, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': 64 << 20,
      'grpc.max_receive_message_length': 64 << 20,
    });
    const healthDef = grpc.loadPackageDefinition(
      protoLoader.loadSync(healthProtoPath, { enums: String }),
    ) as any;
    const health = new healthDef.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
    expect((await call(health, 'check', { service: '' })).status).toBe('SERVING');
    await call(client, 'Encode', { model, images }); // warm-up, as above
    const { result, latencies } = await pollWhile(
      call(client, 'Encode', { model, images }),
      async () =>
        expect((await call(health, 'check', { service: 'dmvae.v1.Dmvae' })).status).toBe('SERVING'),
    );
    expect(result.latents.shape[0]).toBe('64');
    expect(latencies.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...latencies)).toBeLessThan(100);
    client.close();
    health.close();
  });
});
