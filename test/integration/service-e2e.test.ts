/**
 * The whole path with real Postgres: a committed row change reaches a subscribed WebSocket client
 * as a small delta; inserts arrive as values, deletes as removals; HTTP serves current values.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import WebSocket from 'ws';
import { TidewireClient } from '../../client/index.ts';
import { parseConfig } from '../../services/config/config.ts';
import { TidewireService } from '../../services/service.ts';
import { type TestPostgres, startPostgres } from '../support/postgres.ts';
import { waitFor } from '../support/wait.ts';

let pg: TestPostgres;
let service: TidewireService;
let port: number;

before(async () => {
  pg = await startPostgres();
  await pg.query(`CREATE TABLE orders (
    id int8 PRIMARY KEY, customer_id int NOT NULL, item text NOT NULL, qty int NOT NULL,
    price numeric(12,2) NOT NULL, status text NOT NULL, note text, updated_at timestamptz NOT NULL DEFAULT now())`);
  await pg.query(`INSERT INTO orders (id, customer_id, item, qty, price, status, note)
    SELECT i, 1 + i % 3, 'item ' || i, i, i * 1.5, 'new', repeat('n', 120) FROM generate_series(1, 30) i`);
  const config = parseConfig(
    {
      server: { port: 0 },
      postgres: { url: pg.url, slot: 'e2e', publication: 'e2e', tables: [{ table: 'public.orders', path: 'orders/{customer_id}/{id}' }] },
    },
    {},
  );
  service = new TidewireService(config, { logger: pino({ level: 'silent' }) });
  ({ port } = await service.start());
});

after(async () => {
  await service?.stop();
  await pg?.stop();
});

/** A raw protocol client, to see exactly what goes over the wire. */
function rawClient(selector: string): Promise<{ messages: Array<Record<string, unknown>>; bytes: () => number; close: () => void }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const messages: Array<Record<string, unknown>> = [];
    let bytes = 0;
    ws.on('message', (data: Buffer) => {
      bytes += data.length;
      for (const m of JSON.parse(String(data))) {
        messages.push(m);
        if (m.type === 'subscribed') resolve({ messages, bytes: () => bytes, close: () => ws.close() });
      }
    });
    ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', id: 's', selector })));
    ws.on('error', reject);
  });
}

test('current values first, then a one-column update arrives as a small delta', async () => {
  const c = await rawClient('orders/2/**');
  const initial = c.messages.filter((m) => m.type === 'value');
  assert.equal(initial.length, 10, 'customer 2 has 10 orders (ids 1, 4, ..., 28)');
  const v1 = initial.find((m) => m.path === 'orders/2/1')!;
  assert.deepEqual(v1.value, {
    id: 1, customer_id: 2, item: 'item 1', qty: 1, price: '1.50', status: 'new', note: 'n'.repeat(120),
    updated_at: (v1.value as { updated_at: string }).updated_at,
  });
  assert.match((v1.value as { updated_at: string }).updated_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,6}Z$/);

  const before = c.bytes();
  await pg.query(`UPDATE orders SET status = 'shipped' WHERE id = 1`);
  const delta = await waitFor('the delta for orders/2/1', () => c.messages.find((m) => m.type === 'delta' && m.path === 'orders/2/1'));
  assert.deepEqual(delta, { type: 'delta', path: 'orders/2/1', version: (v1.version as number) + 1, patch: [{ op: 'replace', path: '/status', value: 'shipped' }] });
  const fullSize = Buffer.byteLength(JSON.stringify({ ...v1, value: { ...(v1.value as object), status: 'shipped' } }));
  assert.ok(c.bytes() - before < fullSize / 2, `delta frame ${c.bytes() - before} B should be well under the full value ${fullSize} B`);
  // Other customers' orders never reach this subscription.
  await pg.query(`UPDATE orders SET qty = 99 WHERE id = 2`);
  await pg.query(`UPDATE orders SET qty = 77 WHERE id = 4`);
  await waitFor('orders/2/4 qty delta', () => c.messages.find((m) => m.path === 'orders/2/4' && m.type === 'delta'));
  assert.ok(!c.messages.some((m) => typeof m.path === 'string' && !m.path.startsWith('orders/2/')));
  c.close();
});

test('inserts, deletes and primary-key changes reach an SDK client; an unchanged UPDATE sends nothing', async () => {
  const client = new TidewireClient({ url: `ws://127.0.0.1:${port}/ws` });
  const emitted: string[] = [];
  const sub = client.subscribe('orders/**', {
    onValue: (path) => emitted.push(`value ${path}`),
    onRemoval: (path) => emitted.push(`removal ${path}`),
  });
  await client.connect();
  await waitFor('subscription live', () => sub.live);
  assert.equal(sub.values.size, 30);
  emitted.length = 0;

  await pg.query(`UPDATE orders SET status = status WHERE id = 5`); // no value changes
  await pg.query(`INSERT INTO orders (id, customer_id, item, qty, price, status) VALUES (100, 3, 'x/y', 1, 2.5, 'new')`);
  await waitFor('insert', () => sub.values.get('orders/3/100'));
  await pg.query(`DELETE FROM orders WHERE id = 6`);
  await waitFor('delete', () => !sub.values.has('orders/1/6'));
  await pg.query(`UPDATE orders SET id = 200 WHERE id = 7`);
  await waitFor('key change', () => sub.values.has('orders/2/200') && !sub.values.has('orders/2/7'));
  assert.deepEqual(emitted, ['value orders/3/100', 'removal orders/1/6', 'removal orders/2/7', 'value orders/2/200']);

  const r = await fetch(`http://127.0.0.1:${port}/topics/orders/3/100`);
  assert.equal(r.status, 200);
  const body = (await r.json()) as { value: { item: string }; epoch: string };
  assert.equal(body.value.item, 'x/y');
  assert.equal(body.epoch, service.store.epoch);
  assert.equal((await fetch(`http://127.0.0.1:${port}/topics/orders/3/999`)).status, 404);
  client.close();
});
