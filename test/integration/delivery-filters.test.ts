/**
 * Server-side filters end to end with real Postgres: a row that starts matching arrives as a
 * value, one that stops matching as a removal with reason `filter`, on inserts, updates that move
 * rows in and out, deletes, and across a reconnect (resume); numeric and int8 columns (strings on
 * the wire) compare numerically; a filter on a field the session may not see treats it as absent;
 * invalid filters are refused with the position and what was expected.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { TidewireClient } from '../../client/index.ts';
import { filters } from '../../client/filter.ts';
import type { ServerMessage } from '../../core/messages.ts';
import type { JsonObject } from '../../core/json.ts';
import type { TidewireService } from '../../services/service.ts';
import { type TestPostgres, startPostgres } from '../support/postgres.ts';
import { startService } from '../support/service.ts';
import { waitFor } from '../support/wait.ts';

const SECRET = 'delivery-filters-secret-0123456789abcdef';
const FILTER = "status = 'open' and total >= 100";

let db: TestPostgres;
let service: TidewireService;
let url: string;

before(async () => {
  db = await startPostgres();
  await db.query(`CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, total numeric(12,2) NOT NULL, big int8 NOT NULL, secret text)`);
  await db.query(`INSERT INTO orders VALUES
    (1, 'open', 150.00, 1, 'x'), (2, 'open', 99.00, 1, 'x'), (3, 'paid', 500.00, 1, 'y'), (4, 'open', 1000.00, 9007199254740993, NULL)`);
  ({ service, url } = await startService({
    server: { port: 0, maxPayloadBytes: 4096 },
    postgres: { url: db.url, slot: 'filters', publication: 'filters', tables: [{ table: 'public.orders', path: 'orders/{id}', tenant: 'acme' }] },
    security: {
      jwt: { algorithms: ['HS256'], secret: SECRET },
      roles: { analytics: { read: [{ pattern: 'orders/**', fields: { exclude: ['secret'] } }] }, full: { read: ['orders/**'] } },
    },
  }));
});

after(async () => {
  await service?.stop();
  await db?.stop();
});

function token(roles: string[]): Promise<string> {
  return new SignJWT({ sub: 'u1', tenant: 'acme', roles, exp: Math.floor(Date.now() / 1000) + 600 })
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode(SECRET));
}

/** A protocol-level client that records every message. */
async function rawClient(roles = ['full']) {
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${await token(roles)}` } });
  const messages: ServerMessage[] = [];
  ws.on('message', (data) => messages.push(...(JSON.parse(String(data)) as ServerMessage[])));
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  let pings = 0;
  const c = {
    ws,
    messages,
    async request(message: object, done: (m: ServerMessage) => boolean): Promise<ServerMessage[]> {
      const from = messages.length;
      ws.send(JSON.stringify(message));
      await waitFor('an answer', () => messages.slice(from).some(done), 5000, 5);
      return messages.slice(from);
    },
    /** Everything the server produced for this client before now has arrived. */
    async sync(): Promise<void> {
      const id = `p${++pings}`;
      await c.request({ type: 'ping', id }, (m) => m.type === 'pong' && m.id === id);
    },
    since(from: number): ServerMessage[] {
      return messages.slice(from).filter((m) => m.type !== 'pong');
    },
  };
  return c;
}

/** Waits until the service has applied everything committed so far (a marker row change arrives). */
let markerN = 0;
async function settled(c: Awaited<ReturnType<typeof rawClient>>): Promise<void> {
  const n = ++markerN;
  await db.query('UPDATE orders SET big = big WHERE false'); // nothing: the marker is the next statement
  await db.query(`INSERT INTO orders VALUES (${1000 + n}, 'marker', 0, 0, NULL)`);
  await waitFor('the marker', async () => {
    await c.sync();
    return service.store.get(`orders/${1000 + n}`) !== undefined;
  }, 10_000, 20);
  await c.sync();
}

const summary = (ms: ServerMessage[]) =>
  ms.filter((m) => m.type === 'value' || m.type === 'delta' || m.type === 'removal').map((m) => {
    const t = m as { type: string; path: string; reason?: string };
    return t.reason ? `${t.type}:${t.path}:${t.reason}` : `${t.type}:${t.path}`;
  });

describe('filters', () => {
  it('initial values, then enter and leave on inserts, updates and deletes', async (t) => {
    const c = await rawClient();
    t.after(() => c.ws.close());
    const answer = await c.request({ type: 'subscribe', id: 'f', selector: 'orders/*', filter: FILTER }, (m) => m.type === 'subscribed');
    // total is numeric (a string on the wire): 99.00 < 100 numerically, although "99.00" > "100" as text.
    assert.deepEqual(summary(answer).sort(), ['value:orders/1', 'value:orders/4']);
    assert.deepEqual(answer.at(-1), { type: 'subscribed', id: 'f', selector: 'orders/*', topics: 2 });

    const mark = c.messages.length;
    await db.query(`INSERT INTO orders VALUES (10, 'open', 100, 1, NULL), (11, 'open', 5, 1, NULL)`); // 10 enters, 11 does not
    await db.query(`UPDATE orders SET total = 120 WHERE id = 2`); // 2 moves in
    await db.query(`UPDATE orders SET status = 'paid' WHERE id = 1`); // 1 moves out
    await db.query(`UPDATE orders SET total = 2000 WHERE id = 4`); // 4 changes inside: a delta
    await db.query(`UPDATE orders SET total = 6 WHERE id = 11`); // 11 changes outside: nothing
    await db.query(`UPDATE orders SET status = 'open' WHERE id = 3`); // 3 moves in
    await db.query(`DELETE FROM orders WHERE id IN (3, 11)`); // 3 (in) removed, 11 (out) nothing
    await settled(c);
    assert.deepEqual(summary(c.since(mark)), [
      'value:orders/10',
      'value:orders/2',
      'removal:orders/1:filter',
      'delta:orders/4',
      'value:orders/3',
      'removal:orders/3',
    ]);
    const delta = c.since(mark).find((m) => m.type === 'delta')!;
    assert.deepEqual(delta, { type: 'delta', path: 'orders/4', version: 2, patch: [{ op: 'replace', path: '/total', value: '2000.00' }] });
  });

  it('int8 beyond 2^53 compares exactly; invalid filters are refused with where and what', async (t) => {
    const c = await rawClient();
    t.after(() => c.ws.close());
    const big = await c.request({ type: 'subscribe', id: 'b', selector: 'orders/*', filter: 'big > 9007199254740992' }, (m) => m.type === 'subscribed');
    assert.deepEqual(summary(big), ['value:orders/4']);
    const cases: Array<[string, string]> = [
      ["status = 'open' and (total > )", "unexpected ')' at 30; expected a value to compare total with"],
      ['status', 'unexpected end of filter at 7; expected an operator (=, !=, <, <=, >, >=, in, not in, is null, is not null)'],
      ["status = 'open", "unterminated string starting at 10; close it with '"],
      ['total = null', "null at 9 cannot be compared: use 'is null' or 'is not null'"],
    ];
    for (const [filter, message] of cases) {
      const got = await c.request({ type: 'subscribe', id: 'bad', selector: 'orders/*', filter }, (m) => m.type === 'error');
      assert.deepEqual(got.at(-1), { type: 'error', code: 'FILTER_INVALID', message, id: 'bad' });
    }
    const long = await c.request({ type: 'subscribe', id: 'bad', selector: 'orders/*', filter: `id in (${Array.from({ length: 300 }, (_, i) => i).join(',')})` }, (m) => m.type === 'error');
    assert.match((long.at(-1) as { message: string }).message, /limited to 256 values/);
    await c.sync(); // the connection stays usable
  });

  it('a filter on a field the session may not see treats it as absent', async (t) => {
    const analyst = await rawClient(['analytics']);
    t.after(() => analyst.ws.close());
    const secretIs = await analyst.request({ type: 'subscribe', id: 'a', selector: 'orders/*', filter: "secret = 'x'" }, (m) => m.type === 'subscribed');
    assert.deepEqual(summary(secretIs), [], 'no topic matches on a hidden field, whatever its value');
    const secretNull = await analyst.request({ type: 'subscribe', id: 'b', selector: 'orders/*', filter: "secret is null and status = 'open'" }, (m) => m.type === 'subscribed');
    const values = secretNull.filter((m) => m.type === 'value') as Array<{ value: JsonObject }>;
    assert.ok(values.length >= 2);
    for (const v of values) assert.equal('secret' in v.value, false, 'the field stays hidden');
    // A change to the hidden field alone sends nothing, even to a filter naming it.
    const mark = analyst.messages.length;
    await db.query(`UPDATE orders SET secret = 'z' WHERE id = 2`);
    await settled(analyst);
    assert.deepEqual(summary(analyst.since(mark)).filter((s) => !s.includes('/10')), []);
  });

  it('the SDK reports enter and leave per subscription, and across a reconnect', async (t) => {
    const sockets: WebSocket[] = [];
    // While `away`, reconnects go to a port nobody listens on: the changes below happen while the
    // client is away however long the service takes to apply them (a reconnect delay alone raced
    // a loaded machine).
    let away = false;
    class Tapped extends WebSocket {
      constructor(address: string) {
        super(away ? 'ws://127.0.0.1:1/ws' : address);
        sockets.push(this);
      }
    }
    const client = new TidewireClient({
      url, WebSocket: Tapped as never, token: () => token(['full']), reconnect: { initialMs: 1500, maxMs: 2000 }, filters,
    });
    t.after(() => client.close());
    const events: string[] = [];
    const open = client.subscribe('orders/*', {
      onValue: (p) => events.push(`value ${p}`),
      onRemoval: (p) => events.push(`removal ${p}`),
      onResume: (i) => events.push(`resumed ${i.resumed}`),
    }, { filter: "status = 'open' and total >= 1000" });
    await client.connect();
    await waitFor('live', () => open.live);
    const before = new Set(open.values.keys());
    assert.deepEqual([...before].sort(), ['orders/4']);
    events.length = 0;

    const states: string[] = [];
    client.onState((s) => states.push(s)); // a jittered reconnect may pass 'reconnecting' within a millisecond
    away = true;
    sockets[0].terminate(); // the connection drops
    await waitFor('reconnecting', () => states.includes('reconnecting'));
    await db.query(`UPDATE orders SET total = 999 WHERE id = 4`); // leaves while disconnected
    await db.query(`INSERT INTO orders VALUES (20, 'open', 5000, 1, NULL)`); // enters while disconnected
    await waitFor('the service to have the changes', () => service.store.get('orders/20') !== undefined && Number(service.store.get('orders/4')?.value.total) === 999);
    away = false;
    await waitFor('resumed', () => events.some((e) => e.startsWith('resumed')), 10_000);
    assert.deepEqual(events.slice(0, 2).sort(), ['removal orders/4', 'value orders/20']);
    assert.deepEqual(events.slice(2), ['resumed exact'], 'reported after what changed was applied');
    assert.deepEqual([...open.values.keys()], ['orders/20']);
  });
});
