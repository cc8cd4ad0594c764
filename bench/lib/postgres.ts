/**
 * Postgres for the benchmarks: the test harness's throwaway Postgres 17 (test/support/postgres.ts:
 * wal_level=logical, and fsync=off — fine for benchmarks, which measure tidewire and its peers,
 * not the disk; the figures would be lower with fsync on for the writer, not for the readers).
 */
import { type TestPostgres, startPostgres } from '../../test/support/postgres.ts';

export type BenchPostgres = TestPostgres;

export async function startBenchPostgres(): Promise<BenchPostgres> {
  const pg = await startPostgres();
  // Checkpoints every few seconds during a 10M-row load would measure the disk, not us.
  await pg.query(`ALTER SYSTEM SET max_wal_size = '16GB'`);
  await pg.query(`ALTER SYSTEM SET checkpoint_timeout = '30min'`);
  await pg.query('SELECT pg_reload_conf()');
  return pg;
}

export async function serverVersion(pg: Pick<TestPostgres, 'query'>): Promise<string> {
  const r = await pg.query<{ v: string }>("SELECT current_setting('server_version') AS v");
  return r.rows[0].v;
}

/** CPU seconds of the walsender serving `slot` (sampled while it runs), via pg_replication_slots.active_pid. */
export async function activePid(pg: Pick<TestPostgres, 'query'>, slot: string): Promise<number | null> {
  const r = await pg.query<{ pid: number | null }>('SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  return r.rows[0]?.pid ?? null;
}

/** The postmaster's pid (the parent of this connection's backend), when Postgres runs on this machine. */
export async function postmasterPid(pg: Pick<TestPostgres, 'query'>): Promise<number | undefined> {
  const r = await pg.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const { parentPid } = await import('./proc.ts');
  return parentPid(r.rows[0].pid);
}

/**
 * Waits until the slot's consumer has confirmed (nearly) all WAL written so far: after a saturated
 * step the backlog sits in Postgres, upstream of anything the clients can see. Returns the lag left.
 */
export async function waitForSlot(pg: Pick<TestPostgres, 'query'>, slot: string, maxMs = 60_000, slackBytes = 256 * 1024): Promise<number> {
  const deadline = Date.now() + maxMs;
  for (;;) {
    const r = await pg.query<{ lag: string | null }>('SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::text AS lag FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    const lag = Number(r.rows[0]?.lag ?? 0);
    if (lag <= slackBytes || Date.now() > deadline) return lag;
    await new Promise((res) => setTimeout(res, 250));
  }
}
