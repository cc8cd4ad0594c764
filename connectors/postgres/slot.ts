/**
 * The replication slot. tidewire re-snapshots at every start, so the slot is dropped (when not in
 * use) and created anew with an exported snapshot: the snapshot shows exactly the transactions
 * committed before the slot's consistent point, and the slot streams exactly the ones after.
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
}

/**
 * Drops the slot if it exists. When another process holds it, waits up to `busyTimeoutMs`: after
 * a kill -9 of a previous tidewire its walsender can linger for a few seconds.
 */
export async function dropSlotWhenFree(
  client: CatalogQuery,
  options: { slot: string; database: string; busyTimeoutMs: number; log: Logger; target: string; signal?: AbortSignal },
): Promise<'dropped' | 'absent'> {
  const { slot, log } = options;
  const deadline = Date.now() + options.busyTimeoutMs;
  let waiting = false;
  for (;;) {
    const { rows } = await client.query<SlotRow>(
      'SELECT slot_type, database::text AS database, plugin::text AS plugin, active_pid FROM pg_replication_slots WHERE slot_name = $1',
      [slot],
    );
    if (rows.length === 0) return 'absent';
    const row = rows[0];
    if (row.slot_type !== 'logical' || row.database !== options.database || row.plugin !== 'pgoutput') {
      throw new PostgresConnectorError(
        'PG_SLOT_CONFLICT',
        `replication slot "${slot}" exists but is not tidewire's (${row.slot_type} slot, database ${row.database ?? '-'}, plugin ${row.plugin ?? '-'}): set postgres.slot to another name`,
      );
    }
    if (row.active_pid === null) {
      try {
        await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
        log.info('dropped the previous replication slot; a fresh snapshot follows');
        return 'dropped';
      } catch (err) {
        const e = toConnectorError(err, `dropping replication slot "${slot}"`, options.target);
        if (e.code !== 'PG_SLOT_IN_USE' && e.sqlState !== '42704') throw e;
        // Taken (55006) or dropped (42704) by someone else between our read and our drop: look again.
      }
    } else {
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
    }
    await sleep(POLL_MS, undefined, { signal: options.signal });
  }
}

export interface CreatedSlot {
  readonly consistentPoint: Lsn;
  /** Valid only while the replication connection that created the slot stays open and idle. */
  readonly snapshotName: string;
}

/** CREATE_REPLICATION_SLOT with an exported snapshot, on a replication connection. */
export async function createSlotWithSnapshot(repl: pg.Client, slot: string, serverVersionNum: number, target: string): Promise<CreatedSlot> {
  // The option list syntax arrived in Postgres 15; older servers take EXPORT_SNAPSHOT.
  const snapshotOption = serverVersionNum >= 150000 ? `(SNAPSHOT 'export')` : 'EXPORT_SNAPSHOT';
  try {
    const res = await repl.query<{ consistent_point: string; snapshot_name: string }>(`CREATE_REPLICATION_SLOT "${slot}" LOGICAL pgoutput ${snapshotOption}`);
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
