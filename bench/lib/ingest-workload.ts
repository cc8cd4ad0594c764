/**
 * The ingest workload, the same as bench/debezium/smoke.ts: a 10-column table and transactions of
 * exactly 1,000 row changes — 600 inserts, 300 updates (100 each touching 1, 2 and 3 columns) and
 * 100 deletes — written to WAL before either reader starts.
 */
import type { BenchPostgres } from './postgres.ts';

export const PER_TXN = 1000;
export const INGEST_TABLE = 'bench_items';

export const INGEST_DDL = `
  CREATE TABLE ${INGEST_TABLE} (
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
  )`;

/** The SQL of transaction k (0-based): exactly PER_TXN row changes. */
export function ingestTransaction(k: number): string {
  const base = 600 * k;
  const prev = k === 0 ? base : base - 600;
  const del = k === 0 ? base + 300 : prev + 500; // k = 0 deletes its own 301..400 (not updated)
  return `
    BEGIN;
    INSERT INTO ${INGEST_TABLE} (id, a, b, c, label, note, price, ts, flag, doc)
      SELECT i, (i % 1000)::int4, i * 7, (i % 13)::int4, 'item-' || i, repeat('n', (i % 40)::int),
             (i % 100000) / 100.0, now() - (i % 3600) * interval '1 second', i % 2 = 0,
             jsonb_build_object('k', i, 'tags', jsonb_build_array('x', 'y'), 'nested', jsonb_build_object('v', i % 7))
        FROM generate_series(${base + 1}::int8, ${base + 600}::int8) AS i;
    UPDATE ${INGEST_TABLE} SET a = a + 1 WHERE id BETWEEN ${prev + 1} AND ${prev + 100};
    UPDATE ${INGEST_TABLE} SET label = label || '*', price = price + 1 WHERE id BETWEEN ${prev + 101} AND ${prev + 200};
    UPDATE ${INGEST_TABLE} SET flag = NOT flag, ts = now(), doc = doc || '{"u":1}' WHERE id BETWEEN ${prev + 201} AND ${prev + 300};
    DELETE FROM ${INGEST_TABLE} WHERE id BETWEEN ${del + 1} AND ${del + 100};
    COMMIT;`;
}

/** Writes `total` row changes (a multiple of PER_TXN); returns the seconds it took. */
export async function writeIngestWorkload(pg: BenchPostgres, total: number): Promise<number> {
  if (total % PER_TXN !== 0) throw new Error(`changes must be a multiple of ${PER_TXN}`);
  const t0 = performance.now();
  for (let k = 0; k < total / PER_TXN; k++) await pg.query(ingestTransaction(k));
  return (performance.now() - t0) / 1000;
}

/** Row changes (pgoutput I/U/D messages) the slot holds; decodes the WAL without consuming it. */
export async function peekRowChanges(pg: BenchPostgres, slot: string, publication: string): Promise<number> {
  const r = await pg.query<{ n: string }>(
    `SELECT count(*) AS n FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)
      WHERE get_byte(data, 0) IN (73, 85, 68)`,
    [slot, publication],
  );
  return Number(r.rows[0].n);
}
