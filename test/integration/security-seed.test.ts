/**
 * The seed scenario end to end with a real Postgres: one `orders` table streamed by the
 * PostgresConnector through Pipeline → InProcessHandoff → DistributionServer with security, and
 * three clients on real WebSockets with signed tokens:
 *   trader (customer_id 7)  sees orders/7/** only;
 *   regulator               sees every order;
 *   analytics               sees every order without customer_name and email.
 * Each holds exactly what its role allows on the snapshot and after every change (applied with
 * the SDK's strict version rule), an update touching only email sends analytics nothing, and a
 * client of another tenant sees nothing at all.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import pino from 'pino';
import WebSocket from 'ws';
import { applyPatch } from '../../client/json-patch.ts';
import { PostgresConnector } from '../../connectors/postgres/index.ts';
import type { IngestSink } from '../../core/ingest.ts';
import { DistributionServer } from '../../services/distribution/index.ts';
import type { ServerMessage } from '../../core/messages.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import type { JsonObject } from '../../core/json.ts';
import { Pipeline } from '../../services/pipeline.ts';
import { SecurityManager } from '../../services/security/index.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import { type TopicUpdate } from '../../core/topic.ts';
import { type TestPostgres, startPostgres } from '../support/postgres.ts';

const SECRET = 'seed-scenario-secret-seed-scenario-secret';
const HIDDEN_FROM_ANALYTICS = ['customer_name', 'email'];
const logger = pino({ level: process.env.TIDEWIRE_TEST_LOG ?? 'silent' });

/** The configuration documented in docs/SECURITY.md (trader / regulator / analytics). */
const SECURITY = {
  jwt: { algorithms: ['HS256'], secret: SECRET, issuer: 'https://idp.example', audience: 'tidewire' },
  roles: {
    trader: { read: ['orderbook/**', 'orders/{claims.customer_id}/**'] },
    regulator: { read: ['orders/**'] },
    analytics: { read: [{ pattern: 'orders/**', fields: { exclude: HIDDEN_FROM_ANALYTICS } }] },
  },
};

class Client {
  readonly held = new Map<string, { version: number; value: JsonObject }>();
  /** Topic messages received, in order. */
  readonly topicMessages: ServerMessage[] = [];
  private replies: ServerMessage[] = [];
  private waiters: Array<() => void> = [];
  private n = 0;

  private constructor(readonly name: string, readonly ws: WebSocket) {
    ws.on('message', (data) => {
      for (const m of JSON.parse(String(data)) as ServerMessage[]) {
        if (m.type === 'value') this.held.set(m.path, { version: m.version, value: m.value });
        else if (m.type === 'removal') this.held.delete(m.path);
        else if (m.type === 'delta') {
          const h = this.held.get(m.path);
          assert.ok(h && h.version === m.version - 1, `${name}: delta ${m.path}@${m.version} onto ${h?.version} (a gap)`);
          this.held.set(m.path, { version: m.version, value: applyPatch(h.value, m.patch) as JsonObject });
        } else {
          this.replies.push(m);
          continue;
        }
        this.topicMessages.push(m);
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async open(name: string, port: number, claims: Record<string, unknown>): Promise<Client> {
    const token = await new SignJWT({ iss: 'https://idp.example', aud: 'tidewire', tenant: 'acme', ...claims })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(name)
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(SECRET));
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { authorization: `Bearer ${token}` } });
    const c = new Client(name, ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return c;
  }

  async reply(pred: (m: ServerMessage) => boolean): Promise<ServerMessage> {
    for (;;) {
      const i = this.replies.findIndex(pred);
      if (i >= 0) return this.replies.splice(i, 1)[0];
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${this.name}: no reply`)), 5000);
        this.waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
  }

  async subscribe(selector: string): Promise<number> {
    const id = `s${++this.n}`;
    this.ws.send(JSON.stringify({ type: 'subscribe', id, selector }));
    return ((await this.reply((m) => m.type === 'subscribed' && m.id === id)) as { topics: number }).topics;
  }

  async settle(): Promise<void> {
    const id = `p${++this.n}`;
    this.ws.send(JSON.stringify({ type: 'ping', id }));
    await this.reply((m) => m.type === 'pong' && m.id === id);
  }

  values(): Map<string, JsonObject> {
    return new Map([...this.held].map(([p, h]) => [p, h.value]));
  }
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('seed scenario: orders in Postgres, three roles, live', () => {
  let db: TestPostgres;
  let store: TopicStore;
  let connector: PostgresConnector;
  let server: DistributionServer;
  let port: number;
  let trader: Client;
  let regulator: Client;
  let analytics: Client;
  let outsider: Client;

  /** Every client holds exactly its role's view of the current topic state. */
  function assertViews(): void {
    const all = new Map([...store.all()].map((t) => [t.path, t.value]));
    const project = (v: JsonObject) => Object.fromEntries(Object.entries(v).filter(([k]) => !HIDDEN_FROM_ANALYTICS.includes(k)));
    assert.deepEqual(regulator.values(), all, 'regulator: every order, every field');
    assert.deepEqual(trader.values(), new Map([...all].filter(([p]) => p.startsWith('orders/7/'))), 'trader: orders/7/** only');
    assert.deepEqual(analytics.values(), new Map([...all].map(([p, v]) => [p, project(v)])), 'analytics: every order without customer_name, email');
    assert.deepEqual(outsider.values(), new Map(), 'another tenant: nothing');
  }

  async function sql(text: string, changedPath: string, changed: (v: JsonObject | undefined) => boolean): Promise<void> {
    await db.query(text);
    await until(`${changedPath} to change`, () => changed(store.get(changedPath)?.value));
    for (const c of [trader, regulator, analytics, outsider]) await c.settle();
  }

  before(async () => {
    db = await startPostgres();
    await db.query(`CREATE TABLE orders (
      id int PRIMARY KEY, customer_id int NOT NULL, customer_name text, email text, item text, qty int, price numeric(10,2), status text)`);
    await db.query(`INSERT INTO orders VALUES
      (1, 7, 'Ann Archer', 'ann@example.com', 'pen', 2, 1.50, 'open'),
      (2, 7, 'Ann Archer', 'ann@example.com', 'ink', 1, 4.00, 'paid'),
      (3, 8, 'Bob Baker', 'bob@example.com', 'pad', 5, 2.25, 'open'),
      (4, 9, 'Cy Cole', 'cy@example.com', 'pen', 1, 1.50, 'open')`);
    store = new TopicStore();
    const handoff = new InProcessHandoff(store);
    const pipeline = new Pipeline(store, handoff);
    const security = SecurityManager.fromConfig(SECURITY, { logger, env: {} });
    server = new DistributionServer(handoff, {
      host: '127.0.0.1', port: 0, maxPayloadBytes: 65536, sendQueueBytes: 8 << 20, flushIntervalMs: 2, maxSubscriptionsPerSession: 100, maxMessagesPerSecond: 200,
    }, { logger, security, heartbeatIntervalMs: 0 });
    ({ port } = await server.listen());
    connector = new PostgresConnector(
      { url: db.url, slot: 'security_seed', publication: 'security_seed', snapshotBatchRows: 1000, statusIntervalMs: 100, tables: [{ table: 'orders', path: 'orders/{customer_id}/{id}', tenant: 'acme' }] },
      pipeline,
      { logger },
    );
    await connector.start();
    [trader, regulator, analytics, outsider] = await Promise.all([
      Client.open('trader-7', port, { roles: ['trader'], customer_id: 7 }),
      Client.open('regulator', port, { roles: ['regulator'] }),
      Client.open('analytics', port, { roles: 'analytics' }),
      Client.open('globex-regulator', port, { roles: ['regulator'], tenant: 'globex' }),
    ]);
  });

  after(async () => {
    for (const c of [trader, regulator, analytics, outsider]) c?.ws.close();
    await connector?.stop();
    await server?.close();
    await db?.stop();
  });

  it('snapshot: each client gets exactly what its role allows', async () => {
    assert.equal(await trader.subscribe('orders/**'), 2);
    assert.equal(await regulator.subscribe('orders/**'), 4);
    assert.equal(await analytics.subscribe('orders/**'), 4);
    assert.equal(await outsider.subscribe('**'), 0);
    assert.deepEqual(regulator.values().get('orders/8/3'), {
      id: 3, customer_id: 8, customer_name: 'Bob Baker', email: 'bob@example.com', item: 'pad', qty: 5, price: '2.25', status: 'open',
    });
    assert.deepEqual(analytics.values().get('orders/8/3'), { id: 3, customer_id: 8, item: 'pad', qty: 5, price: '2.25', status: 'open' });
    assertViews();
  });

  it('an update of a visible field reaches every client that may read the order, as a delta', async () => {
    const before = analytics.topicMessages.length;
    await sql(`UPDATE orders SET status = 'shipped' WHERE id = 1`, 'orders/7/1', (v) => v?.status === 'shipped');
    assertViews();
    const got = analytics.topicMessages.slice(before);
    assert.deepEqual(got.map((m) => m.type), ['delta']);
    assert.deepEqual((got[0] as { patch: unknown }).patch, [{ op: 'replace', path: '/status', value: 'shipped' }]);
  });

  it('an update touching only email sends analytics nothing (and the trader nothing for another customer)', async () => {
    const counts = () => [trader, regulator, analytics].map((c) => c.topicMessages.length);
    const before = counts();
    await sql(`UPDATE orders SET email = 'bob@new.example.com' WHERE id = 3`, 'orders/8/3', (v) => v?.email === 'bob@new.example.com');
    const after = counts();
    assert.deepEqual([after[0] - before[0], after[1] - before[1], after[2] - before[2]], [0, 1, 0], 'trader 0, regulator 1, analytics 0');
    assertViews();
  });

  it('a later visible change of that order still reaches analytics correctly', async () => {
    await sql(`UPDATE orders SET qty = 6, customer_name = 'Robert Baker' WHERE id = 3`, 'orders/8/3', (v) => v?.qty === 6);
    assertViews();
    assert.deepEqual(analytics.values().get('orders/8/3'), { id: 3, customer_id: 8, item: 'pad', qty: 6, price: '2.25', status: 'open' });
  });

  it('inserts, a transaction of several changes, a move to another customer and a delete', async () => {
    await sql(`INSERT INTO orders VALUES (5, 7, 'Ann Archer', 'ann@example.com', 'nib', 3, 0.75, 'open'), (6, 9, 'Cy Cole', 'cy@x', 'pad', 1, 2.25, 'open')`,
      'orders/9/6', (v) => v !== undefined);
    assertViews();
    await sql(`BEGIN; UPDATE orders SET email = 'a2@example.com' WHERE customer_id = 7; UPDATE orders SET status = 'paid' WHERE id = 5; UPDATE orders SET price = 0.80 WHERE id = 5; COMMIT`,
      'orders/7/5', (v) => v?.price === '0.80');
    assertViews();
    await sql(`UPDATE orders SET customer_id = 7 WHERE id = 4`, 'orders/7/4', (v) => v !== undefined);
    assertViews();
    assert.ok(trader.values().has('orders/7/4'), 'the order moved into the trader\'s customer');
    await sql(`DELETE FROM orders WHERE id = 2`, 'orders/7/2', (v) => v === undefined);
    assertViews();
    const rows = await db.query('SELECT count(*)::int AS n FROM orders');
    assert.equal(regulator.values().size, rows.rows[0].n);
  });

  it('GET /topics answers per role too', async () => {
    const token = (claims: Record<string, unknown>) =>
      new SignJWT({ iss: 'https://idp.example', aud: 'tidewire', tenant: 'acme', ...claims }).setProtectedHeader({ alg: 'HS256' }).setSubject('x').setExpirationTime('1m').sign(new TextEncoder().encode(SECRET));
    const get = async (path: string, claims: Record<string, unknown>) => {
      const r = await fetch(`http://127.0.0.1:${port}/topics/${path}`, { headers: { authorization: `Bearer ${await token(claims)}` } });
      return { status: r.status, body: (await r.json()) as { value?: JsonObject } };
    };
    assert.equal((await get('orders/8/3', { roles: ['trader'], customer_id: 7 })).status, 404);
    assert.equal((await get('orders/7/1', { roles: ['trader'], customer_id: 7 })).status, 200);
    assert.deepEqual(Object.keys((await get('orders/8/3', { roles: ['analytics'] })).body.value!).sort(), ['customer_id', 'id', 'item', 'price', 'qty', 'status']);
    assert.equal((await get('orders/8/3', { roles: ['regulator'], tenant: 'globex' })).status, 404);
  });
});
