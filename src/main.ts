import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, loadConfig, type Config } from './config';
import { createGrpcServer, bindGrpcServer } from './grpc/server';
import { createHttpServer } from './http/server';
import { RowBudget } from './inference/row-budget';
import { createLifecycle } from './lifecycle';
import { createLogger } from './logger';
import { Registry } from './models/registry';

/**
 * Entry point: config -> logger -> servers -> models. The servers listen before the models
 * load, so /healthz answers at once while /readyz (and grpc.health.v1) report not ready
 * until every model is loaded and warmed.
 *
 * SIGTERM/SIGINT: stop accepting, let requests finish for SHUTDOWN_TIMEOUT_MS, then cancel
 * the rest (they answer shutting_down), wait for ONNX runs in progress, release the sessions,
 * log "stopped" and exit 0.
 */

/** After cancelling, how long requests get to send their shutting_down answers. */
const CANCEL_GRACE_MS = 2000;

/** True when `work` settles within `ms`. */
function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  return Promise.race([work.then(() => true), late]).finally(() => clearTimeout(timer));
}

function listen(server: http.Server, config: Config): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve((server.address() as AddressInfo).port));
  });
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  const logger = createLogger({ level: config.logLevel });
  const registry = new Registry({ config, logger });
  const lifecycle = createLifecycle();
  // One budget for request bytes in memory, whichever transport brought them.
  const bodyBudget = new RowBudget(config.bodyQueueMaxBytes, 'BODY_QUEUE_MAX_BYTES', 'body bytes');
  const deps = { registry, config, logger, lifecycle, bodyBudget };

  const httpServer = createHttpServer(deps);
  const grpc = createGrpcServer(deps);

  let stopping = false;
  const shutdown = async (signal: string, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: draining requests');
    lifecycle.drain();
    grpc.markNotServing();
    const drained = Promise.all([
      new Promise<void>((resolve) => httpServer.close(() => resolve())),
      new Promise<void>((resolve) => grpc.server.tryShutdown(() => resolve())),
    ]);
    if (!(await within(drained, config.shutdownTimeoutMs))) {
      // Cooperative: generation stops between steps, queued batches are dropped, and each
      // request answers shutting_down; ONNX runs already going finish (see registry.close).
      logger.warn({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timeout: cancelling requests');
      lifecycle.cancelInFlight();
      if (!(await within(drained, CANCEL_GRACE_MS))) {
        logger.warn({ graceMs: CANCEL_GRACE_MS }, 'requests still open: closing connections');
        httpServer.closeAllConnections();
        grpc.server.forceShutdown();
      }
    }
    await registry.close();
    logger.info('stopped');
    process.exit(exitCode);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  try {
    const httpPort = await listen(httpServer, config);
    const grpcPort = await bindGrpcServer(grpc.server, `${config.host}:${config.grpcPort}`);
    logger.info({ httpPort, grpcPort, host: config.host }, 'listening');
  } catch (err) {
    // e.g. EADDRINUSE: say which port, as one structured line, and exit non-zero
    const ports = { port: config.port, grpcPort: config.grpcPort, host: config.host };
    logger.fatal({ err, ...ports }, 'cannot listen');
    await shutdown('startup-failure', 1);
    return;
  }
  // A bug that escapes every handler leaves the process in an unknown state: log it as one
  // structured line and exit, so the supervisor restarts a clean process.
  for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
    process.on(event, (err: unknown) => {
      logger.fatal({ err }, event);
      process.exit(1);
    });
  }

  try {
    await registry.load();
  } catch (err) {
    logger.fatal({ err }, 'model loading failed');
    await shutdown('startup-failure', 1);
    return;
  }
  grpc.updateHealth();
  logger.info({ models: registry.list().map((m) => m.name) }, 'ready');
}

main().catch((err) => {
  process.stderr.write(`fatal: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
