/**
 * How the connector opens its connections. Every connection, normal or replication, runs with
 * the same session settings, because the text Postgres prints for a value depends on them:
 * snapshot rows and pgoutput tuples must print identically (TimeZone for timestamptz, DateStyle,
 * IntervalStyle, extra_float_digits for floats on servers before 12, bytea_output).
 */
import { Socket } from 'node:net';
import type { Logger } from 'pino';
import pg from 'pg';
import { toConnectorError } from './errors.ts';

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
