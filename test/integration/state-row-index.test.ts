/**
 * The row index (row key → path, for paths that use columns outside the key) is kept with the
 * durable state: a restart finds it there instead of rebuilding it, and after a kill -9 it is the
 * one at the stored position, so rows that moved to another path or were deleted around the crash
 * leave no topic behind and lose none.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { open } from 'lmdb';
import { TidewireClient } from '../../client/index.ts';
import { type JsonObject, jsonEqual } from '../../core/json.ts';
import { type TestPostgres, freePort, startPostgres } from '../support/postgres.ts';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.ts';
import { waitFor } from '../support/wait.ts';
import { type WriterLoop, startWriterLoop } from '../support/writer-loop.ts';

const ROWS = 300;
const REBUILD_LOG = 'rebuilding the stored row index';

let db: TestPostgres;
let svc: ServiceProcess | undefined;

before(async () => {
  db = await startPostgres();
  await db.query('CREATE TABLE moves (id int PRIMARY KEY, branch int NOT NULL, n int NOT NULL)');
  await db.query(`INSERT INTO moves SELECT i, i % 5, 0 FROM generate_series(1, ${ROWS}) i`);
});

after(async () => {
  await svc?.kill();
  await db?.stop();
});

function config(stateDir: string): object {
  return {
    log: { level: 'info' },
    state: { dir: stateDir },
    postgres: { url: db.url, slot: 'st_rows', publication: 'st_rows', tables: [{ table: 'public.moves', path: 'moves/{branch}/{id}' }] },
  };
}

/**
 * Transactions that move rows to another branch (a new path: the old topic must go), delete rows
 * (named by key alone: only the index knows their path), insert new ones and update in place.
 */
function startMoves(url: string): WriterLoop {
  let next = ROWS + 1;
  const some = 'SELECT id FROM moves ORDER BY random() LIMIT 1';
  return startWriterLoop(url, async (client) => {
    await client.query('BEGIN');
    await client.query(`UPDATE moves SET branch = (branch + 1) % 5, n = n + 1 WHERE id = (${some})`);
    const r = Math.random();
    if (r < 0.3) await client.query(`DELETE FROM moves WHERE id = (${some})`);
    else if (r < 0.6) await client.query('INSERT INTO moves VALUES ($1, $2, 0)', [next, next++ % 5]);
    else await client.query(`UPDATE moves SET n = n + 1 WHERE id = (${some})`);
    await client.query('COMMIT');
  });
}

async function table(): Promise<Map<string, JsonObject>> {
  const out = new Map<string, JsonObject>();
  for (const r of (await db.query<{ id: number; branch: number; n: number }>('SELECT * FROM moves')).rows) out.set(`moves/${r.branch}/${r.id}`, { id: r.id, branch: r.branch, n: r.n });
  return out;
}

test('rows moving, deleted and inserted across kill -9s: the stored row index follows, is not rebuilt at restart, and leaves no topic behind', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tidewire-state-rows-'));
  const port = await freePort();
  svc = await startServiceProcess(config(dir), port);
  const client = new TidewireClient({ url: `ws://127.0.0.1:${port}/ws`, reconnect: { initialMs: 100, maxMs: 400 } });
  t.after(() => client.close());
  const sub = client.subscribe('moves/**');
  await client.connect();
  await waitFor('initial values', () => sub.live && sub.values.size === ROWS);

  const writer = startMoves(db.url);
  for (let round = 0; round < 3; round++) {
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(await svc.kill('SIGKILL'), null, 'killed, not stopped');
    await new Promise((r) => setTimeout(r, 200)); // rows keep moving while tidewire is down
    svc = await startServiceProcess(config(dir), port);
    const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { sources: Array<{ startedBy: string }> };
    assert.equal(health.sources[0].startedBy, 'resumed');
    assert.ok(!svc.output().includes(REBUILD_LOG), `restart ${round + 1} found the row index stored, it did not rebuild it`);
  }
  await new Promise((r) => setTimeout(r, 500));
  assert.ok((await writer.stop()) > 30, 'the writer ran');

  const expected = await table();
  await waitFor(
    'the client to hold exactly the table (no topic left at a path a row moved from, none missing)',
    () => sub.values.size === expected.size && [...expected].every(([p, v]) => jsonEqual(sub.values.get(p) ?? null, v)),
    30_000,
  );
  const topics = ((await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { topics: number }).topics;
  assert.equal(topics, expected.size, 'the node holds one topic per row');
  await svc.kill('SIGTERM');
  svc = undefined;
});

test('a store written before row indexes were kept: the index is rebuilt from the stored topics once, stored, and found at the next restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tidewire-state-rows-old-'));
  const port = await freePort();
  svc = await startServiceProcess(config(dir), port);
  await svc.kill('SIGTERM');
  // What a format 2 store looks like: no row index, none complete.
  const env = open({ path: dir, encoding: 'string', maxDbs: 1024 });
  const meta = env.openDB<string, string>({ name: 'meta', encoding: 'string' });
  const rows = env.openDB<string, string>({ name: 'rows/postgres:public.moves', encoding: 'string' });
  await env.transaction(() => {
    rows.clearSync();
    meta.remove('rowsComplete');
    meta.put('format', JSON.stringify({ store: 'tidewire-state', format: 2 }));
  });
  await env.close();
  await db.query('UPDATE moves SET branch = (branch + 1) % 5 WHERE id % 7 = 0');
  await db.query('DELETE FROM moves WHERE id % 11 = 0');

  svc = await startServiceProcess(config(dir), port);
  assert.ok(svc.output().includes(REBUILD_LOG), 'the index was rebuilt from the stored topics');
  const client = new TidewireClient({ url: `ws://127.0.0.1:${port}/ws` });
  t.after(() => client.close());
  const sub = client.subscribe('moves/**');
  await client.connect();
  const expected = await table();
  await waitFor('the client to hold exactly the table', () => sub.live && sub.values.size === expected.size && [...expected].every(([p, v]) => jsonEqual(sub.values.get(p) ?? null, v)), 30_000);
  client.close();
  await svc.kill('SIGTERM');
  svc = await startServiceProcess(config(dir), port);
  assert.ok(!svc.output().includes(REBUILD_LOG), 'the rebuilt index was stored: not rebuilt again');
  await svc.kill('SIGTERM');
  svc = undefined;
});

test('a table no longer mapped takes its stored row index with it: the index database is emptied, and marked incomplete', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidewire-state-rows-gone-'));
  const port = await freePort();
  const both = config(dir) as { postgres: { tables: object[] } };
  await db.query('CREATE TABLE IF NOT EXISTS other (id int PRIMARY KEY, v int NOT NULL)');
  await db.query('INSERT INTO other VALUES (1, 1) ON CONFLICT DO NOTHING');
  both.postgres.tables.push({ table: 'public.other', path: 'other/{id}' });
  svc = await startServiceProcess(both, port);
  await svc.kill('SIGTERM');
  const count = () => {
    const env = open({ path: dir, encoding: 'string', maxDbs: 1024, readOnly: true });
    const n = env.openDB<string, string>({ name: 'rows/postgres:public.moves', encoding: 'string' }).getKeysCount();
    const complete = env.openDB<string, string>({ name: 'meta', encoding: 'string' }).get('rowsComplete') ?? '[]';
    void env.close();
    return { n, complete: (JSON.parse(complete) as string[]).includes('postgres:public.moves') };
  };
  const before = count();
  assert.ok(before.n > 0 && before.complete, `the index of moves is stored (${before.n} rows)`);

  const onlyOther = config(dir) as { postgres: { tables: object[] } };
  onlyOther.postgres.tables = [{ table: 'public.other', path: 'other/{id}' }];
  svc = await startServiceProcess(onlyOther, port);
  await svc.kill('SIGTERM');
  svc = undefined;
  assert.deepEqual(count(), { n: 0, complete: false }, 'emptied with the topics of the table');
});
