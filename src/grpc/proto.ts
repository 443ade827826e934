import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** proto/ sits at the repository root, two levels above both src/grpc and dist/grpc. */
export const PROTO_DIR = path.join(__dirname, '..', '..', 'proto');
export const PROTO_FILE = 'dmvae/v1/dmvae.proto';
export const SERVICE_NAME = 'dmvae.v1.Dmvae';

/**
 * How messages appear in JS: camelCase fields, enums as their names, 64-bit integers as
 * decimal strings (a seed may use all 53 bits, and an out-of-range class id must reach our
 * validation intact rather than wrap), unset scalars undefined so "unset" means "default".
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: false,
  arrays: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

/**
 * Stands in for a request whose bytes are not a valid protobuf message. grpc-js answers a
 * deserializer's exception with INTERNAL, as if the fault were ours; the handlers turn this
 * marker into INVALID_ARGUMENT instead (see requestOf).
 */
export class UnreadableRequest {
  constructor(readonly reason: string) {}
}

export function loadDmvaeService(): grpc.ServiceDefinition {
  const definition = protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    dmvae: { v1: { Dmvae: grpc.ServiceClientConstructor } };
  };
  const service = pkg.dmvae.v1.Dmvae.service;
  for (const method of Object.values(service)) {
    const deserialize = method.requestDeserialize;
    method.requestDeserialize = function readRequest(bytes: Buffer) {
      try {
        return deserialize(bytes);
      } catch (err) {
        return new UnreadableRequest(err instanceof Error ? err.message : String(err));
      }
    };
  }
  return service;
}
