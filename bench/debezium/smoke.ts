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
import { debeziumCacheDir, prepareDebezium, runDebeziumIngest } from '../peers/debezium.ts';

const TOTAL = Number(process.argv[2] ?? 100_000);
const PER_TXN = 1000;
if (!Number.isInteger(TOTAL) || TOTAL <= 0 || TOTAL % PER_TXN !== 0) throw new Error(`changes must be a positive multiple of ${PER_TXN}`);
const SLOT = 'dbz_bench';
const PUB = 'dbz_bench_pub';
const TABLE = 'bench_items';

const log = (s: string) => console.error(s);
const sec = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

const tPrep = process.hrtime.bigint();
await prepareDebezium(log);
const prepareSeconds = sec(tPrep);
log(`prepareDebezium: ${prepareSeconds.toFixed(2)} s (cache ${debeziumCacheDir()})`);

const pg = await startPostgres();
try {
  await pg.query(`
    CREATE TABLE ${TABLE} (
      id     int8 PRIMARY KEY,
      a      int4 NOT NULL,
      b      int8,
      c      int4,
      label  text NOT NULL,
      note   text,
      price  numeric(12,2),
      ts     timestamptz NOT NULL DEFAULT now(),
      flag   bool NOT NULL DEFAULT false,
      doc    jsonb
    )`);
  await pg.query(`CREATE PUBLICATION ${PUB} FOR TABLE ${TABLE}`);
  await pg.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [SLOT]);

  // Transaction k: insert ids 600k+1..600k+600; update 300 rows (100 each touching 1, 2, 3 columns)
  // and delete 100 rows of the previous transaction's inserts (of its own for k = 0): exactly 1,000.
  const tWrite = process.hrtime.bigint();
  const txns = TOTAL / PER_TXN;
  for (let k = 0; k < txns; k++) {
    const base = 600 * k;
    const prev = k === 0 ? base : base - 600;
    const del = k === 0 ? base + 300 : prev + 500; // k = 0 deletes its own 301..400 (not updated)
    await pg.query(`
      BEGIN;
      INSERT INTO ${TABLE} (id, a, b, c, label, note, price, ts, flag, doc)
        SELECT i, (i % 1000)::int4, i * 7, (i % 13)::int4, 'item-' || i, repeat('n', (i % 40)::int),
               (i % 100000) / 100.0, now() - (i % 3600) * interval '1 second', i % 2 = 0,
               jsonb_build_object('k', i, 'tags', jsonb_build_array('x', 'y'), 'nested', jsonb_build_object('v', i % 7))
        FROM generate_series(${base + 1}::int8, ${base + 600}::int8) AS i;
      UPDATE ${TABLE} SET a = a + 1 WHERE id BETWEEN ${prev + 1} AND ${prev + 100};
      UPDATE ${TABLE} SET label = label || '*', price = price + 1 WHERE id BETWEEN ${prev + 101} AND ${prev + 200};
      UPDATE ${TABLE} SET flag = NOT flag, ts = now(), doc = doc || '{"u":1}' WHERE id BETWEEN ${prev + 201} AND ${prev + 300};
      DELETE FROM ${TABLE} WHERE id BETWEEN ${del + 1} AND ${del + 100};
      COMMIT;`);
  }
  const writeSeconds = sec(tWrite);
  log(`wrote ${TOTAL} row changes in ${txns} transactions in ${writeSeconds.toFixed(1)} s`);

  // The slot must hold exactly TOTAL row changes (pgoutput messages 'I', 'U', 'D'); peek does not consume.
  const peek = await pg.query<{ n: string }>(
    `SELECT count(*) AS n FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)
      WHERE get_byte(data, 0) IN (73, 85, 68)`,
    [SLOT, PUB],
  );
  const inSlot = Number(peek.rows[0].n);
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
