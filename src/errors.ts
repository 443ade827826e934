import { status as GrpcStatus } from '@grpc/grpc-js';

/**
 * Every error a client can see, with its HTTP and gRPC status side by side.
 * Codes are stable: clients match on them, so never rename one.
 * Add a row here rather than picking a status at the throw site.
 */
export const ERROR_CATALOG = {
  // request shape
  invalid_request: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, title: 'Invalid request' },
  invalid_base64: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, title: 'Invalid base64' },
  empty_image: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, title: 'Empty image' },
  invalid_latent: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, title: 'Invalid latent tensor' },
  unsupported_dtype: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, title: 'Unsupported dtype' },
  invalid_class: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, title: 'Invalid class label' },
  // media
  unsupported_media_type: { http: 415, grpc: GrpcStatus.INVALID_ARGUMENT, title: 'Unsupported media type' },
  unsupported_image_format: { http: 415, grpc: GrpcStatus.INVALID_ARGUMENT, title: 'Unsupported or unrecognised image format' },
  not_acceptable: { http: 406, grpc: GrpcStatus.INVALID_ARGUMENT, title: 'Not acceptable' },
  corrupt_image: { http: 422, grpc: GrpcStatus.INVALID_ARGUMENT, title: 'Corrupt or truncated image' },
  image_geometry: { http: 422, grpc: GrpcStatus.INVALID_ARGUMENT, title: 'Image size or aspect ratio not accepted' },
  // limits
  image_too_large: { http: 413, grpc: GrpcStatus.INVALID_ARGUMENT, title: 'Image has too many pixels' },
  body_too_large: { http: 413, grpc: GrpcStatus.RESOURCE_EXHAUSTED, title: 'Request body too large' },
  too_many_items: { http: 413, grpc: GrpcStatus.INVALID_ARGUMENT, title: 'Too many images or latents in one request' },
  limit_exceeded: { http: 422, grpc: GrpcStatus.INVALID_ARGUMENT, title: 'A parameter is over its limit' },
  generation_diverged: { http: 422, grpc: GrpcStatus.INVALID_ARGUMENT, title: 'Sampling diverged with these parameters' },
  // routing and load
  model_not_found: { http: 404, grpc: GrpcStatus.NOT_FOUND, title: 'Model not found' },
  not_found: { http: 404, grpc: GrpcStatus.NOT_FOUND, title: 'Not found' },
  method_not_allowed: { http: 405, grpc: GrpcStatus.UNIMPLEMENTED, title: 'Method not allowed' },
  queue_full: { http: 503, grpc: GrpcStatus.RESOURCE_EXHAUSTED, title: 'Server busy: queue full' },
  generation_timeout: { http: 503, grpc: GrpcStatus.DEADLINE_EXCEEDED, title: 'Generation ran past its time limit' },
  not_ready: { http: 503, grpc: GrpcStatus.UNAVAILABLE, title: 'Models not loaded yet' },
  shutting_down: { http: 503, grpc: GrpcStatus.UNAVAILABLE, title: 'Server is shutting down' },
  cancelled: { http: 499, grpc: GrpcStatus.CANCELLED, title: 'Request cancelled by the client' },
  // refused by Node's HTTP parser before a route runs (http/client-error.ts)
  request_timeout: { http: 408, grpc: GrpcStatus.DEADLINE_EXCEEDED, title: 'Request not received in time' },
  headers_too_large: { http: 431, grpc: GrpcStatus.INVALID_ARGUMENT, title: 'Request headers too large' },
  // ours
  inference_failed: { http: 500, grpc: GrpcStatus.INTERNAL, title: 'Inference failed' },
  internal: { http: 500, grpc: GrpcStatus.INTERNAL, title: 'Internal error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export type LogLevel = 'info' | 'warn' | 'error';

/**
 * The level of a request's log line, by how it ended: our own faults are errors; load
 * shedding (queue_full, generation_timeout) and diverged sampling are warnings for operators;
 * the rest - client mistakes, cancelled calls, not_ready while loading, shutting_down - info,
 * since they are expected.
 */
const WARN_CODES: readonly ErrorCode[] = ['queue_full', 'generation_timeout', 'generation_diverged'];

export function logLevelOf(code: ErrorCode | undefined, status = 200): LogLevel {
  if (code === undefined) return status >= 500 ? 'error' : 'info';
  if (code === 'internal' || code === 'inference_failed') return 'error';
  // A diverged generation is the client's parameters or a weak model: operators should see it.
  return WARN_CODES.includes(code) ? 'warn' : 'info';
}

/**
 * Longest message a client gets back. Messages quote client input (a model name, a dtype, a
 * JSON key); unbounded, a 100 KB name became a gRPC trailer larger than the peer's header
 * limit, and the call never completed.
 */
export const MAX_MESSAGE_CHARS = 2000;

/** `text` cut to `max` characters, saying how much was left out. */
export function clip(text: string, max: number): string {
  // Well-formed either way: a lone surrogate (cut out of a pair, or sent as a JSON "\ud83d")
  // makes grpc-js's encodeURI of the status throw, and strict JSON parsers refuse it.
  if (text.length <= max) return text.toWellFormed();
  const cut = /[\ud800-\udbff]/.test(text[max - 1]) ? max - 1 : max; // not inside a pair
  return `${text.slice(0, cut).toWellFormed()}... (${text.length - cut} more characters)`;
}

/** The one error type the service throws on purpose; transports map it via ERROR_CATALOG. */
export class ServiceError extends Error {
  readonly code: ErrorCode;
  /** Extra machine-readable fields, e.g. { limit: 4194304, actual: 5000000 }. */
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(clip(message, MAX_MESSAGE_CHARS));
    this.name = 'ServiceError';
    this.code = code;
    this.details = details;
  }

  get httpStatus(): number {
    return ERROR_CATALOG[this.code].http;
  }

  get grpcStatus(): number {
    return ERROR_CATALOG[this.code].grpc;
  }

  get title(): string {
    return ERROR_CATALOG[this.code].title;
  }
}

/** Anything not thrown as a ServiceError is our fault: 500 / INTERNAL, message kept out of replies. */
export function toServiceError(err: unknown): ServiceError {
  if (err instanceof ServiceError) return err;
  return new ServiceError('internal', 'Internal error', {});
}

/**
 * What an aborted AbortSignal means for the request: its reason when that is a ServiceError
 * (the client went away: cancelled; the server is stopping: shutting_down), else cancelled.
 */
export function abortError(signal: AbortSignal | undefined, what: string): ServiceError {
  const reason: unknown = signal?.reason;
  if (reason instanceof ServiceError) return reason;
  return new ServiceError('cancelled', `${what} cancelled`);
}
