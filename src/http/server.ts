import http from 'node:http';
import { createHttpApp, type HttpDeps } from './app';
import { clientErrorHandler } from './client-error';

/**
 * The HTTP server around the express app, with the socket-level behaviour the service relies
 * on. main.ts and the socket tests both build it here, so the tests see what production runs.
 */
export function createHttpServer(deps: HttpDeps): http.Server {
  // Given at creation (Node reads them there), and checked every second rather than Node's 30 s,
  // so a stalled upload is refused close to REQUEST_TIMEOUT_MS, not up to 30 s after it.
  const server = http.createServer(
    { requestTimeout: deps.config.requestTimeoutMs, connectionsCheckingInterval: 1000 },
    createHttpApp(deps),
  );
  // A client that shuts down its sending side (FIN) is taken as gone, Node's default: a FIN
  // cannot be told from a client that quit, and cancelling a gone client's generation matters
  // more than answering the rare client that half-closes after its request (RFC 9112 9.6).
  server.on('clientError', clientErrorHandler(deps.logger));
  return server;
}
