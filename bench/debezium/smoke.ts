/**
 * Smoke run of the Debezium peer against a throwaway Postgres 17:
 *   node --import tsx bench/debezium/smoke.ts [changes=100000]
 *
 * Creates a 10-column table, a publication and a pgoutput slot, then writes the changes (60 %
 * inserts, 30 % updates of 1–3 columns, 10 % deletes, 1,000 per transaction) BEFORE Debezium starts,
 * checks with pg_logical_slot_peek_binary_changes that the slot holds exactly that many row changes,
 * runs runDebeziumIngest and prints the figures.
 */
import { startPostgres } from '../../test/support/postgres.ts';
import { INGEST_DDL, INGEST_TABLE as TABLE, PER_TXN, peekRowChanges, writeIngestWorkload } from '../lib/ingest-workload.ts';
import { debeziumCacheDir, prepareDebezium, runDebeziumIngest } from '../peers/debezium.ts';

const TOTAL = Number(process.argv[2] ?? 100_000);
if (!Number.isInteger(TOTAL) || TOTAL <= 0 || TOTAL % PER_TXN !== 0) throw new Error(`changes must be a positive multiple of ${PER_TXN}`);
const SLOT = 'dbz_bench';
const PUB = 'dbz_bench_pub';

const log = (s: string) => console.error(s);
const sec = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

const tPrep = process.hrtime.bigint();
await prepareDebezium(log);
const prepareSeconds = sec(tPrep);
log(`prepareDebezium: ${prepareSeconds.toFixed(2)} s (cache ${debeziumCacheDir()})`);

const pg = await startPostgres();
try {
  await pg.query(INGEST_DDL);
  await pg.query(`CREATE PUBLICATION ${PUB} FOR TABLE ${TABLE}`);
  await pg.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [SLOT]);

  // The ingest suite's workload (bench/lib/ingest-workload.ts), written before Debezium starts.
  const writeSeconds = await writeIngestWorkload(pg, TOTAL);
  log(`wrote ${TOTAL} row changes in ${TOTAL / PER_TXN} transactions in ${writeSeconds.toFixed(1)} s`);

  // The slot must hold exactly TOTAL row changes (pgoutput messages 'I', 'U', 'D'); peek does not consume.
  const inSlot = await peekRowChanges(pg, SLOT, PUB);
  if (inSlot !== TOTAL) throw new Error(`slot holds ${inSlot} row changes, expected ${TOTAL}`);
  const before = await pg.query<{ lsn: string }>(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1`, [SLOT]);

  const r = await runDebeziumIngest({
    pgUrl: pg.url,
    slot: SLOT,
    publication: PUB,
    tables: [`public.${TABLE}`],
    expected: TOTAL,
    timeoutSec: 300,
    log,
    // For experiments: DBZ_PROPS='poll.interval.ms=500,record.processing.threads=' overrides harness defaults.
    properties: Object.fromEntries(
      (process.env.DBZ_PROPS ?? '')
        .split(',')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    ),
  });
  // Debezium has no stored offset: it must stream from the slot's confirmed position (all changes above).
  if (r.streamStartLsn !== before.rows[0].lsn) {
    throw new Error(`Debezium started streaming at ${r.streamStartLsn}, not at the slot's confirmed_flush_lsn ${before.rows[0].lsn}`);
  }
  const after = await pg.query<{ lsn: string; active: boolean }>(
    `SELECT confirmed_flush_lsn::text AS lsn, active FROM pg_replication_slots WHERE slot_name = $1`,
    [SLOT],
  );

  const summary = {
    ...r,
    changesPerSecond: Math.round(r.changes / r.seconds),
    cpuSecondsPerMillion: +((r.cpuSeconds / r.changes) * 1e6).toFixed(2),
    streamingCpuSecondsPerMillion: +((r.cpuSecondsStreaming / r.changes) * 1e6).toFixed(2),
    peakRssMiB: +(r.peakRssBytes / 2 ** 20).toFixed(1),
    prepareSeconds: +prepareSeconds.toFixed(2),
    writeSeconds: +writeSeconds.toFixed(2),
    slotConfirmedFlushBefore: before.rows[0]?.lsn,
    slotConfirmedFlushAfter: after.rows[0]?.lsn,
  };
  console.log(JSON.stringify(summary, null, 2));
} finally {
  await pg.stop();
}
