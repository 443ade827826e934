import type { NextFunction, Request, Response } from 'express';
import type { z } from 'zod';
import { ServiceError } from '../errors';

/**
 * Parses with a zod schema; on failure a 400 that lists every problem by field, so a typo in
 * a field name is reported rather than ignored (schemas here are strict).
 */
export function parseWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  where: string,
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => {
    const field = issue.path.join('.') || where;
    if (issue.code === 'unrecognized_keys') {
      return { field, message: `unknown field(s) ${issue.keys.join(', ')}` };
    }
    return { field, message: issue.message };
  });
  // a problem of the whole value (no field path) is said once, not as "query: query: ..."
  const text = issues.map((i) => (i.field === where ? i.message : `${i.field}: ${i.message}`));
  throw new ServiceError('invalid_request', `Invalid ${where}: ${text.join('; ')}`, { issues });
}

/** Merges an option given in the query and in the body; 400 if both say different things. */
export function mergeOption<T>(name: string, fromQuery: T | undefined, fromBody: T | undefined) {
  if (fromQuery !== undefined && fromBody !== undefined && fromQuery !== fromBody) {
    throw new ServiceError(
      'invalid_request',
      `${name} is given twice with different values: ${fromQuery} (query) and ${fromBody} (body)`,
      { field: name },
    );
  }
  return fromQuery ?? fromBody;
}

const REPEATED_WHAT = { query: 'Query parameter', 'form fields': 'Form field' } as const;

/**
 * Options from the query or from form fields, by a strict schema. Each option takes one value:
 * a repeated one ("?resize=pad&resize=stretch", two `resize` form fields) is refused rather
 * than one of the values picked. (A repeated unknown name is reported as unknown.)
 */
export function parseOptions<S extends z.ZodObject>(
  schema: S,
  values: Record<string, unknown>,
  where: keyof typeof REPEATED_WHAT,
): z.output<S> {
  for (const name of Object.keys(schema.shape)) {
    const value = values[name];
    if (Array.isArray(value)) {
      throw new ServiceError(
        'invalid_request',
        `${REPEATED_WHAT[where]} ${name} is given ${value.length} times; give it once`,
        { field: name, count: value.length },
      );
    }
  }
  return parseWith(schema, values, where);
}

/** Refuses any query parameter (400 naming them), as unknown JSON fields are refused. */
export function refuseQuery(req: Request, why = 'takes no query parameters'): void {
  const names = Object.keys(req.query);
  if (names.length === 0) return;
  throw new ServiceError(
    'invalid_request',
    `${req.method} ${req.baseUrl}${req.path} ${why}; got: ${names.join(', ')}`,
    { query: names },
  );
}

/** refuseQuery as middleware, for routes that take nothing but their path. */
export function noQuery(req: Request, _res: Response, next: NextFunction): void {
  refuseQuery(req);
  next();
}
