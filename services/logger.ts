import { pino, type Logger } from 'pino';

/** Where log lines go: a file descriptor (asynchronous, buffered writes), or a stream of one's own. */
export type LogDestination = 1 | 2 | { write(line: string): void };

/**
 * The process-wide root logger: JSON lines (pino) on stdout, or stderr for CLI commands that
 * print data. `level` is the configuration's log.level, which TIDEWIRE_LOG_LEVEL overrides
 * (parseConfig applies it, so a bad value is reported like any other setting).
 */
export function createLogger(level: string, destination: LogDestination = 1): Logger {
  const stream = typeof destination === 'number' ? pino.destination({ dest: destination, sync: false }) : destination;
  return pino({ level, base: { service: 'tidewire' } }, stream);
}

export type { Logger };
