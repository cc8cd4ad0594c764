/**
 * Errors of the Postgres connector. Each has a stable code; retriability comes from the
 * SQLSTATE or the socket error code, never from message text. Messages say what to do.
 */
import pg from 'pg';
import { TidewireError } from '../../core/errors.ts';

export type PostgresErrorCode =
  /** Postgres cannot be reached (refused, reset, DNS, shutting down, starting up). Retriable. */
  | 'PG_UNREACHABLE'
  /** Login rejected: wrong user or password, or pg_hba.conf does not allow it. */
  | 'PG_AUTH_FAILED'
  /** The database named in the URL does not exist. */
  | 'PG_DATABASE_MISSING'
  /** The server is older than Postgres 10 (no pgoutput). */
  | 'PG_VERSION'
  /** wal_level is not `logical`. */
  | 'PG_WAL_LEVEL'
  /** max_replication_slots or max_wal_senders is 0, or every slot is taken. */
  | 'PG_REPLICATION_LIMIT'
  /** The role has neither REPLICATION nor SUPERUSER. */
  | 'PG_NO_REPLICATION_PRIVILEGE'
  /** The role lacks a privilege it needs (SELECT on a table, creating the publication). */
  | 'PG_PERMISSION_DENIED'
  /** A configured table does not exist (or is not a plain table). */
  | 'PG_TABLE_MISSING'
  /** A table's `where:` cannot be a publication row filter (server too old, invalid, unsafe for its replica identity). */
  | 'PG_ROW_FILTER'
  /** A configured table has no usable key: no primary key, or REPLICA IDENTITY NOTHING. */
  | 'PG_NO_PRIMARY_KEY'
  /** The slot is held by another process (another tidewire, or a lingering walsender). Retriable. */
  | 'PG_SLOT_IN_USE'
  /** A slot with our name exists but is not ours to drop (other database, other plugin, physical). */
  | 'PG_SLOT_CONFLICT'
  /** The slot disappeared or was invalidated while streaming: a consistent resume is impossible. */
  | 'PG_SLOT_LOST'
  /** The table changed in a way the mapping cannot follow (a path column was dropped). */
  | 'PG_SCHEMA_CHANGED'
  /** The replication stream broke its own rules (a change outside a transaction, an unknown message). */
  | 'PG_PROTOCOL'
  /** The sink refused updates; the position was not acknowledged. */
  | 'PG_SINK_FAILED'
  /** Postgres reported an error this connector has no specific advice for. */
  | 'PG_QUERY_FAILED'
  /** stop() was called while start() was still running. */
  | 'PG_STOPPED';

export class PostgresConnectorError extends TidewireError {
  declare readonly code: PostgresErrorCode;
  /** The SQLSTATE Postgres reported, when it did. */
  readonly sqlState: string | undefined;

  constructor(code: PostgresErrorCode, message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'PostgresConnectorError';
    this.sqlState = options.cause instanceof pg.DatabaseError ? options.cause.code : undefined;
  }
}

/** SQLSTATEs that mean "the server is going away or not there yet": try again later. */
const TRANSIENT_SQLSTATES = new Set([
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, recovery)
  '53300', // too_many_connections (includes max_wal_senders exhausted)
  '40001', // serialization_failure
  '40P01', // deadlock_detected
]);

/**
 * Turns anything a pg call threw into a PostgresConnectorError. `doing` says what we were doing
 * ("connecting", "streaming"), `target` names the server without credentials.
 */
export function toConnectorError(err: unknown, doing: string, target: string, stage: 'setup' | 'stream' = 'setup'): PostgresConnectorError {
  if (err instanceof PostgresConnectorError) return err;
  if (!(err instanceof pg.DatabaseError)) {
    // Not reported by the server: the socket failed (refused, reset, timeout, "Connection
    // terminated unexpectedly"). The connection is gone; a new one may well work.
    const code = (err as { code?: unknown } | null)?.code;
    const why = typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
    return new PostgresConnectorError(
      'PG_UNREACHABLE',
      `lost or could not open the connection to Postgres at ${target} while ${doing} (${why}): check that the server is running and postgres.url is right`,
      { retriable: true, cause: err },
    );
  }
  const state = err.code ?? '';
  const detail = `${err.message} [SQLSTATE ${state}]`;
  if (state.startsWith('08') || TRANSIENT_SQLSTATES.has(state)) {
    return new PostgresConnectorError('PG_UNREACHABLE', `Postgres at ${target} is not available while ${doing}: ${detail}`, {
      retriable: true,
      cause: err,
    });
  }
  if (state === '28P01' || state === '28000') {
    return new PostgresConnectorError(
      'PG_AUTH_FAILED',
      `Postgres at ${target} rejected the login: ${detail}. Check the user and password in postgres.url (or TIDEWIRE_DATABASE_URL) and that pg_hba.conf allows this role${doing.includes('replication') ? ' to open replication connections (a "replication" line, or "all" for logical replication to a database)' : ''}`,
      { cause: err },
    );
  }
  if (state === '3D000') {
    return new PostgresConnectorError('PG_DATABASE_MISSING', `${detail}: create the database or fix its name in postgres.url`, { cause: err });
  }
  if (state === '42501') {
    return new PostgresConnectorError('PG_PERMISSION_DENIED', `permission denied while ${doing}: ${detail}`, { cause: err });
  }
  if (state === '55006') {
    return new PostgresConnectorError('PG_SLOT_IN_USE', `the replication slot is in use while ${doing}: ${detail}`, { retriable: true, cause: err });
  }
  if (state === '53400') {
    return new PostgresConnectorError(
      'PG_REPLICATION_LIMIT',
      `${detail} while ${doing}: raise max_replication_slots / max_wal_senders in postgresql.conf (restart needed) or drop unused slots (SELECT slot_name FROM pg_replication_slots WHERE NOT active)`,
      { cause: err },
    );
  }
  if (stage === 'stream' && (state === '58P01' || state === '55000' || state === '42704')) {
    // On START_REPLICATION: 58P01 WAL already removed; 55000 slot invalidated; 42704 slot gone.
    return new PostgresConnectorError(
      'PG_SLOT_LOST',
      `the replication slot can no longer be used while ${doing}: ${detail}. Restart tidewire: it re-creates the slot and takes a fresh snapshot (consider max_slot_wal_keep_size)`,
      { cause: err },
    );
  }
  return new PostgresConnectorError('PG_QUERY_FAILED', `Postgres error while ${doing}: ${detail}`, { cause: err });
}

/** `host:port/database` of a connection URL, without user or password, for messages and logs. */
export function describeTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || 'localhost'}:${u.port || '5432'}${u.pathname && u.pathname !== '/' ? u.pathname : ''}`;
  } catch {
    return '(unparsable postgres.url)';
  }
}
