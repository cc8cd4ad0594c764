import { pino, type Logger } from 'pino';

/** Warnings and errors of the code under test go to stderr; nothing else (it would cost CPU in the measurement). */
export function benchLogger(level = 'warn'): Logger {
  return pino({ level, base: { bench: process.pid } }, pino.destination({ dest: 2, sync: true }));
}
