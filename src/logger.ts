import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level?: string;
  /** Where JSON lines go; stdout by default. Tests pass a stream to capture them. */
  destination?: DestinationStream;
}

/**
 * The root logger: one structured JSON line per event. Modules receive it (or a child) as a
 * parameter rather than importing a global, so tests can capture what they log.
 * @example const log = createLogger({ level: config.logLevel }); log.info({ port }, 'listening');
 */
export function createLogger({ level = 'info', destination }: LoggerOptions = {}): Logger {
  const options = { level, base: { service: 'dmvae-serve' } };
  return destination ? pino(options, destination) : pino(options);
}

/** A logger that drops everything, for code paths that are given none. */
export const silentLogger: Logger = pino({ level: 'silent' });
