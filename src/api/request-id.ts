import { randomUUID } from 'node:crypto';

// Incoming ids end up in logs and headers: accept only short, plain tokens.
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The id of a request or call: the client's X-Request-Id (header or gRPC metadata) when it is
 * 1 to 128 of `A-Za-z0-9._:-`, else a fresh UUID.
 * @example requestIdOf(req.get('x-request-id'))
 */
export function requestIdOf(incoming: unknown): string {
  return typeof incoming === 'string' && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}
