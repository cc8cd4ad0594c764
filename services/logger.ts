import { pino, type Logger } from 'pino';

/** The process-wide root logger: JSON lines on stdout (or stderr for CLI commands that print data). */
export function createLogger(level: string, destination: 1 | 2 = 1): Logger {
  return pino({ level, base: { service: 'tidewire' } }, pino.destination({ dest: destination, sync: false }));
}

export type { Logger };
