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
  const text = issues.map((i) => `${i.field}: ${i.message}`).join('; ');
  throw new ServiceError('invalid_request', `Invalid ${where}: ${text}`, { issues });
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
