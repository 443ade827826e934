import type { NextFunction, Request, Response } from 'express';
import { clip, ServiceError, toServiceError } from '../errors';
import { stateOf } from './request-context';

/** RFC 9457 problem type for a catalog code; a URN, so nobody expects to dereference it. */
export function problemType(code: string): string {
  return `urn:dmvae:problem:${code}`;
}

/** Bounds on the detail fields that echo client input (unknown JSON keys, dtypes, names). */
const MAX_DETAIL_STRING = 256;
const MAX_DETAIL_ITEMS = 1000;

/** A copy of `value` with long strings cut and long arrays shortened, so a reply stays small. */
function bounded(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return clip(value, MAX_DETAIL_STRING);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 4) return '...';
  if (Array.isArray(value)) {
    const kept = value.slice(0, MAX_DETAIL_ITEMS).map((v) => bounded(v, depth + 1));
    const left = value.length - kept.length;
    return left > 0 ? [...kept, `... (${left} more)`] : kept;
  }
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [clip(k, MAX_DETAIL_STRING), bounded(v, depth + 1)]),
  );
}

/** The problem+json document for an error; internals of non-ServiceErrors never leak. */
export function problemDocument(err: ServiceError, req: Request, requestId: string) {
  return {
    ...(bounded(err.details) as Record<string, unknown>),
    type: problemType(err.code),
    title: err.title,
    status: err.httpStatus,
    detail: err.message,
    code: err.code,
    instance: clip(req.originalUrl.split('?')[0], MAX_DETAIL_STRING),
    requestId,
  };
}

export function sendProblem(req: Request, res: Response, err: ServiceError): void {
  const state = stateOf(res);
  state.errorCode = err.code;
  // Unread body bytes, or a server on its way out: the connection is not reused.
  if (err.code === 'body_too_large' || err.code === 'shutting_down') {
    res.setHeader('Connection', 'close');
  }
  // Load that passes (a full queue, models still loading): RFC 9110's hint for when to retry.
  if (err.code === 'queue_full' || err.code === 'not_ready') res.setHeader('Retry-After', '1');
  res
    .status(err.httpStatus)
    .type('application/problem+json')
    .send(JSON.stringify(problemDocument(err, req, state.id)));
}

/**
 * Errors the HTTP stack itself raises about the request, before our handlers run: express's
 * router throws a URIError (status 400) for a path like /v1/models/%E0%A4%A. They are the
 * client's, so they become 400 invalid_request naming the path, not 500s.
 */
function fromHttpStack(err: unknown, req: Request): ServiceError | undefined {
  const status = (err as { status?: unknown } | null)?.status;
  if (err instanceof URIError || status === 400) {
    return new ServiceError(
      'invalid_request',
      `Malformed request: ${err instanceof URIError ? 'bad percent-encoding in the path' : (err as Error).message}`,
      { path: req.originalUrl.split('?')[0].slice(0, 200) },
    );
  }
  return undefined;
}

/** Express error middleware: the one place where HTTP errors are shaped. */
export function handleError(err: unknown, req: Request, res: Response, next: NextFunction): void {
  const state = stateOf(res);
  const clientError = fromHttpStack(err, req);
  const serviceError = clientError ?? toServiceError(err);
  if (!(err instanceof ServiceError) && !clientError) state.log.error({ err }, 'unhandled error');
  if (res.headersSent) {
    // Too late for a status: cut the response so the client sees it incomplete.
    res.destroy();
    return;
  }
  sendProblem(req, res, serviceError);
  void next;
}

export function notFound(req: Request): never {
  throw new ServiceError('not_found', `No route for ${req.method} ${req.path}`, {
    method: req.method,
    path: req.path,
  });
}

/** For a known path hit with another method: 405 with the Allow header RFC 9110 asks for. */
export function methodNotAllowed(...allowed: string[]) {
  const allow = allowed.includes('GET') ? [...allowed, 'HEAD'] : allowed;
  return function rejectMethod(req: Request, res: Response): void {
    res.setHeader('Allow', allow.join(', '));
    throw new ServiceError('method_not_allowed', `${req.method} is not allowed on ${req.path}`, {
      method: req.method,
      allowed: allow,
    });
  };
}
