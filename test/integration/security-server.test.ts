/**
 * Security end to end on a real DistributionServer (127.0.0.1, port 0): the handshake refuses
 * every bad token with the same 401, sessions expire (4001) unless refreshed with `auth`,
 * reloads re-evaluate live subscriptions both ways, per-tenant limits hold one tenant back and
 * never another, /topics answers "not yours" exactly like "not there", and every decision is
 * in the audit log.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, afterEach, before, describe, it } from 'node:test';
import AjvModule from 'ajv';
import { SignJWT, base64url } from 'jose';
import pino from 'pino';
import WebSocket from 'ws';
import type { ServerConfig } from '../../services/config/config.ts';
import { DistributionServer } from '../../services/distribution/index.ts';
import type { ServerMessage } from '../../core/messages.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import { Pipeline } from '../../services/pipeline.ts';
import { SecurityManager } from '../../services/security/index.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import { type TopicUpdate } from '../../core/topic.ts';

// --- harness -------------------------------------------------------------------------------

const Ajv = (AjvModule as unknown as { default: typeof AjvModule }).default ?? AjvModule;
const schemaDir = new URL('../../schemas/protocol/', import.meta.url);
const ajv = new Ajv({ strict: true });
for (const f of readdirSync(schemaDir).filter((f) => f.endsWith('.schema.json'))) ajv.addSchema(JSON.parse(readFileSync(new URL(f, schemaDir), 'utf8')));
const validFrame = ajv.getSchema('https://tidewire.dev/schemas/protocol/server-frame.schema.json')!;

const SECRET = 'tidewire-integration-secret-0123456789';
const CONFIG: ServerConfig = { host: '127.0.0.1', port: 0, maxPayloadBytes: 4096, sendQueueBytes: 8 << 20, flushIntervalMs: 2, maxSubscriptionsPerSession: 50, maxMessagesPerSecond: 100 };
const now = () => Math.floor(Date.now() / 1000);

const SETTINGS = {
  jwt: { algorithms: ['HS256'], secret: SECRET, issuer: 'https://idp.test', audience: 'tidewire', clockToleranceSec: 0 },
  roles: {
    trader: { read: ['orderbook/**', 'orders/{claims.customer_id}/**'] },
    regulator: { read: ['orders/**'] },
    analytics: { read: [{ pattern: 'orders/**', fields: { exclude: ['customer_name', 'email'] } }] },
    ops: { admin: 'server' },
  },
  limits: { tenants: { tiny: { connections: 1, subscriptionsPerSession: 2, messagesPerSecond: 5 } } },
  // These tests reload back to back; the rate limit has its own test (hardening-endpoints).
  reload: { minIntervalMs: 0 },
};

function token(claims: Record<string, unknown> = {}, secret = SECRET): Promise<string> {
  return new SignJWT({ sub: 'alice', tenant: 'acme', roles: ['regulator'], iss: 'https://idp.test', aud: 'tidewire', exp: now() + 300, ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode(secret));
}

interface Harness {
  pipeline: Pipeline;
  server: DistributionServer;
  security: SecurityManager;
  port: number;
  audit: Array<Record<string, any>>;
  logs: Array<Record<string, any>>;
}

async function start(settings: Record<string, unknown> = SETTINGS, extra: { baseDir?: string } = {}): Promise<Harness> {
  const logs: Array<Record<string, any>> = [];
  const sink = new Writable({ write(chunk, _e, cb) { logs.push(JSON.parse(String(chunk))); cb(); } });
  const logger = pino({ level: 'info' }, sink);
  const store = new TopicStore();
  const handoff = new InProcessHandoff(store);
  const pipeline = new Pipeline(store, handoff);
  const security = SecurityManager.fromConfig(settings, { logger, env: {}, baseDir: extra.baseDir });
  const server = new DistributionServer(handoff, CONFIG, { logger, security, heartbeatIntervalMs: 0 });
  const { port } = await server.listen();
  const h: Harness = { pipeline, server, security, port, logs, audit: [] };
  Object.defineProperty(h, 'audit', { get: () => (security?.audit.flush(), logs.filter((l) => l.audit === true)) });
  return h;
}

const ORDERS: TopicUpdate[] = [
  { path: 'orders/7/1', source: 'pg', tenant: 'acme', value: { id: 1, customer_id: 7, customer_name: 'Ann', email: 'ann@x', status: 'open' } },
  { path: 'orders/8/2', source: 'pg', tenant: 'acme', value: { id: 2, customer_id: 8, customer_name: 'Bob', email: 'bob@x', status: 'open' } },
  { path: 'orders/7/3', source: 'pg', tenant: 'globex', value: { id: 3, customer_id: 7, customer_name: 'Gil', email: 'g@x', status: 'open' } },
];

class Client {
  readonly messages: ServerMessage[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];
  private n = 0;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data));
      assert.ok(validFrame(frame), `frame does not match server-frame.schema.json: ${ajv.errorsText(validFrame.errors)}\n${String(data).slice(0, 300)}`);
      this.messages.push(...(frame as ServerMessage[]));
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
    ws.on('error', () => undefined);
  }

  static async open(port: number, opts: { token?: string; header?: string } = {}): Promise<Client> {
    const q = opts.token === undefined ? '' : `?access_token=${encodeURIComponent(opts.token)}`;
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws${q}`, opts.header ? { headers: { authorization: opts.header } } : {});
    const c = new Client(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    await c.until((m) => m.type === 'hello');
    return c;
  }

  send(m: unknown): void {
    this.ws.send(JSON.stringify(m));
  }

  async until(pred: (m: ServerMessage) => boolean, ms = 3000): Promise<ServerMessage> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.messages.find(pred);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(this.messages).slice(0, 600)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
  }

  /** Sends a ping and waits for its pong: everything the server queued before is then here. */
  async settle(): Promise<void> {
    const id = `p${++this.n}`;
    this.send({ type: 'ping', id });
    await this.until((m) => m.type === 'pong' && m.id === id);
  }

  async subscribe(id: string, selector: string): Promise<ServerMessage> {
    this.send({ type: 'subscribe', id, selector });
    return this.until((m) => (m.type === 'subscribed' || m.type === 'error') && m.id === id);
  }

  topics(): Map<string, Record<string, unknown>> {
    const held = new Map<string, Record<string, unknown>>();
    for (const m of this.messages) {
      if (m.type === 'value') held.set(m.path, m.value);
      if (m.type === 'removal') held.delete(m.path);
    }
    return held;
  }

  close(): void {
    this.ws.close();
  }
}

/** A handshake that must fail: the HTTP status, headers and body. */
function refusedHandshake(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
    ws.on('open', () => reject(new Error('the handshake was accepted')));
    ws.on('error', () => undefined);
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
  });
}

function http(port: number, path: string, opts: { method?: string; token?: string } = {}): Promise<{ status: number; body: any; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: body ? JSON.parse(body) : null, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// --- tests -----------------------------------------------------------------------------------

describe('authentication on the handshake and on /topics', () => {
  let h: Harness;
  before(async () => {
    h = await start();
    await h.pipeline.apply(ORDERS);
  });
  after(() => h.server.close());

  it('refuses every bad token with the same 401 and body; the audit log has the precise reason', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none' }));
    const payload = base64url.encode(JSON.stringify({ sub: 'alice', tenant: 'acme', iss: 'https://idp.test', aud: 'tidewire', exp: now() + 60 }));
    const bad: Array<[string, string]> = [
      ['missing-token', ''],
      ['bad-signature', await token({}, 'forged-secret-forged-secret-forged!')],
      ['expired', await token({ exp: now() - 10 })],
      ['algorithm-not-allowed', `${header}.${payload}.`],
      ['wrong-issuer', await token({ iss: 'https://evil.test' })],
      ['wrong-audience', await token({ aud: 'other' })],
      ['malformed', 'garbage'],
      ['missing-claim', await token({ tenant: undefined })],
    ];
    const before = h.audit.length;
    const bodies = new Set<string>();
    for (const [, t] of bad) {
      const r = await refusedHandshake(h.port, t ? `/ws?access_token=${t}` : '/ws');
      assert.equal(r.status, 401);
      assert.deepEqual(JSON.parse(r.body), { error: { code: 'UNAUTHORIZED', message: 'invalid or expired token' } });
      assert.equal(r.headers['www-authenticate'], 'Bearer realm="tidewire"');
      bodies.add(r.body);
    }
    assert.equal(bodies.size, 1, 'no detail useful to an attacker');
    const reasons = h.audit.slice(before).filter((l) => l.event === 'auth.failed').map((l) => l.reason);
    assert.deepEqual(reasons, bad.map(([r]) => r));
    const header401 = await refusedHandshake(h.port, '/ws', { authorization: `Bearer ${await token({}, 'forged-secret-forged-secret-forged!')}` });
    assert.equal(header401.status, 401);
  });

  it('accepts a token in the Authorization header or in ?access_token=, and audits the connection', async () => {
    const viaQuery = await Client.open(h.port, { token: await token() });
    const viaHeader = await Client.open(h.port, { header: `Bearer ${await token({ sub: 'bob', roles: ['analytics'] })}` });
    const accepted = h.audit.filter((l) => l.event === 'connection.accepted');
    const bob = accepted.find((l) => l.subject === 'bob')!;
    assert.equal(bob.tenant, 'acme');
    assert.deepEqual(bob.roles, ['analytics']);
    assert.match(bob.remote, /^127\.0\.0\.1:\d+$/);
    assert.ok(bob.session);
    viaQuery.close();
    viaHeader.close();
  });

  it('a subscription delivers only readable topics of the session\'s tenant; a forbidden path answers like a missing one', async () => {
    const trader = await Client.open(h.port, { token: await token({ sub: 't7', roles: ['trader'], customer_id: 7 }) });
    const all = await trader.subscribe('all', '**');
    assert.deepEqual(all, { type: 'subscribed', id: 'all', selector: '**', topics: 1 });
    assert.deepEqual([...trader.topics().keys()], ['orders/7/1']);
    const forbidden = await trader.subscribe('f', 'orders/8/2');
    const missing = await trader.subscribe('m', 'orders/9/9');
    assert.deepEqual({ ...forbidden, id: 'x', selector: 'x' }, { ...missing, id: 'x', selector: 'x' });
    assert.equal((forbidden as { topics: number }).topics, 0);
    const denied = h.audit.find((l) => l.event === 'subscription.denied' && l.selector === 'orders/8/2')!;
    assert.equal(denied.subject, 't7');
    assert.equal(denied.tenant, 'acme');
    assert.ok(h.audit.some((l) => l.event === 'subscription.reduced' && l.selector === '**'));
    // Live changes follow the same rule.
    await h.pipeline.apply([
      { ...ORDERS[0], value: { ...ORDERS[0].value!, status: 'paid' } },
      { ...ORDERS[1], value: { ...ORDERS[1].value!, status: 'paid' } },
      { ...ORDERS[2], value: { ...ORDERS[2].value!, status: 'paid' } },
    ]);
    await trader.settle();
    const paths = trader.messages.filter((m) => m.type === 'delta' || m.type === 'value').map((m) => (m as { path: string }).path);
    assert.deepEqual([...new Set(paths)], ['orders/7/1']);
    trader.close();
  });

  it('GET /topics needs a token; another tenant\'s or an unreadable topic is the same 404 as a missing one', async () => {
    assert.equal((await http(h.port, '/topics/orders/7/1')).status, 401);
    assert.deepEqual((await http(h.port, '/topics/orders/7/1', { token: 'garbage' })).body, { error: { code: 'UNAUTHORIZED', message: 'invalid or expired token' } });
    const t7 = await token({ sub: 't7', roles: ['trader'], customer_id: 7 });
    const ok = await http(h.port, '/topics/orders/7/1', { token: t7 });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.value.customer_name, 'Ann');
    const globexT7 = await token({ sub: 't7', tenant: 'globex', roles: ['trader'], customer_id: 7 });
    assert.equal((await http(h.port, '/topics/orders/7/3', { token: globexT7 })).status, 200, 'globex reads its own');
    const notOurs = await http(h.port, '/topics/orders/7/3', { token: t7 }); // exists, but globex's
    const notReadable = await http(h.port, '/topics/orders/8/2', { token: t7 }); // exists, acme's, not granted
    const missing = await http(h.port, '/topics/orders/7/9', { token: t7 });
    for (const r of [notOurs, notReadable, missing]) {
      assert.equal(r.status, 404);
      assert.equal(r.body.error.code, 'NOT_FOUND');
    }
    const shape = (r: { body: any; headers: Record<string, unknown> }, p: string) => [r.body.error.message.replace(p, 'P'), r.headers['content-length'] !== undefined];
    assert.deepEqual(shape(notOurs, 'orders/7/3'), shape(missing, 'orders/7/9'));
    assert.deepEqual(shape(notReadable, 'orders/8/2'), shape(missing, 'orders/7/9'));
    const analytics = await http(h.port, '/topics/orders/8/2', { token: await token({ roles: ['analytics'] }) });
    assert.deepEqual(Object.keys(analytics.body.value).sort(), ['customer_id', 'id', 'status']);
  });

  it('/health stays open and tells strangers only its status', async () => {
    const r = await http(h.port, '/health');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { status: 'ok' });
  });
});

describe('token expiry on a live session', () => {
  let h: Harness;
  before(async () => {
    h = await start();
    await h.pipeline.apply(ORDERS);
  });
  after(() => h.server.close());

  it('closes the session with 4001 at exp', async () => {
    const c = await Client.open(h.port, { token: await token({ exp: now() + 2 }) });
    const started = Date.now();
    const { code } = await c.closed;
    assert.equal(code, 4001);
    assert.ok(Date.now() - started < 3500);
    await sleep(50);
    assert.ok(h.audit.some((l) => l.event === 'session.expired' && l.subject === 'alice'));
    assert.equal(h.server.stats.disconnects.tokenExpired, 1);
  });

  it('an auth message with a fresh token keeps it alive; a token for someone else is refused', async () => {
    const c = await Client.open(h.port, { token: await token({ exp: now() + 2 }) });
    await c.subscribe('s', 'orders/**');
    c.send({ type: 'auth', id: 'a0', token: await token({ sub: 'mallory', exp: now() + 60 }) });
    const refused = await c.until((m) => m.type === 'error' && m.id === 'a0');
    assert.equal((refused as { code: string }).code, 'UNAUTHORIZED');
    const exp = now() + 4;
    c.send({ type: 'auth', id: 'a1', token: await token({ exp }) });
    assert.deepEqual(await c.until((m) => m.type === 'authenticated'), { type: 'authenticated', id: 'a1', exp });
    await sleep(2600);
    assert.equal(c.ws.readyState, WebSocket.OPEN, 'alive past the first token\'s exp');
    await h.pipeline.apply([{ ...ORDERS[0], value: { ...ORDERS[0].value!, status: 'refreshed' } }]);
    await c.until((m) => m.type === 'delta' && m.path === 'orders/7/1');
    const { code } = await c.closed;
    assert.equal(code, 4001, 'and closed at the fresh token\'s exp');
  });

  it('a refreshed token with other roles changes what the session sees at once', async () => {
    const c = await Client.open(h.port, { token: await token({ roles: ['trader'], customer_id: 7 }) });
    await c.subscribe('s', 'orders/**');
    assert.deepEqual([...c.topics().keys()], ['orders/7/1']);
    c.send({ type: 'auth', id: 'up', token: await token({ roles: ['analytics'], customer_id: 7 }) });
    await c.until((m) => m.type === 'authenticated');
    const held = c.topics();
    assert.deepEqual([...held.keys()].sort(), ['orders/7/1', 'orders/8/2']);
    assert.equal(held.get('orders/8/2')!.email, undefined, 'analytics fields only');
    assert.equal(held.get('orders/7/1')!.email, undefined, 'the held topic was re-sent projected');
    c.close();
  });
});

describe('permission reloads', () => {
  let dir: string;
  let h: Harness;
  const file = () => join(dir, 'security.json');
  const write = (settings: unknown) => writeFileSync(file(), JSON.stringify(settings));

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tidewire-reload-'));
    write(SETTINGS);
    h = await start({ file: 'security.json' }, { baseDir: dir });
    await h.pipeline.apply(ORDERS);
  });
  after(async () => {
    await h.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('POST /admin/reload needs a token with an admin role', async () => {
    assert.equal((await http(h.port, '/admin/reload', { method: 'POST' })).status, 401);
    const denied = await http(h.port, '/admin/reload', { method: 'POST', token: await token() });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error.code, 'FORBIDDEN');
    assert.ok(h.audit.some((l) => l.event === 'admin.denied' && l.subject === 'alice'));
    assert.equal((await http(h.port, '/admin/reload', { token: await token({ roles: ['ops'] }) })).status, 405);
  });

  it('removing access sends removals at once; granting it sends current values', async () => {
    const regulator = await Client.open(h.port, { token: await token({ sub: 'reg' }) });
    const analytics = await Client.open(h.port, { token: await token({ sub: 'ana', roles: ['analytics'] }) });
    await regulator.subscribe('s', 'orders/**');
    await analytics.subscribe('s', 'orders/**');
    assert.equal(regulator.topics().size, 2);
    // Regulators lose orders/8; analytics see every field.
    write({ ...SETTINGS, roles: { ...SETTINGS.roles, regulator: { read: ['orders/7/**'] }, analytics: { read: ['orders/**'] } } });
    const r = await http(h.port, '/admin/reload', { method: 'POST', token: await token({ sub: 'root', roles: ['ops'] }) });
    assert.equal(r.status, 200);
    assert.equal(r.body.reloaded, true);
    assert.equal(r.body.generation, 2);
    await regulator.settle();
    await analytics.settle();
    const removal = regulator.messages.find((m) => m.type === 'removal')!;
    assert.deepEqual(removal, { type: 'removal', path: 'orders/8/2', version: 2, reason: 'access' });
    assert.deepEqual([...regulator.topics().keys()], ['orders/7/1']);
    assert.equal(analytics.topics().get('orders/8/2')!.email, 'bob@x', 'newly visible fields arrive as values');
    // Further changes follow the new permissions.
    await h.pipeline.apply([{ ...ORDERS[1], value: { ...ORDERS[1].value!, status: 'shipped' } }]);
    await regulator.settle();
    assert.equal(regulator.messages.filter((m) => 'path' in m && m.path === 'orders/8/2').length, 2, 'the initial value and the removal only');
    const reload = h.audit.find((l) => l.event === 'reload.applied')!;
    assert.match(reload.by, /root/);
    // And back: access granted again starts with the current value.
    write(SETTINGS);
    h.security.reload(undefined, 'SIGHUP');
    await regulator.settle();
    assert.equal((regulator.topics().get('orders/8/2') as { status: string }).status, 'shipped');
    regulator.close();
    analytics.close();
  });

  it('an invalid configuration is refused (422) and the previous one stays in force', async () => {
    write({ ...SETTINGS, roles: { a: { include: ['b'] }, b: { include: ['a'] } } });
    const r = await http(h.port, '/admin/reload', { method: 'POST', token: await token({ roles: ['ops'] }) });
    assert.equal(r.status, 422);
    assert.match(r.body.error.message, /cycle/);
    assert.ok(h.audit.some((l) => l.event === 'reload.failed'));
    const c = await Client.open(h.port, { token: await token() });
    assert.equal(((await c.subscribe('s', 'orders/**')) as { topics: number }).topics, 2);
    c.close();
    write(SETTINGS);
  });
});

describe('per-tenant limits', () => {
  let h: Harness;
  before(async () => {
    h = await start();
    await h.pipeline.apply(ORDERS);
  });
  after(() => h.server.close());

  it('connections: the tenant at its limit gets 429 TENANT_LIMIT; other tenants connect', async () => {
    const first = await Client.open(h.port, { token: await token({ tenant: 'tiny' }) });
    const r = await refusedHandshake(h.port, `/ws?access_token=${await token({ tenant: 'tiny' })}`);
    assert.equal(r.status, 429);
    assert.deepEqual(JSON.parse(r.body).error.code, 'TENANT_LIMIT');
    assert.deepEqual(JSON.parse(r.body).error.limit, 'connections');
    const other = await Client.open(h.port, { token: await token({ tenant: 'acme' }) });
    assert.ok(h.audit.some((l) => l.event === 'limit.exceeded' && l.limit === 'connections' && l.tenant === 'tiny'));
    first.close();
    await first.closed;
    await sleep(50);
    const again = await Client.open(h.port, { token: await token({ tenant: 'tiny' }) });
    again.close();
    other.close();
  });

  it('subscriptions per session and messages per second: TENANT_LIMIT naming the limit; other tenants unaffected', async () => {
    const tiny = await Client.open(h.port, { token: await token({ tenant: 'tiny' }) });
    const acme = await Client.open(h.port, { token: await token({ tenant: 'acme' }) });
    await tiny.subscribe('a', 'orders/1');
    await tiny.subscribe('b', 'orders/2');
    const third = await tiny.subscribe('c', 'orders/3');
    assert.equal((third as { code: string }).code, 'TENANT_LIMIT');
    assert.equal((third as { limit: string }).limit, 'subscriptionsPerSession');
    for (let i = 0; i < 3; i++) assert.equal((await acme.subscribe(`s${i}`, `orders/${i}`)).type, 'subscribed');
    await sleep(1000);
    for (let i = 0; i < 8; i++) tiny.send({ type: 'ping', id: `q${i}` });
    const limited = await tiny.until((m) => m.type === 'error' && m.code === 'TENANT_LIMIT' && (m as { limit?: string }).limit === 'messagesPerSecond');
    assert.match((limited as { message: string }).message, /tenant's limit of 5/);
    for (let i = 0; i < 8; i++) acme.send({ type: 'ping', id: `q${i}` });
    await acme.until((m) => m.type === 'pong' && m.id === 'q7');
    assert.ok(!acme.messages.some((m) => m.type === 'error'));
    tiny.close();
    acme.close();
  });
});

describe('anonymous access', () => {
  let h: Harness;
  afterEach(() => h?.server.close());

  it('a client without a token gets the anonymous role and tenant; turning it off closes it with 4003', async () => {
    const settings = { ...SETTINGS, anonymous: { role: 'public', tenant: 'public' }, roles: { ...SETTINGS.roles, public: { read: ['prices/**'] } } };
    h = await start(settings);
    await h.pipeline.apply([
      { path: 'prices/eur', source: 'k', tenant: 'public', value: { bid: 1 } },
      { path: 'prices/usd', source: 'k', tenant: 'acme', value: { bid: 2 } },
      ...ORDERS,
    ]);
    const anon = await Client.open(h.port);
    assert.equal(((await anon.subscribe('s', '**')) as { topics: number }).topics, 1);
    assert.deepEqual([...anon.topics().keys()], ['prices/eur']);
    h.security.reload({ ...SETTINGS });
    assert.equal((await anon.closed).code, 4003);
    assert.ok(h.audit.some((l) => l.event === 'session.revoked'));
  });
});

describe('without security', () => {
  it('logs a warning at start that security is off', async () => {
    const logs: Array<Record<string, any>> = [];
    const sink = new Writable({ write(chunk, _e, cb) { logs.push(JSON.parse(String(chunk))); cb(); } });
    const store = new TopicStore();
    const server = new DistributionServer(new InProcessHandoff(store), CONFIG, { logger: pino({ level: 'info' }, sink) });
    await server.listen();
    await server.close();
    assert.ok(logs.some((l) => l.level === 40 && /security is off/.test(l.msg)));
  });
});
