import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { GrpcDeps } from '../../src/grpc/deps';
import { bindGrpcServer, createGrpcServer, type GrpcService } from '../../src/grpc/server';
import { LOADER_OPTIONS, PROTO_FILE } from '../../src/grpc/proto';

/** A server on 127.0.0.1:0 with clients for dmvae.v1.Dmvae and grpc.health.v1.Health. */
export async function startGrpc(deps: GrpcDeps) {
  const service: GrpcService = createGrpcServer(deps);
  const port = await bindGrpcServer(service.server, '127.0.0.1:0');
  const address = `127.0.0.1:${port}`;
  const def = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS)) as any;
  const clientOptions = {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  };
  const client = new def.dmvae.v1.Dmvae(address, grpc.credentials.createInsecure(), clientOptions);
  const healthDef = grpc.loadPackageDefinition(
    protoLoader.loadSync(healthProtoPath, { enums: String }),
  ) as any;
  const health = new healthDef.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
  return {
    service,
    client,
    health,
    async close() {
      client.close();
      health.close();
      await new Promise<void>((r) => service.server.tryShutdown(() => r()));
    },
  };
}

/** Promise form of a unary call; rejects with the ServiceError-like grpc error. */
export function call<T = any>(
  client: any,
  method: string,
  request: object,
  options: grpc.CallOptions = {},
  metadata = new grpc.Metadata(),
): Promise<T> {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, options, (err: grpc.ServiceError | null, reply: T) =>
      err ? reject(err) : resolve(reply),
    );
  });
}

/** Collects every message of a server stream, and the final status. */
export function collect(
  stream: grpc.ClientReadableStream<any>,
): Promise<{ messages: any[]; error?: grpc.ServiceError }> {
  const messages: any[] = [];
  return new Promise((resolve) => {
    stream.on('data', (m) => messages.push(m));
    stream.on('error', (error: grpc.ServiceError) => resolve({ messages, error }));
    stream.on('end', () => resolve({ messages }));
  });
}
