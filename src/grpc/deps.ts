import type { Config } from '../config';
import { ServiceError } from '../errors';
import type { RowBudget } from '../inference/row-budget';
import type { Lifecycle } from '../lifecycle';
import type { Logger } from '../logger';
import type { ModelHandle, ModelRegistry } from '../types';
import type { CallState } from './call-context';

export interface GrpcDeps {
  registry: ModelRegistry;
  config: Config;
  logger: Logger;
  lifecycle?: Lifecycle;
  /** Request bytes in memory, shared with HTTP in main.ts (BODY_QUEUE_MAX_BYTES). */
  bodyBudget?: RowBudget;
}

/**
 * Counts a call's payload against the body budget until the returned release runs: grpc-js
 * has read the message already, but what is decoded from it is bounded from here on.
 */
export function holdPayload(deps: GrpcDeps, bytes: number): () => void {
  const budget = deps.bodyBudget;
  if (!budget || bytes === 0) return () => undefined;
  budget.acquire(bytes);
  return () => budget.release(bytes);
}

/** Model lookup shared by every RPC: not_ready before load, model_not_found naming known ones. */
export function modelFor(deps: GrpcDeps, name: string | undefined, state: CallState): ModelHandle {
  if (!deps.registry.isReady()) throw new ServiceError('not_ready', 'Models are still loading');
  const handle = deps.registry.get(name ?? '');
  state.model = handle.name;
  return handle;
}
