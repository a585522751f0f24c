import pino from 'pino';

export type Logger = pino.Logger;

/** JSON logs on stdout (pino). */
export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { ...base }, timestamp: pino.stdTimeFunctions.isoTime });
}
