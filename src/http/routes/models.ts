import type { Request, Response } from 'express';
import { describeModel } from '../../api/model-info';
import { stateOf } from '../request-context';
import type { HttpDeps } from '../app';

/** GET /v1/models: every loaded model. */
export function listModelsRoute(deps: HttpDeps) {
  return function listModels(_req: Request, res: Response): void {
    res.json({ models: deps.registry.list().map(describeModel) });
  };
}

/** GET /v1/models/{model}: classes, shapes, sampler defaults and the providers really in use. */
export function getModelRoute(deps: HttpDeps) {
  return function getModel(req: Request, res: Response): void {
    const handle = deps.registry.get(String(req.params.model));
    stateOf(res).model = handle.name;
    res.json(describeModel(handle));
  };
}
