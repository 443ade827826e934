import type { Request, Response } from 'express';
import multer from 'multer';
import { ServiceError } from '../errors';
import type { RowBudget } from '../inference/row-budget';
import { jsonShapeProblem } from './json-keys';

/** The media type of the request without parameters, lower case; '' when absent. */
export function mediaTypeOf(req: Request): string {
  const header = req.get('content-type') ?? '';
  return header.split(';')[0].trim().toLowerCase();
}

/** Refuses a Content-Type the route does not take (415), naming the ones it does. */
export function requireMediaType(req: Request, accepted: string[]): string {
  const type = mediaTypeOf(req);
  const matches = (a: string) => (a.endsWith('/*') ? type.startsWith(a.slice(0, -1)) : a === type);
  const ok = accepted.some(matches);
  if (!ok) {
    throw new ServiceError(
      'unsupported_media_type',
      `Content-Type ${type || '(none)'} is not accepted here; send one of: ${accepted.join(', ')}`,
      { contentType: type || null, accepted },
    );
  }
  // RFC 8259: JSON between systems is UTF-8; another declared charset would be misread.
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(req.headers['content-type'] ?? '')?.[1];
  if (type === 'application/json' && charset && !/^utf-?8$/i.test(charset)) {
    throw new ServiceError(
      'unsupported_media_type',
      `Content-Type application/json with charset=${charset.slice(0, 40)} is not accepted; ` +
        'JSON must be UTF-8',
      { contentType: type, charset: charset.slice(0, 40) },
    );
  }
  return type;
}

/** One message whether the size was declared (Content-Length) or found out while reading. */
function tooLarge(limit: number, actual?: number): ServiceError {
  const size = actual === undefined ? `more than ${limit}` : `${actual}`;
  return new ServiceError(
    'body_too_large',
    `Request body is ${size} bytes; the limit is MAX_BODY_BYTES = ${limit} bytes`,
    { limit, ...(actual === undefined ? {} : { actual }) },
  );
}

/**
 * Reads the whole body, refusing more than `limit` bytes. On overflow the rest is drained,
 * not stored, so the client can finish sending and read the 413.
 *
 * With a `budget`, the bytes held count against it until the response is over (the body and
 * what is decoded from it live that long), and past the budget the request gets 503
 * queue_full, so many concurrent uploads cannot pile up in memory. Bytes are counted as they
 * arrive, not as declared: connections that declare a large Content-Length and then stall
 * would otherwise hold the whole budget with no memory behind it, locking everyone out.
 */
export function readBody(req: Request, limit: number, budget?: RowBudget): Promise<Buffer> {
  // Compressed bodies are not unpacked: read as they are they would be misparsed, or a
  // mislabelled body taken as it is; either way the client should hear it. Node's parser
  // undoes `chunked` itself but lets other transfer codings (gzip, chunked) through unapplied.
  const encoding = (req.get('content-encoding') ?? 'identity').trim().toLowerCase();
  const transfer = (req.get('transfer-encoding') ?? 'chunked').trim().toLowerCase();
  const coding =
    encoding !== 'identity' && encoding !== ''
      ? `Content-Encoding ${encoding.slice(0, 40)}`
      : transfer !== 'chunked'
        ? `Transfer-Encoding ${transfer.slice(0, 40)}`
        : undefined;
  if (coding) {
    req.resume();
    return Promise.reject(
      new ServiceError(
        'unsupported_media_type',
        `${coding} is not supported; send the body uncompressed`,
        { contentEncoding: coding.slice(coding.indexOf(' ') + 1) },
      ),
    );
  }
  const declared = Number(req.get('content-length'));
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.reject(tooLarge(limit, declared));
  }
  let held = 0;
  const hold = (bytes: number) => {
    budget?.acquire(bytes);
    if (held === 0) req.res?.once('close', () => budget?.release(held));
    held += bytes;
  };
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    const refuse = (err: unknown) => {
      failed = true;
      chunks.length = 0;
      req.resume();
      reject(err);
    };
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) return refuse(tooLarge(limit));
      try {
        hold(chunk.length);
      } catch (err) {
        return refuse(budgetRefusal(err, size, declared));
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks, size));
      failed = true;
    });
    // A client that goes away mid-upload ("aborted", ECONNRESET) cancelled its request; it is
    // not a server fault. 'close' without 'end' covers a stream that ends with no error event.
    const gone = () => {
      if (!failed) reject(new ServiceError('cancelled', 'Client closed the connection mid-upload'));
      failed = true;
    };
    req.on('error', gone);
    req.on('close', gone);
  });
}

/** queue_full from the body budget, reworded for the upload it stopped (not for one chunk). */
function budgetRefusal(err: unknown, received: number, declared: number): unknown {
  if (!(err instanceof ServiceError) || err.code !== 'queue_full') return err;
  const { limit, queued } = err.details as { limit: number; queued: number };
  const of = Number.isFinite(declared) ? ` of ${declared}` : '';
  return new ServiceError(
    'queue_full',
    `Server busy: request bodies in memory already hold ${queued} bytes, and this upload ` +
      `(${received} bytes${of} received) would pass BODY_QUEUE_MAX_BYTES = ${limit}; retry later`,
    { ...err.details, received },
  );
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
/** Deepest nesting any request needs is 3 ({"latents": {"shape": [...]}}); the rest is room. */
const MAX_JSON_DEPTH = 32;

/**
 * JSON.parse with a 400 that quotes the parser (which names the position), and a 400 for a
 * key given twice in one object (JSON.parse would keep the last one without a word).
 */
export function parseJson(body: Buffer): unknown {
  if (body.length === 0) throw new ServiceError('invalid_request', 'Empty body; expected JSON');
  let text: string;
  try {
    text = UTF8.decode(body); // a leading byte-order mark is dropped, as RFC 8259 allows
  } catch {
    throw new ServiceError('invalid_request', 'Malformed JSON: the body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ServiceError('invalid_request', `Malformed JSON: ${(err as Error).message}`);
  }
  const problem = jsonShapeProblem(text, MAX_JSON_DEPTH);
  if (problem?.tooDeep) {
    throw new ServiceError(
      'invalid_request',
      `JSON nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep; no field needs that`,
      { limit: MAX_JSON_DEPTH },
    );
  }
  const twice = problem?.duplicateKey;
  if (twice !== undefined) {
    throw new ServiceError(
      'invalid_request',
      `JSON key "${twice.slice(0, 100)}" is given twice in one object; give each field once`,
      { field: twice.slice(0, 100) },
    );
  }
  return value;
}

export interface MultipartBody {
  files: Buffer[];
  /** Text fields; a name given more than once holds every value, in order. */
  fields: Record<string, string | string[]>;
}

/**
 * Parses an already-read multipart body (so the byte limit is the one readBody applied) into
 * its file parts in order and its text fields.
 */
export function parseMultipart(
  req: Request,
  res: Response,
  body: Buffer,
  limits: { maxFiles: number; maxBytes: number; maxFields: number },
): Promise<MultipartBody> {
  const upload = multer({
    storage: multer.memoryStorage(),
    limits: {
      files: limits.maxFiles,
      fileSize: limits.maxBytes,
      fields: limits.maxFields,
      fieldSize: MAX_FIELD_BYTES,
      parts: limits.maxFiles + limits.maxFields,
    },
    streamHandler: (_req: unknown, busboy: NodeJS.WritableStream) => feedInSlices(body, busboy),
  } as multer.Options).any();

  return new Promise((resolve, reject) => {
    upload(req, res, (err?: unknown) => {
      if (err) return reject(multipartError(err, limits));
      const files = ((req.files as Express.Multer.File[] | undefined) ?? []).map((f) => f.buffer);
      const fields: MultipartBody['fields'] = {};
      for (const [key, value] of Object.entries((req.body ?? {}) as Record<string, unknown>)) {
        // A name given twice comes as an array (the route's options refuse it, naming it).
        const values: unknown[] = Array.isArray(value) ? value : [value];
        if (!values.every((v) => typeof v === 'string')) {
          // multer reads "a[b]" as nesting; option names are plain words.
          const message = `Form field ${key} must be text under a plain name`;
          return reject(new ServiceError('invalid_request', message, { field: key }));
        }
        fields[key] = value as string | string[];
      }
      resolve({ files, fields });
    });
  });
}

// busboy parses synchronously whatever it is handed: a 16 MB body in one write would hold the
// event loop (and /healthz) for tens of milliseconds, so it gets 256 KiB per turn instead.
const SLICE_BYTES = 256 * 1024;

function feedInSlices(body: Buffer, sink: NodeJS.WritableStream): void {
  let offset = 0;
  const next = () => {
    if (offset >= body.length) {
      sink.end();
      return;
    }
    const slice = body.subarray(offset, offset + SLICE_BYTES);
    offset += slice.length;
    // 'drain' arrives on process.nextTick, which would chain every slice into one long tick:
    // go back to the event loop after each slice either way.
    if (sink.write(slice)) setImmediate(next);
    else sink.once('drain', () => setImmediate(next));
  };
  next();
}

const MAX_FIELD_BYTES = 1024;

/** multer's limit errors, each named with its limit; anything else is a malformed body. */
function multipartError(err: unknown, limits: { maxFiles: number; maxFields: number }) {
  if (err instanceof ServiceError) return err;
  const code = err instanceof multer.MulterError ? err.code : undefined;
  const { maxFiles, maxFields } = limits;
  switch (code) {
    case 'LIMIT_FILE_COUNT':
      return new ServiceError(
        'too_many_items',
        `More than MAX_IMAGES_PER_REQUEST = ${maxFiles} images in one request`,
        { limit: maxFiles },
      );
    case 'LIMIT_PART_COUNT':
      return new ServiceError(
        'too_many_items',
        `More than ${maxFiles + maxFields} parts in one form (${maxFiles} images, ` +
          `MAX_IMAGES_PER_REQUEST, and ${maxFields} option fields)`,
        { limit: maxFiles + maxFields },
      );
    case 'LIMIT_FILE_SIZE':
      return new ServiceError(
        'body_too_large',
        `Malformed multipart body: ${(err as Error).message}`,
      );
    case 'LIMIT_FIELD_COUNT':
      return new ServiceError(
        'invalid_request',
        `More than ${maxFields} text fields in the form: only options are text fields ` +
          '(images go in file parts)',
        { limit: maxFields },
      );
    case 'LIMIT_FIELD_VALUE':
      return new ServiceError(
        'invalid_request',
        `A form field value is longer than ${MAX_FIELD_BYTES} bytes (options are short words)`,
        { limit: MAX_FIELD_BYTES },
      );
  }
  return new ServiceError('invalid_request', `Malformed multipart body: ${(err as Error).message}`);
}
