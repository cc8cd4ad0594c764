/** Tables the distribution suites write to: rows that carry the writer's send time (`sent_us`). */
import type { BenchPostgres } from './postgres.ts';

/**
 * An order-like row of 12 columns (about 330 bytes as JSON); `sent_us` is set by the writer on
 * every update, with two more fields (see ROW_UPDATE_SET).
 */
export async function createRowsTable(pg: BenchPostgres, table: string, rows: number): Promise<void> {
  await pg.query(`
    CREATE TABLE ${table} (
      id         int8 PRIMARY KEY,
      customer   int4 NOT NULL,
      status     text NOT NULL,
      qty        int4 NOT NULL,
      price      numeric(10,2) NOT NULL,
      currency   text NOT NULL,
      ship_to    text NOT NULL,
      note       text,
      flag       bool NOT NULL,
      v          int8 NOT NULL DEFAULT 0,
      sent_us    int8 NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL DEFAULT now()
    )`);
  await pg.query(`
    INSERT INTO ${table} (id, customer, status, qty, price, currency, ship_to, note, flag)
      SELECT i, (i % 97)::int4, 'open', (i % 10)::int4, (i % 1000) / 10.0, 'EUR',
             (i % 500) || ' Harbour Street, Flat ' || (i % 40) || ', Portsmouth PO1 ' || (i % 9) || 'AB',
             'leave with the neighbour if nobody answers (order ' || i || ')', i % 2 = 0
        FROM generate_series(1, ${rows}) AS i`);
  await pg.query(`VACUUM ANALYZE ${table}`);
}

/** What changes besides sent_us in each update: two more fields. */
export const ROW_UPDATE_SET = `v = v + 1, qty = (qty + 1) % 100`;
