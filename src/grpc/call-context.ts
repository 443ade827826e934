import * as grpc from '@grpc/grpc-js';
import { requestIdOf } from '../api/request-id';
import { logLevelOf, ServiceError, toServiceError, type ErrorCode } from '../errors';
import { requestAborter, type Lifecycle } from '../lifecycle';
import type { Logger } from '../logger';
import { SERVICE_NAME, UnreadableRequest } from './proto';

/** Per-call state, the gRPC twin of http/request-context. */
export interface CallState {
  id: string;
  log: Logger;
  /** Aborts on client cancellation, when the call's deadline passes, or at shutdown. */
  signal: AbortSignal;
  model?: string;
  images?: number;
}

type AnyCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>;

export interface CallContext {
  state: CallState;
  /** Logs the call's one line and releases its timer; returns the status to send. */
  finish(err?: unknown): grpc.StatusObject;
}

/** What a call needs from the server: the logger and, when running in main.ts, shutdown. */
export interface CallEnv {
  logger: Logger;
  lifecycle?: Lifecycle;
}

/** Starts a call: id (safe x-request-id metadata or a UUID), child logger, abort signal. */
export function startCall(call: AnyCall, rpc: string, { logger, lifecycle }: CallEnv): CallContext {
  const id = requestIdOf(call.metadata.get('x-request-id')[0]);
  const { controller: aborter, release } = requestAborter(lifecycle);
  const signal = aborter.signal;
  const state: CallState = { id, log: logger.child({ reqId: id }), signal };
  const started = process.hrtime.bigint();

  call.on('cancelled', () =>
    aborter.abort(new ServiceError('cancelled', 'Client cancelled the call')),
  );
  const deadline = call.getDeadline();
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : Number(deadline);
  let timer: NodeJS.Timeout | undefined;
  if (Number.isFinite(deadlineMs)) {
    const abortAtDeadline = () => aborter.abort(new ServiceError('cancelled', 'Deadline exceeded'));
    timer = setTimeout(abortAtDeadline, Math.max(0, deadlineMs - Date.now()));
  }

  function finish(err?: unknown): grpc.StatusObject {
    clearTimeout(timer);
    release();
    const metadata = new grpc.Metadata();
    metadata.set('x-request-id', id);
    let status: grpc.StatusObject = { code: grpc.status.OK, details: 'OK', metadata };
    let code: ErrorCode | undefined;
    if (err !== undefined) {
      if (!(err instanceof ServiceError)) state.log.error({ err }, 'unhandled error');
      const e = toServiceError(err);
      code = e.code;
      metadata.set('error-code', e.code);
      status = { code: e.grpcStatus, details: e.message, metadata };
    }
    const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
    const line = {
      rpc,
      grpcStatus: status.code,
      durationMs: Math.round(durationMs * 10) / 10,
      model: state.model,
      images: state.images,
      code,
      aborted: signal.aborted || undefined,
    };
    state.log[logLevelOf(code)](line, 'rpc');
    return status;
  }
  return { state, finish };
}

/** The call's request message; invalid_request (INVALID_ARGUMENT) when its bytes were not one. */
export function requestOf<Req>(call: { request: Req }, rpc: string): Req {
  const request: unknown = call.request;
  if (request instanceof UnreadableRequest) {
    throw new ServiceError(
      'invalid_request',
      `request is not a valid ${SERVICE_NAME}.${rpc} protobuf message: ${request.reason}`,
    );
  }
  return call.request;
}

/**
 * Wraps an async unary handler: exactly one callback, with the catalog status on failure.
 * (Returning right after the error callback avoids the double-callback bug.)
 */
export function unary<Req, Res>(
  rpc: string,
  env: CallEnv,
  run: (request: Req, state: CallState) => Promise<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return function handleUnary(call, callback) {
    const ctx = startCall(call as AnyCall, rpc, env);
    Promise.resolve()
      .then(() => run(requestOf(call, rpc), ctx.state))
      .then(
        (reply) => {
          const status = ctx.finish();
          callback(null, reply, status.metadata);
        },
        (err: unknown) => {
          callback(ctx.finish(err));
        },
      );
  };
}
