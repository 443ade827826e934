import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { GrpcDeps } from './deps';
import { dmvaeHandlers } from './handlers';
import { loadDmvaeService, SERVICE_NAME } from './proto';

export type { GrpcDeps } from './deps';

export interface GrpcService {
  server: grpc.Server;
  health: HealthImplementation;
  /** Sets grpc.health.v1 to SERVING or NOT_SERVING from registry.isReady(). */
  updateHealth(): void;
  /** For shutdown: NOT_SERVING on both the server ('') and the service name. */
  markNotServing(): void;
}

/**
 * The gRPC server with dmvae.v1.Dmvae and grpc.health.v1.Health, not yet bound to a port.
 * @example
 *   const { server } = createGrpcServer(deps);
 *   await bindGrpcServer(server, '0.0.0.0:50051');
 */
export function createGrpcServer(deps: GrpcDeps): GrpcService {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': deps.config.maxBodyBytes,
    // Replies can be bigger than requests (images out for latents in): cap them at 4x.
    'grpc.max_send_message_length': deps.config.maxBodyBytes * 4,
  });
  server.addService(loadDmvaeService(), dmvaeHandlers(deps));
  const health = new HealthImplementation({ '': 'NOT_SERVING', [SERVICE_NAME]: 'NOT_SERVING' });
  health.addToServer(server);

  const setAll = (status: 'SERVING' | 'NOT_SERVING') => {
    health.setStatus('', status);
    health.setStatus(SERVICE_NAME, status);
  };
  const updateHealth = () => setAll(deps.registry.isReady() ? 'SERVING' : 'NOT_SERVING');
  updateHealth();
  return { server, health, updateHealth, markNotServing: () => setAll('NOT_SERVING') };
}

/** Binds without TLS (put TLS in front, at the proxy); resolves with the real port. */
export function bindGrpcServer(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    );
  });
}
