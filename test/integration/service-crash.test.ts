/**
 * kill -9 of the service mid-stream, then restart: the client's state equals the table, nothing
 * is lost, and the application never sees a duplicate (an emitted value equal to the one before).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TidewireClient } from '../../client/index.ts';
import type { JsonObject } from '../../core/json.ts';
import { jsonEqual } from '../../core/json.ts';
import { type TestPostgres, freePort, startPostgres } from '../support/postgres.ts';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.ts';
import { waitFor } from '../support/wait.ts';
import { type WriterLoop, startWriterLoop } from '../support/writer-loop.ts';

let db: TestPostgres;
let svc: ServiceProcess | undefined;

before(async () => {
  db = await startPostgres();
  await db.query(`CREATE TABLE items (id int PRIMARY KEY, grp int NOT NULL, n int NOT NULL, label text NOT NULL)`);
  await db.query(`INSERT INTO items SELECT i, i % 4, 0, 'l' || i FROM generate_series(1, 200) i`);
});

after(async () => {
  await svc?.kill();
  await db?.stop();
});

/** Writes a steady mix of updates, inserts and deletes until stopped; returns how many statements ran. */
function startWriter(url: string): WriterLoop {
  let next = 1000;
  return startWriterLoop(
    url,
    async (client) => {
      const r = Math.random();
      if (r < 0.7) await client.query('UPDATE items SET n = n + 1 WHERE id = (SELECT id FROM items ORDER BY random() LIMIT 1)');
      else if (r < 0.85) await client.query('INSERT INTO items VALUES ($1, $2, 0, $3)', [next, next % 4, `l${next++}`]);
      else await client.query('DELETE FROM items WHERE id = (SELECT id FROM items ORDER BY random() LIMIT 1)');
    },
    { pauseMs: 2 },
  );
}

test('kill -9 mid-stream, restart: client state equals the table, no gap, no duplicate', async () => {
  const port = await freePort();
  const config = { postgres: { url: db.url, slot: 'crash', publication: 'crash', tables: [{ table: 'public.items', path: 'items/{grp}/{id}' }] }, log: { level: 'warn' } };
  svc = await startServiceProcess(config, port);

  const client = new TidewireClient({ url: `ws://127.0.0.1:${port}/ws`, reconnect: { initialMs: 100, maxMs: 500 } });
  const history = new Map<string, JsonObject[]>();
  let duplicates = 0;
  const removed: string[] = [];
  const sub = client.subscribe('items/**', {
    onValue: (path, value) => {
      const h = history.get(path) ?? [];
      if (h.length > 0 && jsonEqual(h[h.length - 1], value)) duplicates++;
      h.push(value);
      history.set(path, h);
    },
    onRemoval: (path) => {
      history.delete(path);
      removed.push(path);
    },
  });
  await client.connect();
  await waitFor('initial values', () => sub.live && sub.values.size === 200);
  const firstEpoch = client.epoch;

  const writer = startWriter(db.url);
  await waitFor('some streamed changes', () => [...history.values()].some((h) => h.length > 1), 20_000);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await svc.kill('SIGKILL'), null, 'the service was killed, not stopped');
  await new Promise((r) => setTimeout(r, 300)); // the writer keeps writing while tidewire is down
  svc = await startServiceProcess(config, port);
  await new Promise((r) => setTimeout(r, 1000));
  const statements = await writer.stop();
  assert.ok(statements > 50, `the writer ran (${statements} statements)`);

  const table = new Map<string, JsonObject>();
  for (const row of (await db.query<{ id: number; grp: number; n: number; label: string }>('SELECT * FROM items')).rows) {
    table.set(`items/${row.grp}/${row.id}`, { id: row.id, grp: row.grp, n: row.n, label: row.label });
  }
  await waitFor(
    'client state to equal the table',
    () => sub.values.size === table.size && [...table].every(([p, v]) => jsonEqual(sub.values.get(p) ?? null, v)),
    30_000,
  );
  assert.notEqual(client.epoch, firstEpoch, 'the restarted service announces a new epoch');
  assert.equal(duplicates, 0, 'no value was emitted twice in a row to the application');
  // The writer never re-inserts a deleted id: a removal of a row still in the table would be one
  // the new epoch's answer made up (an empty or partial state taken for the whole).
  assert.deepEqual(removed.filter((p) => table.has(p)), [], 'no removal of a row that exists');
  client.close();
});
