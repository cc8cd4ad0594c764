/**
 * A source transaction reaches each client together, in one frame, in commit order, never split
 * by the flush timer: with concurrent transfers between accounts, the sum of all balances is the
 * same after every frame a client applies (and in every handler call of the SDK). A transaction
 * too large for one frame arrives as consecutive frames marked as its parts, applied as one.
 * Real Postgres, the whole service in-process.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import AjvModule from 'ajv';
import pg from 'pg';
import WebSocket from 'ws';
import { TidewireClient } from '../../client/index.ts';
import { applyPatch } from '../../client/json-patch.ts';
import type { ServerMessage } from '../../core/messages.ts';
import type { JsonObject } from '../../core/json.ts';
import type { TidewireService } from '../../services/service.ts';
import { type TestPostgres, startPostgres } from '../support/postgres.ts';
import { startService } from '../support/service.ts';
import { waitFor } from '../support/wait.ts';

const Ajv = (AjvModule as unknown as { default: typeof AjvModule }).default ?? AjvModule;
const schemaDir = new URL('../../schemas/protocol/', import.meta.url);
const ajv = new Ajv({ strict: true });
for (const f of readdirSync(schemaDir).filter((f) => f.endsWith('.schema.json'))) ajv.addSchema(JSON.parse(readFileSync(new URL(f, schemaDir), 'utf8')));
const validFrame = ajv.getSchema('https://tidewire.dev/schemas/protocol/server-frame.schema.json')!;

const ACCOUNTS = 50;
const START = 1000;

let db: TestPostgres;
let service: TidewireService;
let url: string;

before(async () => {
  db = await startPostgres();
  await db.query('CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL, note text NOT NULL)');
  await db.query(`INSERT INTO accounts SELECT i, ${START}, 'n' FROM generate_series(1, ${ACCOUNTS}) i`);
  await db.query('CREATE TABLE bulk (id int PRIMARY KEY, n int NOT NULL, body text NOT NULL)');
  await db.query(`INSERT INTO bulk SELECT i, 0, repeat('a', 400) FROM generate_series(1, 4000) i`);
  ({ service, url } = await startService({
    server: { port: 0 },
    postgres: {
      url: db.url, slot: 'txn', publication: 'txn',
      tables: [{ table: 'public.accounts', path: 'accounts/{id}' }, { table: 'public.bulk', path: 'bulk/{id}' }],
    },
  }));
});

after(async () => {
  await service?.stop();
  await db?.stop();
});

/** A protocol-level client: every frame checked against the schema, parts of a group put together. */
async function rawClient(selector: string) {
  const ws = new WebSocket(url);
  const frames: ServerMessage[][] = [];
  /** Groups as applied: a whole frame, or every part of a marked group. */
  const applied: ServerMessage[][] = [];
  let parts: ServerMessage[] | null = null;
  let live = false;
  ws.on('message', (data) => {
    const frame = JSON.parse(String(data)) as ServerMessage[];
    assert.ok(validFrame(frame), ajv.errorsText(validFrame.errors));
    frames.push(frame);
    const first = frame[0];
    if (first.type === 'txn') {
      if (first.part === 1) parts = [];
      assert.ok(parts, 'a part 1 came first');
      parts.push(...frame.slice(1));
      if (first.part === first.parts) {
        applied.push(parts);
        if (parts.some((m) => m.type === 'subscribed')) live = true;
        parts = null;
      }
      return;
    }
    assert.equal(parts, null, 'no other frame between the parts of a group');
    applied.push(frame);
    if (frame.some((m) => m.type === 'subscribed')) live = true;
  });
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  ws.send(JSON.stringify({ type: 'subscribe', id: 's', selector }));
  await waitFor('subscribed', () => live);
  return { ws, frames, applied };
}

/** Applies messages to a replica, checking every delta's base. */
function apply(replica: Map<string, { version: number; value: JsonObject }>, messages: ServerMessage[]): void {
  for (const m of messages) {
    if (m.type === 'value') replica.set(m.path, { version: m.version, value: m.value });
    else if (m.type === 'delta') {
      const held = replica.get(m.path);
      assert.equal(held?.version, m.base ?? m.version - 1, `delta ${m.path} v${m.version} on v${held?.version}`);
      replica.set(m.path, { version: m.version, value: applyPatch(held!.value, m.patch) as JsonObject });
    } else if (m.type === 'removal') replica.delete(m.path);
  }
}

describe('transactions', () => {
  it('concurrent transfers: every frame holds whole transactions, so balances always sum up', async (t) => {
    const raw = await rawClient('accounts/*');
    const client = new TidewireClient({ url });
    t.after(() => {
      client.close();
      raw.ws.close();
    });
    const torn: number[] = [];
    let calls = 0;
    const sub = client.subscribe('accounts/*', {
      onValue: () => {
        if (!sub.live) return;
        calls++;
        let sum = 0;
        for (const v of sub.values.values()) sum += v.balance as number;
        if (sum !== ACCOUNTS * START) torn.push(sum);
      },
    });
    await client.connect();
    await waitFor('SDK live', () => sub.live && sub.values.size === ACCOUNTS);

    const writers = await Promise.all(Array.from({ length: 4 }, async () => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      return c;
    }));
    let transfers = 0;
    const until = Date.now() + 3000;
    await Promise.all(writers.map(async (c, w) => {
      while (Date.now() < until) {
        const a = 1 + ((transfers * 7 + w) % ACCOUNTS);
        const b = 1 + ((transfers * 13 + w * 3 + 1) % ACCOUNTS);
        if (a === b) { transfers++; continue; }
        // Ordered locking so concurrent transfers never deadlock; a third row is touched sometimes.
        const [lo, hi] = a < b ? [a, b] : [b, a];
        await c.query('BEGIN');
        await c.query('UPDATE accounts SET balance = balance - 7 WHERE id = $1', [lo]);
        await c.query('UPDATE accounts SET balance = balance + 7 WHERE id = $1', [hi]);
        if (transfers % 5 === 0) await c.query("UPDATE accounts SET note = note || 'x' WHERE id = $1", [hi]);
        await c.query('COMMIT');
        transfers++;
      }
    }));
    await Promise.all(writers.map((c) => c.end()));
    const table = new Map((await db.query<{ id: number; balance: number }>('SELECT id, balance FROM accounts')).rows.map((r) => [`accounts/${r.id}`, r.balance]));
    await waitFor('the SDK to reach the table', () => [...table].every(([p, b]) => sub.values.get(p)?.balance === b), 20_000);
    await waitFor('the raw client to reach the table', () => {
      const replica = new Map<string, { version: number; value: JsonObject }>();
      for (const g of raw.applied) apply(replica, g);
      return [...table].every(([p, b]) => replica.get(p)?.value.balance === b);
    }, 20_000);

    // After every group the raw client applied, the balances sum to the constant total.
    const replica = new Map<string, { version: number; value: JsonObject }>();
    let checked = 0;
    for (const group of raw.applied) {
      apply(replica, group);
      if (replica.size < ACCOUNTS) continue;
      let sum = 0;
      for (const { value } of replica.values()) sum += value.balance as number;
      assert.equal(sum, ACCOUNTS * START, `balances sum after frame ${checked}`);
      checked++;
    }
    assert.ok(transfers > 200, `${transfers} transfers`);
    assert.ok(raw.frames.length > 50, `${raw.frames.length} frames: many flushes happened during the run`);
    assert.ok(checked > 50, `${checked} frames checked`);
    assert.deepEqual(torn, [], 'no SDK handler ever saw half a transfer');
    assert.ok(calls > 200, `${calls} handler calls checked`);
  });

  it('a transaction larger than a frame arrives as marked parts, applied as one', async (t) => {
    const raw = await rawClient('bulk/*');
    t.after(() => raw.ws.close());
    const client = new TidewireClient({ url });
    t.after(() => client.close());
    let armed = false;
    let firstCall: number | null = null;
    const sub = client.subscribe('bulk/*', {
      onValue: () => {
        // At the first handler call of the transaction, every row of it is already applied.
        if (armed && firstCall === null) firstCall = [...sub.values.values()].filter((v) => v.n === 1).length;
      },
    });
    await client.connect();
    await waitFor('SDK live', () => sub.live && sub.values.size === 4000);
    armed = true;
    const mark = raw.frames.length;
    await db.query("UPDATE bulk SET n = 1, body = repeat('b', 400)"); // ~1.8 MB of deltas in one transaction
    await waitFor('the SDK to see the transaction', () => firstCall !== null, 20_000);
    assert.equal(firstCall, 4000, 'the handlers ran after the whole transaction was applied');
    await waitFor('the raw client to get every part', () => raw.frames.slice(mark).some((f) => f[0].type === 'txn' && f[0].part === f[0].parts));
    const frames = raw.frames.slice(mark);
    const markers = frames.map((f) => f[0]).filter((m) => m.type === 'txn');
    assert.ok(markers.length >= 2, `${markers.length} parts`);
    markers.forEach((m, i) => {
      assert.equal(m.part, i + 1);
      assert.equal(m.parts, markers.length);
      assert.equal(m.seq, markers[0].seq);
    });
    const changed = frames.flatMap((f) => f).filter((m) => m.type === 'delta' || m.type === 'value');
    assert.equal(changed.length, 4000, 'every row once');
    for (const f of frames) assert.ok(JSON.stringify(f).length <= (1 << 20) + 64, 'each frame within the 1 MiB limit');
  });
});
