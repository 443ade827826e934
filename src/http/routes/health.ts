import type { Request, Response } from 'express';
import { ServiceError } from '../../errors';
import type { HttpDeps } from '../app';

/** GET /healthz: liveness. Answers from the event loop alone, so it stays fast under load. */
export function healthz(_req: Request, res: Response): void {
  res.json({ status: 'ok' });
}

/** GET /readyz: 200 once every model is loaded and warmed, 503 not_ready before. */
export function readyzRoute(deps: HttpDeps) {
  return function readyz(_req: Request, res: Response): void {
    if (!deps.registry.isReady()) {
      throw new ServiceError('not_ready', 'Models are still loading or warming up');
    }
    res.json({ status: 'ready', models: deps.registry.list().map((m) => m.name) });
  };
}
