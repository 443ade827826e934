import { ServiceError } from './errors';

/**
 * Shutdown as request handlers see it, in two phases. Draining: new requests are refused with
 * shutting_down while those in flight carry on. Cancelling (when SHUTDOWN_TIMEOUT_MS has
 * passed): `signal` aborts, so every request still running stops at its next step or batch
 * boundary and answers shutting_down; ONNX Runtime calls already running finish on their own.
 */
export interface Lifecycle {
  readonly draining: boolean;
  /** Aborted, with a shutting_down ServiceError as its reason, when requests must stop. */
  readonly signal: AbortSignal;
}

export interface LifecycleControl extends Lifecycle {
  drain(): void;
  cancelInFlight(): void;
}

/** @example const life = createLifecycle(); life.drain(); ...; life.cancelInFlight(); */
export function createLifecycle(): LifecycleControl {
  const aborter = new AbortController();
  let draining = false;
  return {
    get draining() {
      return draining;
    },
    signal: aborter.signal,
    drain() {
      draining = true;
    },
    cancelInFlight() {
      draining = true;
      aborter.abort(shuttingDown('the request was stopped'));
    },
  };
}

export function shuttingDown(what = 'no new requests are taken'): ServiceError {
  return new ServiceError('shutting_down', `Server is shutting down: ${what}; retry elsewhere`);
}

/** One signal for a request: its own (client gone, deadline) or the server's shutdown. */
export function requestSignal(own: AbortSignal, lifecycle?: Lifecycle): AbortSignal {
  return lifecycle ? AbortSignal.any([own, lifecycle.signal]) : own;
}
