import { readFileSync } from 'node:fs';
import path from 'node:path';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Config } from '../config';
import { ServiceError } from '../errors';
import { RowBudget } from '../inference/row-budget';
import { shuttingDown, type Lifecycle } from '../lifecycle';
import type { Logger } from '../logger';
import type { ModelRegistry } from '../types';
import { handleError, methodNotAllowed, notFound } from './problem';
import { requestContext } from './request-context';
import { decodeRoute } from './routes/decode';
import { encodeRoute } from './routes/encode';
import { generateRoute } from './routes/generate';
import { healthz, readyzRoute } from './routes/health';
import { getModelRoute, listModelsRoute } from './routes/models';
import { noQuery } from './validate';

export interface HttpDeps {
  registry: ModelRegistry;
  config: Config;
  logger: Logger;
  /** Shutdown state (main.ts); without it requests only stop when their client goes away. */
  lifecycle?: Lifecycle;
  /** Request-body bytes in memory, all requests together; made from the config when absent. */
  bodyBudget?: RowBudget;
}

/** openapi.yaml sits at the repository root, two levels above both src/http and dist/http. */
export const OPENAPI_PATH = path.join(__dirname, '..', '..', 'openapi.yaml');

/**
 * The HTTP API as an express app, without a listening socket, so tests can drive it
 * in-process (supertest) and main.ts can mount it on a server.
 * @example
 *   const app = createHttpApp({ registry, config, logger });
 *   http.createServer(app).listen(8080);
 */
export function createHttpApp(given: HttpDeps): Express {
  const deps: HttpDeps = {
    ...given,
    bodyBudget:
      given.bodyBudget ??
      new RowBudget(given.config.bodyQueueMaxBytes, 'BODY_QUEUE_MAX_BYTES', 'body bytes'),
  };
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestContext(deps.logger, deps.lifecycle));
  // Once shutdown starts, requests arriving on kept-alive connections are refused; liveness
  // still answers, since the process is alive until it exits.
  app.use(function refuseWhileDraining(req: Request, _res: Response, next: NextFunction) {
    if (deps.lifecycle?.draining && req.path !== '/healthz') throw shuttingDown();
    next();
  });

  const openapi = readFileSync(OPENAPI_PATH);
  app
    .route('/openapi.yaml')
    .get(noQuery, (_req, res) => void res.type('application/yaml').send(openapi))
    .all(methodNotAllowed('GET'));
  // GET routes take nothing but their path: a query parameter is a mistake worth saying.
  app.route('/healthz').get(noQuery, healthz).all(methodNotAllowed('GET'));
  app.route('/readyz').get(noQuery, readyzRoute(deps)).all(methodNotAllowed('GET'));

  // Model routes need loaded models; until then 503 not_ready, like /readyz.
  app.use('/v1/models', function requireReady(_req: Request, _res: Response, next: NextFunction) {
    if (!deps.registry.isReady()) throw new ServiceError('not_ready', 'Models are still loading');
    next();
  });
  app.route('/v1/models').get(noQuery, listModelsRoute(deps)).all(methodNotAllowed('GET'));
  app.route('/v1/models/:model').get(noQuery, getModelRoute(deps)).all(methodNotAllowed('GET'));
  app.route('/v1/models/:model/encode').post(encodeRoute(deps)).all(methodNotAllowed('POST'));
  app.route('/v1/models/:model/decode').post(decodeRoute(deps)).all(methodNotAllowed('POST'));
  app.route('/v1/models/:model/generate').post(generateRoute(deps)).all(methodNotAllowed('POST'));

  app.use(notFound);
  app.use(handleError);
  return app;
}
