/**
 * Resuming from one position (issue 12, item 4), end to end with real Postgres and the SDK: a
 * client holding 200,000 topics reconnects with the server's DEFAULT maxPayloadBytes and
 * sendQueueBytes and resumes `exact` from `{epoch, seq}`, getting only what changed while it was
 * away; removals and filter exits while away arrive as removals; past the removal log's reach the
 * answer is whole (`partial`): no spurious removal for a topic that still exists, never a blank;
 * and across a tidewire restart on durable state, in the same epoch.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { type ResumeInfo, TidewireClient } from '../../client/index.ts';
import { filters } from '../../client/filter.ts';
import type { ClientMessage, ServerMessage } from '../../core/messages.ts';
import { type JsonObject, jsonEqual } from '../../core/json.ts';
import type { TidewireService } from '../../services/service.ts';
import { RemovalLog } from '../../services/topics/removal-log.ts';
import { type TestPostgres, freePort, startPostgres } from '../support/postgres.ts';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.ts';
import { startService } from '../support/service.ts';
import { waitFor } from '../support/wait.ts';

let db: TestPostgres;
const BIG = 200_000;

before(async () => {
  db = await startPostgres();
  await db.query('CREATE TABLE big (id int PRIMARY KEY, grp int NOT NULL, n int NOT NULL, label text NOT NULL)');
  await db.query(`INSERT INTO big SELECT i, i % 16, 0, 'row ' || i FROM generate_series(1, ${BIG}) i`);
  for (const table of ['small', 'again']) {
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, grp int NOT NULL, n int NOT NULL, label text NOT NULL)`);
    await db.query(`INSERT INTO ${table} SELECT i, i % 4, 0, 'row ' || i FROM generate_series(1, 100) i`);
  }
});
after(() => db?.stop());

async function tableState(table: string, where = 'true'): Promise<Map<string, JsonObject>> {
  const rows = (await db.query<{ id: number; grp: number; n: number; label: string }>(`SELECT * FROM ${table} WHERE ${where}`)).rows;
  return new Map(rows.map((r) => [`${table}/${r.grp}/${r.id}`, { id: r.id, grp: r.grp, n: r.n, label: r.label }]));
}

/** Every connection the SDK opens, tapped: bytes in, the subscribes it sends, the positions it gets. */
function tap() {
  const sockets: WebSocket[] = [];
  const subscribes: Array<{ bytes: number; msg: ClientMessage }> = [];
  const removals: string[] = [];
  let positions = 0;
  let bytes = 0;
  class Tapped extends WebSocket {
    constructor(address: string) {
      super(address);
      sockets.push(this);
      this.addEventListener('message', (ev) => {
        bytes += Buffer.byteLength(String(ev.data));
        for (const m of JSON.parse(String(ev.data)) as ServerMessage[]) {
          if (m.type === 'position') positions++;
          if (m.type === 'removal') removals.push(m.path);
        }
      });
    }
    override send(data: string, ...rest: never[]): void {
      subscribes.push({ bytes: Buffer.byteLength(data), msg: JSON.parse(data) as ClientMessage });
      super.send(data, ...rest);
    }
  }
  return { Tapped, sockets, subscribes, removals, positions: () => positions, bytes: () => bytes };
}

function watch(client: TidewireClient, selector: string, filter?: string) {
  const emitted = new Map<string, JsonObject>();
  const resumes: ResumeInfo[] = [];
  const removed: string[] = [];
  let duplicates = 0;
  let smallest = Infinity;
  const sub = client.subscribe(
    selector,
    {
      onValue: (path, value) => {
        const last = emitted.get(path);
        if (last && jsonEqual(last, value)) duplicates++;
        emitted.set(path, value);
      },
      onRemoval: (path) => {
        emitted.delete(path);
        removed.push(path);
        if (resumes.length > 0 || sub.state !== 'live') smallest = Math.min(smallest, sub.values.size);
      },
      onResume: (info) => resumes.push(info),
    },
    filter === undefined ? {} : { filter },
  );
  return { sub, resumes, removed, duplicates: () => duplicates, smallest: () => smallest };
}

const equalTo = (values: ReadonlyMap<string, JsonObject>, table: Map<string, JsonObject>) =>
  values.size === table.size && [...table].every(([p, v]) => jsonEqual(values.get(p) ?? null, v));

describe('resume from a position', () => {
  let service: TidewireService;
  let url: string;

  before(async () => {
    // Default server limits: no maxPayloadBytes, no sendQueueBytes.
    ({ service, url } = await startService({
      server: { port: 0 },
      postgres: {
        url: db.url, slot: 'position', publication: 'position',
        tables: [{ table: 'public.big', path: 'big/{grp}/{id}' }, { table: 'public.small', path: 'small/{grp}/{id}' }, { table: 'public.again', path: 'again/{grp}/{id}' }],
      },
    }));
  });
  after(() => service?.stop());

  it('a client holding 200,000 topics resumes exact with the default limits: only what changed while away', async (t) => {
    const { Tapped, sockets, subscribes, positions, bytes } = tap();
    const client = new TidewireClient({ url, WebSocket: Tapped as never, reconnect: { initialMs: 3000, maxMs: 3000 } });
    t.after(() => client.close());
    const app = watch(client, 'big/**');
    await client.connect();
    await waitFor('200,000 values', () => app.sub.live && app.sub.values.size === BIG, 180_000);
    await db.query('UPDATE big SET n = n + 1 WHERE id = 1');
    await waitFor('a position', () => positions() > 0 && app.sub.values.get('big/1/1')?.n === 1, 30_000);
    const seen = subscribes.length;
    sockets.at(-1)!.terminate();
    // While away: updates (one row many times), deletes, inserts.
    for (let i = 0; i < 10; i++) await db.query('UPDATE big SET n = n + 1 WHERE id = 2');
    await db.query('UPDATE big SET n = n + 5 WHERE id BETWEEN 100 AND 149');
    await db.query('DELETE FROM big WHERE id BETWEEN 1000 AND 1009');
    await db.query(`INSERT INTO big SELECT i, i % 16, 0, 'new ' || i FROM generate_series(${BIG + 1}, ${BIG + 5}) i`);
    const before = bytes();
    await waitFor('resumed', () => app.resumes.length === 1, 60_000);
    const table = await tableState('big');
    await waitFor('the client to equal the table', () => equalTo(app.sub.values, table), 60_000);
    const resume = subscribes.slice(seen).find((s) => s.msg.type === 'subscribe')!;
    assert.equal(app.resumes[0].resumed, 'exact');
    assert.equal(typeof (resume.msg as { resume?: { seq?: number } }).resume?.seq, 'number', 'resumed from its position');
    assert.ok(resume.bytes < 1024, `the resume request took ${resume.bytes} B`);
    const took = bytes() - before;
    assert.ok(took < 64 * 1024, `only the changes travelled: ${took} B`);
    assert.equal(app.duplicates(), 0);
    assert.equal(app.removed.length, 10, 'exactly the deleted rows');
    t.diagnostic(`resume request ${resume.bytes} B, answer ${took} B for ${BIG} topics held`);
  });

  it('removals and filter exits while away arrive as removals', async (t) => {
    const { Tapped, sockets, positions } = tap();
    const client = new TidewireClient({ url, WebSocket: Tapped as never, reconnect: { initialMs: 2000, maxMs: 2000 }, filters });
    t.after(() => client.close());
    const app = watch(client, 'small/**', 'n < 5');
    await client.connect();
    await waitFor('live', () => app.sub.live && app.sub.values.size === 100);
    await db.query('UPDATE small SET n = 1 WHERE id = 1');
    await waitFor('a position', () => positions() > 0 && app.sub.values.get('small/1/1')?.n === 1, 30_000);
    sockets.at(-1)!.terminate();
    await db.query('UPDATE small SET n = 10 WHERE id BETWEEN 1 AND 5'); // leave the filter
    await db.query('DELETE FROM small WHERE id BETWEEN 6 AND 8');
    await db.query('UPDATE small SET n = 2 WHERE id = 9');
    await waitFor('resumed', () => app.resumes.length === 1, 30_000);
    const table = await tableState('small', 'n < 5');
    await waitFor('the client to equal the table', () => equalTo(app.sub.values, table), 30_000);
    assert.equal(app.resumes[0].resumed, 'exact');
    assert.deepEqual(app.removed.sort(), ['small/1/1', 'small/1/5', 'small/2/2', 'small/2/6', 'small/3/3', 'small/3/7', 'small/0/4', 'small/0/8'].sort());
  });

  it('past the removal log: every topic as its value, partial; no removal for a topic that exists, never a blank', async (t) => {
    const { Tapped, sockets, positions } = tap();
    const client = new TidewireClient({ url, WebSocket: Tapped as never, reconnect: { initialMs: 2000, maxMs: 2000 }, filters });
    t.after(() => client.close());
    const app = watch(client, 'again/**');
    await client.connect();
    await waitFor('live', () => app.sub.live && app.sub.values.size === 100);
    await db.query('UPDATE again SET n = 1 WHERE id = 1');
    await waitFor('a position', () => positions() > 0 && app.sub.values.get('again/1/1')?.n === 1, 30_000);
    // A log of one entry: the two removals below push its floor past the client's position.
    service.store.removals = new RemovalLog(1, service.store.position);
    sockets.at(-1)!.terminate();
    await db.query('DELETE FROM again WHERE id IN (10, 11)');
    await db.query('UPDATE again SET n = 7 WHERE id = 20');
    await waitFor('resumed', () => app.resumes.length === 1, 30_000);
    const table = await tableState('again');
    await waitFor('the client to equal the table', () => equalTo(app.sub.values, table), 30_000);
    assert.equal(app.resumes[0].resumed, 'partial');
    assert.deepEqual(app.removed.sort(), ['again/2/10', 'again/3/11'], 'only the deleted rows, reported once the answer was whole');
    assert.ok(app.smallest() >= 98, `never fewer than the rows that exist (${app.smallest()})`);
    assert.equal(app.duplicates(), 0);
  });
});

describe('resume from a position across a restart', () => {
  let svc: ServiceProcess | undefined;
  after(() => svc?.kill());

  it('SIGTERM, start on the same state: the same epoch, exact, only the changes made while down', async (t) => {
    await db.query('CREATE TABLE durable (id int PRIMARY KEY, grp int NOT NULL, n int NOT NULL, label text NOT NULL)');
    await db.query(`INSERT INTO durable SELECT i, i % 4, 0, 'row ' || i FROM generate_series(1, 2000) i`);
    const port = await freePort();
    const config = {
      postgres: { url: db.url, slot: 'durable', publication: 'durable', tables: [{ table: 'public.durable', path: 'durable/{grp}/{id}' }] },
      state: { dir: mkdtempSync(join(tmpdir(), 'tidewire-position-state-')) },
      log: { level: 'warn' },
    };
    svc = await startServiceProcess(config, port);
    const { Tapped, subscribes, positions, bytes } = tap();
    const client = new TidewireClient({ url: `ws://127.0.0.1:${port}/ws`, WebSocket: Tapped as never, reconnect: { initialMs: 200, maxMs: 500 } });
    t.after(() => client.close());
    const app = watch(client, 'durable/**');
    await client.connect();
    await waitFor('live', () => app.sub.live && app.sub.values.size === 2000, 60_000);
    await db.query('UPDATE durable SET n = n + 1 WHERE id BETWEEN 1 AND 10');
    await db.query('DELETE FROM durable WHERE id = 50');
    await waitFor('a position', () => positions() > 0 && app.sub.values.get('durable/1/1')?.n === 1 && !app.sub.values.has('durable/2/50'), 30_000);
    const epoch = client.epoch;
    await svc.kill('SIGTERM');
    await db.query('UPDATE durable SET n = n + 1 WHERE id BETWEEN 1 AND 5');
    await db.query('DELETE FROM durable WHERE id IN (60, 61)');
    await db.query(`INSERT INTO durable VALUES (3000, 0, 0, 'new')`);
    const seen = subscribes.length;
    const before = bytes();
    svc = await startServiceProcess(config, port);
    await waitFor('resumed', () => app.resumes.length === 1, 60_000);
    const table = await tableState('durable');
    await waitFor('the client to equal the table', () => equalTo(app.sub.values, table), 60_000);
    assert.equal(client.epoch, epoch, 'the same epoch');
    assert.equal(app.resumes[0].resumed, 'exact');
    const resume = subscribes.slice(seen).find((s) => s.msg.type === 'subscribe')!;
    assert.equal(typeof (resume.msg as { resume?: { seq?: number } }).resume?.seq, 'number');
    assert.ok(bytes() - before < 16 * 1024, `only the changes travelled: ${bytes() - before} B`);
    assert.deepEqual(app.removed.sort(), ['durable/0/60', 'durable/1/61', 'durable/2/50'].sort());
    assert.equal(app.duplicates(), 0);
  });
});
