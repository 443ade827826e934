import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig, type Config } from '../../src/config';
import { createHttpApp } from '../../src/http/app';
import { createLogger } from '../../src/logger';
import { loadRegistry, type Registry } from '../../src/models/registry';
import { startGrpc } from '../grpc/client';

/**
 * The real service for end-to-end tests: the shipped model(s) under models/ loaded through the
 * registry (classifier included, for the class check), the HTTP app on a real socket and the
 * gRPC server, both on port 0. TEST_MODELS_DIR points elsewhere (as in test/models/).
 */

export const REPO = path.resolve(__dirname, '..', '..');
export const MODELS_DIR = process.env.TEST_MODELS_DIR ?? path.join(REPO, 'models');
export { CASES_DIR } from '../cases-dir';

/** The first model folder; fails loudly when the pipeline has not exported one yet. */
export function shippedModelName(): string {
  const names = fs.existsSync(MODELS_DIR) ? fs.readdirSync(MODELS_DIR).sort() : [];
  const name = names.find((n) => fs.existsSync(path.join(MODELS_DIR, n, 'manifest.json')));
  if (!name) throw new Error(`e2e: no model folder with manifest.json under ${MODELS_DIR}`);
  return name;
}

export interface Service {
  config: Config;
  registry: Registry;
  model: string;
  app: ReturnType<typeof createHttpApp>;
  baseUrl: string;
  grpc: Awaited<ReturnType<typeof startGrpc>>;
  logLines: Record<string, unknown>[];
  close(): Promise<void>;
}

export async function startService(env: Record<string, string> = {}): Promise<Service> {
  const config = loadConfig(
    { MODELS_DIR, LOG_LEVEL: 'info', ORT_INTRA_OP_THREADS: '1', PORT: '0', GRPC_PORT: '0', ...env },
    [],
  );
  const logLines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
      done();
    },
  });
  const logger = createLogger({ level: 'info', destination });
  const registry = await loadRegistry({ config, logger, withClassifier: true });
  const deps = { registry, config, logger };
  const app = createHttpApp(deps);
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const grpc = await startGrpc(deps);
  grpc.service.updateHealth();
  return {
    config,
    registry,
    model: shippedModelName(),
    app,
    baseUrl,
    grpc,
    logLines,
    async close() {
      await grpc.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await registry.close();
    },
  };
}
