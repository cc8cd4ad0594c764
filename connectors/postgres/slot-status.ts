/**
 * What Postgres says about replication slots and the room left for them: read by `tidewire slots`,
 * `tidewire check` and the replication-lag metric. Read-only; dropping a slot is the CLI's.
 */
import type pg from 'pg';

type Query = Pick<pg.ClientBase, 'query'>;

/** application_name of the connector's replication connection (connection.ts). */
export const REPLICATION_APPLICATION_NAME = 'tidewire-replication';

export interface SlotStatus {
  readonly name: string;
  /** `logical` or `physical`. */
  readonly slotType: string;
  readonly plugin: string | null;
  readonly database: string | null;
  readonly active: boolean;
  readonly activePid: number | null;
  /** application_name of the process streaming from the slot, when active. */
  readonly applicationName: string | null;
  readonly restartLsn: string | null;
  readonly confirmedFlushLsn: string | null;
  /** pg_current_wal_lsn() − confirmed_flush_lsn; null for physical slots and on a standby. */
  readonly lagBytes: number | null;
}

interface SlotRow {
  slot_name: string;
  slot_type: string;
  plugin: string | null;
  database: string | null;
  active: boolean;
  active_pid: number | null;
  application_name: string | null;
  restart_lsn: string | null;
  confirmed_flush_lsn: string | null;
  lag_bytes: number | null;
}

/** Every slot of the server, or only the one named. */
export async function readSlots(client: Query, name?: string): Promise<SlotStatus[]> {
  const { rows } = await client.query<SlotRow>(
    `SELECT s.slot_name::text, s.slot_type, s.plugin::text, s.database::text AS database, s.active, s.active_pid,
            a.application_name, s.restart_lsn::text, s.confirmed_flush_lsn::text,
            CASE WHEN s.confirmed_flush_lsn IS NULL OR pg_is_in_recovery() THEN NULL
                 ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::float8 END AS lag_bytes
       FROM pg_replication_slots s LEFT JOIN pg_stat_activity a ON a.pid = s.active_pid
      WHERE $1::text IS NULL OR s.slot_name = $1
      ORDER BY s.slot_name`,
    [name ?? null],
  );
  return rows.map((r) => ({
    name: r.slot_name,
    slotType: r.slot_type,
    plugin: r.plugin,
    database: r.database,
    active: r.active,
    activePid: r.active_pid,
    applicationName: r.application_name,
    restartLsn: r.restart_lsn,
    confirmedFlushLsn: r.confirmed_flush_lsn,
    lagBytes: r.lag_bytes === null ? null : Math.max(0, r.lag_bytes),
  }));
}

/**
 * A slot tidewire made: the configured one, one a tidewire process streams from, or a pgoutput
 * slot named tidewire* (the default name and the demo's).
 */
export function isTidewireSlot(s: SlotStatus, configured?: string): boolean {
  if (s.name === configured) return true;
  if (s.applicationName === REPLICATION_APPLICATION_NAME) return true;
  return s.slotType === 'logical' && s.plugin === 'pgoutput' && s.name.startsWith('tidewire');
}

export interface ReplicationUsage {
  /** Slots that exist (each counts against max_replication_slots, active or not). */
  readonly slots: number;
  /** WAL sender processes running (each replication connection is one). */
  readonly walSenders: number;
}

export async function readReplicationUsage(client: Query): Promise<ReplicationUsage> {
  const { rows } = await client.query<{ slots: number; wal_senders: number }>(
    `SELECT (SELECT count(*) FROM pg_replication_slots)::int AS slots,
            (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender')::int AS wal_senders`,
  );
  return { slots: rows[0].slots, walSenders: rows[0].wal_senders };
}
