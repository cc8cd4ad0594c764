/**
 * Resuming after a reconnect, end to end with real Postgres: the SDK reconnects by itself during a
 * write burst and tells the server the versions it holds; the server sends only what changed
 * (deltas with `base`), removals for what is gone; the client's state ends equal to the table and
 * no message ever applies to a version the client does not hold (no silent gap). When the history
 * no longer reaches back the resume is `partial`; after a server restart (kill -9, a new process,
 * a new epoch) it is `fresh` and values that did not change are not reported again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { type ResumeInfo, TidewireClient } from '../../client/index.ts';
import { applyPatch } from '../../client/json-patch.ts';
import type { ServerMessage } from '../../core/messages.ts';
import { type JsonObject, jsonEqual } from '../../core/json.ts';
import type { TidewireService } from '../../services/service.ts';
import { type TestPostgres, freePort, startPostgres } from '../support/postgres.ts';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.ts';
import { startService } from '../support/service.ts';
import { waitFor } from '../support/wait.ts';
import { type WriterLoop, startWriterLoop } from '../support/writer-loop.ts';

let db: TestPostgres;

before(async () => {
  db = await startPostgres();
  for (const table of ['items', 'crash']) {
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, grp int NOT NULL, n int NOT NULL, label text NOT NULL)`);
    await db.query(`INSERT INTO ${table} SELECT i, i % 4, 0, 'label ' || i || repeat('.', 40) FROM generate_series(1, 200) i`);
  }
});

after(() => db?.stop());

/** A steady mix of updates, inserts and deletes (one transaction each) until stopped. */
function startWriter(table: string, pauseMs = 2): WriterLoop {
  let next = 1000;
  return startWriterLoop(
    db.url,
    async (client) => {
      const r = Math.random();
      if (r < 0.75) await client.query(`UPDATE ${table} SET n = n + 1 WHERE id = (SELECT id FROM ${table} ORDER BY random() LIMIT 1)`);
      else if (r < 0.88) await client.query(`INSERT INTO ${table} VALUES ($1, $2, 0, $3)`, [next, next % 4, `l${next++}`]);
      else await client.query(`DELETE FROM ${table} WHERE id = (SELECT id FROM ${table} ORDER BY random() LIMIT 1)`);
    },
    { pauseMs },
  );
}

async function tableState(table: string): Promise<Map<string, JsonObject>> {
  const rows = (await db.query<{ id: number; grp: number; n: number; label: string }>(`SELECT * FROM ${table}`)).rows;
  return new Map(rows.map((r) => [`${table}/${r.grp}/${r.id}`, { id: r.id, grp: r.grp, n: r.n, label: r.label }]));
}

/**
 * Every connection the SDK opens, tapped: each frame is applied to one replica that lives across
 * connections, asserting that every delta applies to exactly the version held.
 */
function tap() {
  const sockets: WebSocket[] = [];
  const replica = new Map<string, { version: number; value: JsonObject }>();
  const problems: string[] = [];
  let bytes = 0;
  class Tapped extends WebSocket {
    constructor(address: string) {
      super(address);
      sockets.push(this);
      this.addEventListener('message', (ev) => {
        bytes += Buffer.byteLength(String(ev.data));
        for (const m of JSON.parse(String(ev.data)) as ServerMessage[]) {
          if (m.type === 'value') replica.set(m.path, { version: m.version, value: m.value });
          else if (m.type === 'removal') replica.delete(m.path);
          else if (m.type === 'delta') {
            const held = replica.get(m.path);
            const base = m.base ?? m.version - 1;
            if (held?.version !== base) problems.push(`${m.path} v${m.version} (base ${base}) on v${held?.version}`);
            else replica.set(m.path, { version: m.version, value: applyPatch(held.value, m.patch) as JsonObject });
          }
        }
      });
    }
  }
  return { Tapped, sockets, replica, problems, bytes: () => bytes };
}

/** The application's view: every emitted value per path, to catch duplicates. */
function watch(client: TidewireClient, selector: string) {
  const emitted = new Map<string, JsonObject>();
  const resumes: ResumeInfo[] = [];
  let duplicates = 0;
  const sub = client.subscribe(selector, {
    onValue: (path, value) => {
      const last = emitted.get(path);
      if (last && jsonEqual(last, value)) duplicates++;
      emitted.set(path, value);
    },
    onRemoval: (path) => emitted.delete(path),
    onResume: (info) => resumes.push(info),
  });
  return { sub, resumes, duplicates: () => duplicates };
}

describe('resume', () => {
  let service: TidewireService;
  let url: string;

  before(async () => {
    ({ service, url } = await startService({
      server: { port: 0 },
      postgres: { url: db.url, slot: 'resume', publication: 'resume', tables: [{ table: 'public.items', path: 'items/{grp}/{id}' }] },
    }));
  });
  after(() => service?.stop());

  it('reconnects during a write burst: only what changed is sent, no gap, state equals the table', async (t) => {
    const { Tapped, sockets, replica, problems, bytes } = tap();
    const client = new TidewireClient({ url, WebSocket: Tapped as never, reconnect: { initialMs: 100, maxMs: 200 } });
    t.after(() => client.close());
    const app = watch(client, 'items/**');
    await client.connect();
    await waitFor('initial values', () => app.sub.live && app.sub.values.size === 200);
    const snapshotBytes = bytes();

    // Every state the client passes through: with jittered backoff the reconnect may come within
    // a millisecond, faster than any poll of client.state would see 'reconnecting'.
    const states: string[] = [];
    client.onState((s) => states.push(s));
    const writer = startWriter('items');
    const resumeBytes: number[] = [];
    for (let drop = 1; drop <= 3; drop++) {
      await new Promise((r) => setTimeout(r, 700));
      const seen = states.length;
      sockets.at(-1)!.terminate();
      await waitFor('reconnecting', () => states.slice(seen).includes('reconnecting'));
      const before = bytes();
      await waitFor(`resume ${drop}`, () => app.resumes.length === drop, 10_000);
      resumeBytes.push(bytes() - before);
    }
    await new Promise((r) => setTimeout(r, 300));
    const statements = await writer.stop();
    const table = await tableState('items');
    await waitFor('the client to equal the table', () =>
      app.sub.values.size === table.size && [...table].every(([p, v]) => jsonEqual(app.sub.values.get(p) ?? null, v)), 20_000);

    assert.ok(statements > 300, `${statements} statements`);
    assert.equal(sockets.length, 4, 'three reconnects');
    assert.deepEqual(app.resumes.map((r) => r.resumed), ['exact', 'exact', 'exact']);
    assert.deepEqual(problems, [], 'every delta applied to the version held: no gap');
    for (const [path, value] of table) assert.deepEqual(replica.get(path)?.value, value, path);
    assert.equal(replica.size, table.size);
    assert.equal(app.duplicates(), 0, 'no value reported twice in a row');
    // Only what changed while away travels: far less than the snapshot each time.
    for (const b of resumeBytes) assert.ok(b < snapshotBytes / 3, `a resume took ${b} B, the snapshot ${snapshotBytes} B`);
    t.diagnostic(`snapshot ${snapshotBytes} B; resumes ${resumeBytes.join(', ')} B`);
  });

  it('from its position, a topic the history no longer reaches comes whole, the rest as changes: still exact', async (t) => {
    const { Tapped, sockets, problems } = tap();
    const client = new TidewireClient({ url, WebSocket: Tapped as never, reconnect: { initialMs: 2000, maxMs: 2000 } });
    t.after(() => client.close());
    const app = watch(client, 'items/**');
    await client.connect();
    await waitFor('live', () => app.sub.live);
    const [hot] = [...app.sub.values.keys()];
    const id = app.sub.values.get(hot)!.id as number;
    sockets[0].terminate();
    // More changes of one row than the history keeps (64 per topic) while the client is away.
    for (let i = 0; i < 80; i++) await db.query('UPDATE items SET n = n + 1 WHERE id = $1', [id]);
    await db.query('UPDATE items SET n = n + 1 WHERE id = (SELECT min(id) FROM items WHERE id <> $1)', [id]);
    await waitFor('resumed', () => app.resumes.length === 1, 10_000);
    // The SDK resumed from its position: nothing was missed, the hot topic was sent as its value.
    assert.equal(app.resumes[0].resumed, 'exact');
    const table = await tableState('items');
    await waitFor('the client to equal the table', () => [...table].every(([p, v]) => jsonEqual(app.sub.values.get(p) ?? null, v)));
    assert.deepEqual(problems, []);
  });
});

describe('restart', () => {
  let svc: ServiceProcess | undefined;
  after(() => svc?.kill());

  it('kill -9 and a new process (new epoch): fresh values, no duplicate, no ghost, equal to the table', async (t) => {
    const port = await freePort();
    const config = { postgres: { url: db.url, slot: 'crash', publication: 'crash', tables: [{ table: 'public.crash', path: 'crash/{grp}/{id}' }] }, log: { level: 'warn' } };
    svc = await startServiceProcess(config, port);
    const { Tapped, problems } = tap();
    const client = new TidewireClient({ url: `ws://127.0.0.1:${port}/ws`, WebSocket: Tapped as never, reconnect: { initialMs: 100, maxMs: 300 } });
    t.after(() => client.close());
    const app = watch(client, 'crash/**');
    await client.connect();
    await waitFor('initial values', () => app.sub.live && app.sub.values.size === 200);
    const epoch = client.epoch;

    const writer = startWriter('crash');
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(await svc.kill('SIGKILL'), null);
    await new Promise((r) => setTimeout(r, 300)); // writes continue while tidewire is down
    svc = await startServiceProcess(config, port);
    await waitFor('resumed', () => app.resumes.length >= 1, 20_000);
    await new Promise((r) => setTimeout(r, 500));
    await writer.stop();

    const table = await tableState('crash');
    await waitFor('the client to equal the table', () =>
      app.sub.values.size === table.size && [...table].every(([p, v]) => jsonEqual(app.sub.values.get(p) ?? null, v)), 20_000);
    assert.notEqual(client.epoch, epoch);
    assert.deepEqual(app.resumes.map((r) => [r.resumed, r.epochChanged]), [['fresh', true]]);
    assert.deepEqual(problems, []);
    assert.equal(app.duplicates(), 0, 'values that did not change were not reported again');
  });
});
