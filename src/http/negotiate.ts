import type { Request } from 'express';
import { ServiceError } from '../errors';

/**
 * Picks the best of `offered` for the request's Accept header (the first one when the client
 * states no preference); 406 naming what can be produced when none is acceptable.
 */
export function negotiate<T extends string>(req: Request, offered: readonly T[]): T {
  const chosen = req.accepts(offered as unknown as string[]);
  if (!chosen) {
    throw new ServiceError(
      'not_acceptable',
      `Cannot produce any of Accept: ${req.get('accept')}; ` +
        `this route can send ${offered.join(', ')}`,
      { accept: req.get('accept') ?? null, available: offered },
    );
  }
  return chosen as T;
}
