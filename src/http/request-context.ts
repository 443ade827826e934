import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { requestIdOf } from '../api/request-id';
import { ERROR_CATALOG, logLevelOf, ServiceError, type ErrorCode } from '../errors';
import { requestAborter, type Lifecycle } from '../lifecycle';

/** What one request carries through the handlers: its id, logger, and cancellation. */
export interface RequestState {
  id: string;
  log: Logger;
  /** Aborts when the client goes away before the reply is complete, or at shutdown. */
  signal: AbortSignal;
  /** Set when the connection closed before the reply was complete. */
  clientGone?: boolean;
  /** Filled in by handlers for the access log line. */
  model?: string;
  images?: number;
  errorCode?: ErrorCode;
}

export function stateOf(res: Response): RequestState {
  return res.locals.state as RequestState;
}

/**
 * Gives each request an id (a safe incoming X-Request-Id, or a fresh UUID), a child logger,
 * and an AbortSignal; writes one structured line when the response is done or abandoned.
 */
export function requestContext(logger: Logger, lifecycle?: Lifecycle) {
  return function attachRequestState(req: Request, res: Response, next: NextFunction): void {
    const id = requestIdOf(req.get('x-request-id'));
    const { controller: aborter, release } = requestAborter(lifecycle);
    const signal = aborter.signal;
    const state: RequestState = { id, log: logger.child({ reqId: id }), signal };
    res.locals.state = state;
    res.setHeader('X-Request-Id', id);
    const started = process.hrtime.bigint();

    res.on('close', function logRequest() {
      const aborted = !res.writableFinished;
      if (aborted) {
        state.clientGone = true;
        aborter.abort(new ServiceError('cancelled', 'Client closed the connection'));
      }
      release();
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      // A client gone before any reply (mid-upload, mid-generation) is nginx's 499, not a 200.
      const unanswered = aborted && !res.headersSent;
      const status = unanswered ? ERROR_CATALOG.cancelled.http : res.statusCode;
      const code = state.errorCode ?? (aborted ? 'cancelled' : undefined);
      const line = {
        method: req.method,
        path: req.path,
        status,
        durationMs: Math.round(durationMs * 10) / 10,
        model: state.model,
        images: state.images,
        code,
        aborted: aborted || undefined,
      };
      state.log[logLevelOf(code, status)](line, 'request');
    });
    next();
  };
}
