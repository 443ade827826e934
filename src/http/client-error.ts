import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { ServiceError } from '../errors';
import type { Logger } from '../logger';
import { problemType } from './problem';

/**
 * What Node's HTTP parser refuses before any route runs - malformed framing (a bad or doubled
 * Content-Length, Content-Length with Transfer-Encoding, a truncated chunked body), oversized
 * headers, an upload slower than REQUEST_TIMEOUT_MS - answered as problem+json like every
 * other error, instead of Node's bare status line. The connection is closed after it.
 */
export function clientErrorHandler(logger: Logger) {
  return function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const problem = problemOf(err);
    const body = JSON.stringify({
      type: problemType(problem.code),
      title: problem.title,
      status: problem.httpStatus,
      detail: problem.message,
      code: problem.code,
    });
    logger.info({ status: problem.httpStatus, code: problem.code, parser: err.code }, 'refused');
    socket.end(
      `HTTP/1.1 ${problem.httpStatus} ${STATUS_CODES[problem.httpStatus]}\r\n` +
        'Content-Type: application/problem+json\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
  };
}

function problemOf(err: Error & { code?: string }): ServiceError {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return new ServiceError(
      'request_timeout',
      'The request was not received completely within REQUEST_TIMEOUT_MS',
    );
  }
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    return new ServiceError(
      'headers_too_large',
      'Request headers are larger than the server takes',
    );
  }
  // llhttp's reason, e.g. "Invalid character in Content-Length"; never anything of ours
  const reason = (err as { reason?: unknown }).reason;
  const why = typeof reason === 'string' && reason ? reason : 'malformed HTTP request';
  return new ServiceError('invalid_request', `Malformed HTTP request: ${why}`);
}
