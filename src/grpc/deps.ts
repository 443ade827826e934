import type { Config } from '../config';
import { ServiceError } from '../errors';
import type { Lifecycle } from '../lifecycle';
import type { Logger } from '../logger';
import type { ModelHandle, ModelRegistry } from '../types';
import type { CallState } from './call-context';

export interface GrpcDeps {
  registry: ModelRegistry;
  config: Config;
  logger: Logger;
  lifecycle?: Lifecycle;
}

/** Model lookup shared by every RPC: not_ready before load, model_not_found naming known ones. */
export function modelFor(deps: GrpcDeps, name: string | undefined, state: CallState): ModelHandle {
  if (!deps.registry.isReady()) throw new ServiceError('not_ready', 'Models are still loading');
  const handle = deps.registry.get(name ?? '');
  state.model = handle.name;
  return handle;
}
