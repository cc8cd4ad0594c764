import { pino, type Logger } from 'pino';

/** Where log lines go: a file descriptor (asynchronous, buffered writes), or a stream of one's own. */
export type LogDestination = 1 | 2 | { write(line: string): void; flush?(cb: (err?: Error) => void): void };

/** How each record is written: one JSON object per line, or one line for people to read. */
export type LogLineFormat = 'json' | 'pretty';

/** `log.format: auto` is pretty for a terminal and JSON for everything else (files, pipes, collectors). */
export function resolveLogFormat(format: 'auto' | LogLineFormat, isTTY: boolean | undefined): LogLineFormat {
  return format === 'auto' ? (isTTY ? 'pretty' : 'json') : format;
}

export interface LoggerOptions {
  /** Default json. */
  readonly format?: LogLineFormat;
  /** Pretty lines only: colour the level (a terminal). */
  readonly color?: boolean;
}

/**
 * The process-wide root logger (pino) on stdout, or stderr for CLI commands that print data.
 * `level` is the configuration's log.level, which TIDEWIRE_LOG_LEVEL overrides (parseConfig applies
 * it, so a bad value is reported like any other setting); `format` is log.format resolved by
 * resolveLogFormat. Pretty lines are made from the JSON record pino wrote, so both formats carry
 * the same fields.
 */
export function createLogger(level: string, destination: LogDestination = 1, options: LoggerOptions = {}): Logger {
  const stream = typeof destination === 'number' ? pino.destination({ dest: destination, sync: false }) : destination;
  if (options.format !== 'pretty') return pino({ level, base: { service: 'tidewire' } }, stream);
  const color = options.color ?? false;
  const pretty = {
    write: (line: string) => void stream.write(prettyLine(line, color)),
    // pino's logger.flush(cb) calls the stream's flush: the fd's buffer reaches the terminal before an exit.
    flush: (cb: (err?: Error) => void) => (stream.flush ? stream.flush(cb) : cb()),
  };
  return pino({ level, base: { service: 'tidewire' } }, pretty);
}

const LEVELS: Record<number, [name: string, color: string]> = {
  10: ['TRACE', '\x1b[90m'],
  20: ['DEBUG', '\x1b[36m'],
  30: ['INFO ', '\x1b[32m'],
  40: ['WARN ', '\x1b[33m'],
  50: ['ERROR', '\x1b[31m'],
  60: ['FATAL', '\x1b[41m\x1b[97m'],
};

/** Fields every record has, or that the line shows in its own place. */
const SHOWN = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname', 'component', 'err']);

/**
 * One JSON record → `13:24:46.404 INFO  postgres: snapshot applied rows=2500 ms=31`, with an
 * error's message (and code) after ` — ` and without its stack, which the JSON format keeps.
 */
export function prettyLine(json: string, color = false): string {
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const time = typeof r.time === 'number' ? new Date(r.time).toISOString().slice(11, 23) : '';
  const [name, tint] = LEVELS[r.level as number] ?? [String(r.level).padEnd(5), ''];
  const level = color && tint ? `${tint}${name}\x1b[0m` : name;
  const component = typeof r.component === 'string' ? `${r.component}: ` : '';
  let line = `${time} ${level} ${component}${typeof r.msg === 'string' ? r.msg : ''}`;
  for (const [k, v] of Object.entries(r)) {
    if (SHOWN.has(k) || v === undefined) continue;
    line += ` ${k}=${typeof v === 'string' && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)}`;
  }
  const err = r.err as { message?: unknown; code?: unknown } | undefined;
  if (err && typeof err === 'object' && typeof err.message === 'string') {
    line += ` — ${err.message}${typeof err.code === 'string' && !err.message.includes(err.code) ? ` [${err.code}]` : ''}`;
  }
  return `${line}\n`;
}

export type { Logger };
