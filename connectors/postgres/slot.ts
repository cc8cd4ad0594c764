/**
 * The replication slot. With durable state a start resumes from the stored position when the slot
 * still covers it (`freeSlot` reads where it stands); otherwise, and with state in memory, the slot
 * is dropped (when not in use) and created anew with an exported snapshot: the snapshot shows
 * exactly the transactions committed before the slot's consistent point, and the slot streams
 * exactly the ones after. A temporary slot exports a snapshot for re-reading some tables while
 * the main slot keeps its place.
 */
import type { Logger } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { CatalogQuery } from './catalog.ts';
import { PostgresConnectorError, toConnectorError } from './errors.ts';
import { type Lsn, parseLsn } from './lsn.ts';

const POLL_MS = 250;

interface SlotRow {
  slot_type: string;
  database: string | null;
  plugin: string | null;
  active_pid: number | null;
  confirmed_flush_lsn: string | null;
  wal_status: string | null;
}

export interface SlotOptions {
  readonly slot: string;
  readonly database: string;
  readonly busyTimeoutMs: number;
  readonly log: Logger;
  readonly target: string;
  readonly signal?: AbortSignal;
}

/** Where an existing, unused tidewire slot stands. */
export interface FreeSlot {
  /** Everything before it was acknowledged: streaming can resume at or after it. */
  readonly confirmedFlushLsn: Lsn | null;
  /** Postgres 13+: `lost` once the WAL it needs was removed (max_slot_wal_keep_size); null before 13. */
  readonly walStatus: string | null;
}

/**
 * The slot, once no process holds it, or null when it does not exist. When another process holds
 * it, waits up to `busyTimeoutMs`: after a kill -9 of a previous tidewire its walsender can linger
 * for a few seconds. Refuses a slot of that name that is not tidewire's.
 */
export async function freeSlot(client: CatalogQuery, options: SlotOptions): Promise<FreeSlot | null> {
  const { slot, log } = options;
  const deadline = Date.now() + options.busyTimeoutMs;
  let waiting = false;
  for (;;) {
    // wal_status arrived in Postgres 13; to_jsonb reads it where it exists without failing where not.
    const { rows } = await client.query<SlotRow>(
      `SELECT slot_type, database::text AS database, plugin::text AS plugin, active_pid, confirmed_flush_lsn::text AS confirmed_flush_lsn,
              to_jsonb(s) ->> 'wal_status' AS wal_status
         FROM pg_replication_slots s WHERE slot_name = $1`,
      [slot],
    );
    if (rows.length === 0) return null;
    const row = rows[0];
    if (row.slot_type !== 'logical' || row.database !== options.database || row.plugin !== 'pgoutput') {
      throw new PostgresConnectorError(
        'PG_SLOT_CONFLICT',
        `replication slot "${slot}" exists but is not tidewire's (${row.slot_type} slot, database ${row.database ?? '-'}, plugin ${row.plugin ?? '-'}): set postgres.slot to another name`,
      );
    }
    if (row.active_pid === null) {
      return { confirmedFlushLsn: row.confirmed_flush_lsn === null ? null : parseLsn(row.confirmed_flush_lsn), walStatus: row.wal_status };
    }
    if (Date.now() >= deadline) {
      throw new PostgresConnectorError(
        'PG_SLOT_IN_USE',
        `replication slot "${slot}" is in use by process ${row.active_pid}: another tidewire is probably running with the same postgres.slot. Stop it, or give this one another slot name; if that process is stale, end it with SELECT pg_terminate_backend(${row.active_pid})`,
        { retriable: true },
      );
    }
    if (!waiting) {
      log.warn({ pid: row.active_pid, waitMs: options.busyTimeoutMs }, 'replication slot is in use; waiting for it to be released');
      waiting = true;
    }
    await sleep(POLL_MS, undefined, { signal: options.signal });
  }
}

/** Drops the slot if it exists, once no process holds it (see freeSlot). */
export async function dropSlotWhenFree(client: CatalogQuery, options: SlotOptions): Promise<'dropped' | 'absent'> {
  const { slot, log } = options;
  for (;;) {
    if ((await freeSlot(client, options)) === null) return 'absent';
    try {
      await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
      log.info('dropped the previous replication slot; a fresh snapshot follows');
      return 'dropped';
    } catch (err) {
      const e = toConnectorError(err, `dropping replication slot "${slot}"`, options.target);
      if (e.code !== 'PG_SLOT_IN_USE' && e.sqlState !== '42704') throw e;
      // Taken (55006) or dropped (42704) by someone else between our read and our drop: look again.
    }
  }
}

export interface CreatedSlot {
  readonly consistentPoint: Lsn;
  /** Valid only while the replication connection that created the slot stays open and idle. */
  readonly snapshotName: string;
}

/**
 * CREATE_REPLICATION_SLOT with an exported snapshot, on a replication connection. A `temporary`
 * slot is dropped by Postgres when that connection closes (a re-read of some tables uses one).
 */
export async function createSlotWithSnapshot(repl: pg.Client, slot: string, serverVersionNum: number, target: string, temporary = false): Promise<CreatedSlot> {
  // The option list syntax arrived in Postgres 15; older servers take EXPORT_SNAPSHOT.
  const snapshotOption = serverVersionNum >= 150000 ? `(SNAPSHOT 'export')` : 'EXPORT_SNAPSHOT';
  try {
    const res = await repl.query<{ consistent_point: string; snapshot_name: string }>(
      `CREATE_REPLICATION_SLOT "${slot}"${temporary ? ' TEMPORARY' : ''} LOGICAL pgoutput ${snapshotOption}`,
    );
    const row = res.rows[0];
    return { consistentPoint: parseLsn(row.consistent_point), snapshotName: row.snapshot_name };
  } catch (err) {
    if ((err as { code?: string }).code === '42710') {
      throw new PostgresConnectorError('PG_SLOT_IN_USE', `replication slot "${slot}" was created by another process at the same moment: is another tidewire starting with the same postgres.slot?`, {
        retriable: true,
        cause: err,
      });
    }
    throw toConnectorError(err, `creating replication slot "${slot}"`, target);
  }
}
