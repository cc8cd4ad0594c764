/**
 * How the connector opens its connections. Every connection, normal or replication, runs with
 * the same session settings, because the text Postgres prints for a value depends on them:
 * snapshot rows and pgoutput tuples must print identically (TimeZone for timestamptz, DateStyle,
 * IntervalStyle, extra_float_digits for floats on servers before 12, bytea_output).
 */
import { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import pg from 'pg';
import { type BackoffOptions, DEFAULT_BACKOFF, backoffDelay } from '../../core/backoff.ts';
import { PostgresConnectorError, toConnectorError } from './errors.ts';

const SESSION_OPTIONS = ['TimeZone=UTC', 'DateStyle=ISO', 'IntervalStyle=postgres', 'extra_float_digits=3', 'bytea_output=hex']
  .map((s) => `-c ${s}`)
  .join(' ');

/** Type parsers that leave every value as the text Postgres sent (pgoutput-values.ts converts). */
export const RAW_TEXT_TYPES = { getTypeParser: () => (text: string) => text } as unknown as pg.CustomTypesConfig;

export function clientConfig(url: string, kind: 'query' | 'replication'): pg.ClientConfig {
  const config: pg.ClientConfig & { replication?: 'database' } = {
    connectionString: url,
    options: SESSION_OPTIONS,
    application_name: kind === 'replication' ? 'tidewire-replication' : 'tidewire',
    keepAlive: true,
    connectionTimeoutMillis: 10_000,
  };
  if (kind === 'replication') config.replication = 'database';
  return config;
}

/**
 * The socket under each client we opened: given to pg through its `stream` option, so a client
 * whose server stopped answering can be dropped without reaching into pg's internals.
 */
const sockets = new WeakMap<pg.Client, Socket>();

/**
 * Connects; failures become PostgresConnectorErrors. The client gets an 'error' listener: pg
 * emits errors of idle connections (server restart) there, and an unhandled one kills the process.
 */
export async function openClient(config: pg.ClientConfig, target: string, log: Logger): Promise<pg.Client> {
  const socket = new Socket();
  const client = new pg.Client({ ...config, stream: () => socket });
  sockets.set(client, socket);
  client.on('error', (err) => log.debug({ err }, 'postgres connection error'));
  try {
    await client.connect();
  } catch (err) {
    await closeClient(client);
    throw toConnectorError(err, (config as { replication?: string }).replication ? 'opening a replication connection' : 'connecting', target);
  }
  return client;
}

/** `postgres.connectRetries`: attempts after the first before a start gives up on an unreachable server. */
export const DEFAULT_CONNECT_RETRIES = 10;

export interface ConnectRetryOptions {
  /** Attempts after the first; 0 gives up at the first failure. */
  readonly retries: number;
  /** Full-jitter delays between attempts (core/backoff.ts). Default DEFAULT_BACKOFF: 500 ms doubling to 30 s. */
  readonly backoff?: BackoffOptions;
  /** Aborting it (the connector stopping) ends the wait: the last failure is thrown. */
  readonly signal?: AbortSignal;
  /** Uniform in [0, 1), as Math.random; tests inject their own. */
  readonly random?: () => number;
}

/**
 * openClient, retried while the failure is one a new attempt may cure (the server not up yet, a
 * container starting beside it): each retry is logged with its delay, and once `retries` are spent
 * the error says so. What cannot get better by waiting (a wrong password, a missing database) is
 * thrown at once.
 * @example const client = await openClientWithRetry(clientConfig(url, 'query'), target, log, { retries: 10 });
 */
export async function openClientWithRetry(config: pg.ClientConfig, target: string, log: Logger, options: ConnectRetryOptions): Promise<pg.Client> {
  const { retries, backoff = DEFAULT_BACKOFF, signal, random = Math.random } = options;
  if (!Number.isInteger(retries) || retries < 0) throw new RangeError(`openClientWithRetry: retries must be an integer >= 0, got ${retries}`);
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await openClient(config, target, log);
    } catch (err) {
      if (!(err instanceof PostgresConnectorError) || !err.retriable || signal?.aborted) throw err;
      if (attempt >= retries) {
        if (retries === 0) throw err;
        const seconds = Math.round((Date.now() - started) / 1000);
        throw new PostgresConnectorError('PG_UNREACHABLE', `${err.message}; gave up after ${attempt + 1} attempts in ${seconds} s (postgres.connectRetries: ${retries})`, {
          retriable: true,
          cause: err,
        });
      }
      const delayMs = backoffDelay(attempt, backoff, random);
      log.warn(
        { err, attempt: attempt + 1, attempts: retries + 1, delayMs },
        `Postgres at ${target} is not reachable: attempt ${attempt + 1} of ${retries + 1} failed, retrying in ${delayMs} ms (postgres.connectRetries)`,
      );
      await sleep(delayMs, undefined, { signal }).catch(() => {});
      if (signal?.aborted) throw err;
    }
  }
}

/** Ends a client, never throwing and never waiting more than `timeoutMs` for a dead server. */
export async function closeClient(client: pg.Client | null | undefined, timeoutMs = 5_000): Promise<void> {
  if (!client) return;
  await settleWithin(client.end(), timeoutMs, () => destroyClient(client));
}

/** Drops a client's connection at once (its socket, TLS or not, is destroyed); pg then reports it ended. */
export function destroyClient(client: pg.Client): void {
  sockets.get(client)?.destroy();
}

/** Waits for `work` to settle (ignoring its outcome), or calls `onTimeout` after `timeoutMs`. */
export async function settleWithin(work: Promise<unknown>, timeoutMs: number, onTimeout?: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    work.then(
      () => {},
      () => {},
    ),
    new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        onTimeout?.();
        resolve();
      }, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
}
