/**
 * Issue #13, findings 3, 4 and the smaller ones on real sockets: what the open endpoints tell a
 * stranger (/health, /ready), a tenant's admin versus a server-wide admin (reload, /metrics,
 * /admin/tenant), the reload rate limit, no absolute path in an answer, the dashboard's headers,
 * and the pending-connection bounds with their counters in /metrics.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import pino from 'pino';
import type { ServerConfig } from '../../services/config/config.ts';
import { DistributionServer, type HttpRoute } from '../../services/distribution/index.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import { createServiceMetrics, opsRoutes, readiness } from '../../services/metrics/index.ts';
import { Pipeline } from '../../services/pipeline.ts';
import { SecurityManager } from '../../services/security/index.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import { waitFor } from '../support/wait.ts';

const SECRET = 'hardening-endpoints-secret-0123456789';
const CONFIG: ServerConfig = { host: '127.0.0.1', port: 0, maxPayloadBytes: 4096, sendQueueBytes: 1 << 20, flushIntervalMs: 2, maxSubscriptionsPerSession: 50, maxMessagesPerSecond: 100 };
const SETTINGS = {
  jwt: { algorithms: ['HS256'], secret: SECRET },
  roles: {
    reader: { read: ['orders/**'] },
    root: { admin: 'server' },
    acmeOps: { admin: 'tenant' },
    legacy: { admin: true },
  },
};
const SOURCES = [{ name: 'postgres', state: 'snapshotting', detail: 'reading 1 table(s) at 0/3044A30', transactionsApplied: 12, lastAppliedLsn: '0/3044A30' }];

function token(roles: string[], tenant = 'acme'): Promise<string> {
  return new SignJWT({ sub: `u-${roles.join('-')}`, tenant, roles, exp: Math.floor(Date.now() / 1000) + 300 })
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode(SECRET));
}

function http(port: number, path: string, opts: { method?: string; token?: string } = {}): Promise<{ status: number; body: any; text: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        let body: unknown = null;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON (metrics, files)
        }
        resolve({ status: res.statusCode!, body, text, headers: res.headers });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

interface Harness {
  server: DistributionServer;
  security: SecurityManager;
  port: number;
  logs: Array<Record<string, any>>;
  dir: string;
}

async function start(settings: Record<string, unknown>, config: Partial<ServerConfig> = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'tidewire-hardening-'));
  writeFileSync(join(dir, 'security.json'), JSON.stringify(settings));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>x</title>');
  const logs: Array<Record<string, any>> = [];
  const logger = pino({ level: 'info' }, new Writable({ write(c, _e, cb) { logs.push(JSON.parse(String(c))); cb(); } }));
  const store = new TopicStore();
  const handoff = new InProcessHandoff(store);
  await new Pipeline(store, handoff).apply([{ path: 'orders/1', source: 'pg', tenant: 'acme', value: { id: 1 } }]);
  const security = SecurityManager.fromConfig({ file: 'security.json' }, { logger, env: {}, baseDir: dir });
  const routes = new Map<string, HttpRoute>();
  const server = new DistributionServer(handoff, { ...CONFIG, ...config }, {
    logger, security, heartbeatIntervalMs: 0, staticDir: dir, routes,
    health: () => ({ status: 'degraded', sources: SOURCES }),
  });
  const registry = createServiceMetrics({
    topics: () => store.size, distribution: server, processMetrics: false,
    pipeline: { updatesApplied: 0, changesByType: { value: 0, delta: 0, removal: 0 }, wireBytes: { value: 0, delta: 0, removal: 0, deltaAsValue: 0 } },
    sources: () => [], readiness: () => readiness(SOURCES as never),
  });
  for (const [p, r] of opsRoutes({ registry, readiness: () => readiness(SOURCES as never), security })) routes.set(p, r);
  const { port } = await server.listen();
  return { server, security, port, logs, dir };
}

async function stop(h: Harness): Promise<void> {
  await h.server.close();
  rmSync(h.dir, { recursive: true, force: true });
}

describe('what the open endpoints tell', () => {
  let h: Harness;
  before(async () => (h = await start(SETTINGS)));
  after(() => stop(h));

  it('/health: a stranger and a tenant admin get the status only; a server admin gets the detail; a bad token 401', async () => {
    const stranger = await http(h.port, '/health');
    assert.equal(stranger.status, 200);
    assert.deepEqual(stranger.body, { status: 'degraded' });
    assert.deepEqual((await http(h.port, '/health', { token: await token(['acmeOps']) })).body, { status: 'degraded' });
    assert.deepEqual((await http(h.port, '/health', { token: await token(['reader']) })).body, { status: 'degraded' });
    const root = await http(h.port, '/health', { token: await token(['root'], 'ops') });
    assert.equal(root.body.topics, 1);
    assert.deepEqual(root.body.sources, SOURCES);
    assert.equal((await http(h.port, '/health', { token: 'garbage' })).status, 401);
  });

  it('/ready: without a server admin the reasons name the state only, no position or table', async () => {
    const stranger = await http(h.port, '/ready');
    assert.equal(stranger.status, 503);
    assert.deepEqual(stranger.body, { ready: false, reasons: ['postgres: snapshotting'] });
    assert.deepEqual((await http(h.port, '/ready', { token: await token(['acmeOps']) })).body.reasons, ['postgres: snapshotting']);
    const root = await http(h.port, '/ready', { token: await token(['root'], 'ops') });
    assert.deepEqual(root.body.reasons, ['postgres: snapshotting (reading 1 table(s) at 0/3044A30)']);
  });

  it('the dashboard\'s files carry a Content-Security-Policy with frame-ancestors, nosniff and no referrer', async () => {
    const r = await http(h.port, '/');
    assert.equal(r.status, 200);
    const csp = String(r.headers['content-security-policy']);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /connect-src 'self'/);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.equal(r.headers['referrer-policy'], 'no-referrer');
  });
});

describe('a tenant\'s admin and a server-wide admin', () => {
  let h: Harness;
  before(async () => (h = await start({ ...SETTINGS, reload: { minIntervalMs: 1000 } })));
  after(() => stop(h));

  it('a tenant admin (admin: tenant, or the older admin: true) may neither reload nor read /metrics', async () => {
    for (const role of ['acmeOps', 'legacy']) {
      const t = await token([role]);
      const reload = await http(h.port, '/admin/reload', { method: 'POST', token: t });
      assert.equal(reload.status, 403, role);
      assert.match(reload.body.error.message, /admin: server/);
      assert.equal((await http(h.port, '/metrics', { token: t })).status, 403, role);
    }
    assert.equal(h.security.generation, 1, 'nothing was reloaded');
    assert.ok(h.logs.some((l) => l.level === 40 && /legacy: admin: true is a tenant admin/.test(l.msg)), 'admin: true is warned about at load');
    assert.ok(h.logs.some((l) => l.event === 'admin.denied' && l.action === 'metrics'));
  });

  it('a server admin reloads at most once per reload.minIntervalMs (429 with Retry-After), and the answer names no directory', async () => {
    const t = await token(['root'], 'ops');
    assert.equal((await http(h.port, '/metrics', { token: t })).status, 200);
    const first = await http(h.port, '/admin/reload', { method: 'POST', token: t });
    assert.equal(first.status, 200);
    assert.equal(first.body.source, 'security.json');
    assert.ok(!first.text.includes(h.dir), 'no absolute path in the answer');
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await http(h.port, '/admin/reload', { method: 'POST', token: t })).status);
    assert.deepEqual([...new Set(statuses)], [429]);
    const limited = await http(h.port, '/admin/reload', { method: 'POST', token: t });
    assert.equal(limited.body.error.code, 'RATE_LIMITED');
    assert.equal(limited.headers['retry-after'], '1');
    assert.equal(h.security.generation, 2, 'one reload ran');
    await new Promise((r) => setTimeout(r, 1050));
    writeFileSync(join(h.dir, 'security.json'), '{"roles": {"a": {"include": ["b"]}, "b": {"include": ["a"]}}, "jwt": {"algorithms": ["HS256"], "secret": "' + SECRET + '"}}');
    const invalid = await http(h.port, '/admin/reload', { method: 'POST', token: t });
    assert.equal(invalid.status, 422);
    assert.match(invalid.body.error.message, /^security\.json\.roles\.\w\.include: roles include each other/);
    assert.ok(!invalid.text.includes(h.dir), 'no absolute path in the error either');
  });

  it('/admin/tenant: a tenant admin sees its own tenant only; a server admin any', async () => {
    const live = connect({ host: '127.0.0.1', port: h.port });
    const acmeOps = await token(['acmeOps']);
    const own = await http(h.port, '/admin/tenant', { token: acmeOps });
    assert.equal(own.status, 200);
    assert.deepEqual(own.body, { tenant: 'acme', connections: 0, limits: { connections: 10000, subscriptionsPerSession: 1000, messagesPerSecond: 200 } });
    assert.equal((await http(h.port, '/admin/tenant?tenant=globex', { token: acmeOps })).status, 403);
    assert.equal((await http(h.port, '/admin/tenant', { token: await token(['reader']) })).status, 403);
    assert.equal((await http(h.port, '/admin/tenant?tenant=globex', { token: await token(['root'], 'ops') })).body.tenant, 'globex');
    live.destroy();
  });
});

describe('pending connections', () => {
  let h: Harness;
  const sockets: Socket[] = [];
  before(async () => (h = await start(SETTINGS, { handshakeTimeoutMs: 300, maxPendingConnections: 6, maxPendingConnectionsPerAddress: 4 })));
  after(async () => {
    for (const s of sockets) s.destroy();
    await stop(h);
  });

  const open = (localAddress: string) =>
    new Promise<Socket>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: h.port, localAddress });
      s.on('error', () => undefined);
      sockets.push(s);
      s.once('connect', () => resolve(s));
    });

  it('past the per-address limit new ones are closed, past the global limit the oldest; all of them at the timeout; each counted', async () => {
    for (let i = 0; i < 6; i++) await open('127.0.0.1');
    await waitFor('the server to see them', () => h.server.stats.pendingClosed.addressLimit === 2, 2000, 5);
    assert.equal(h.server.pendingConnections, 4);
    for (let i = 0; i < 3; i++) await open('127.0.0.2');
    await waitFor('the oldest to be closed', () => h.server.stats.pendingClosed.globalLimit === 1, 2000, 5);
    assert.equal(h.server.pendingConnections, 6);
    // A real request still gets in (the oldest pending one makes room), and once its headers are
    // complete it is not pending any more.
    assert.equal((await http(h.port, '/health')).status, 200);
    assert.equal(h.server.stats.pendingClosed.globalLimit, 2);
    await waitFor('the timeout', () => h.server.pendingConnections === 0, 3000, 10);
    assert.equal(h.server.stats.pendingClosed.timeout, 5);
    const metrics = (await http(h.port, '/metrics', { token: await token(['root'], 'ops') })).text;
    assert.match(metrics, /tidewire_pending_connections_closed_total\{reason="addressLimit"\} 2/);
    assert.match(metrics, /tidewire_pending_connections_closed_total\{reason="globalLimit"\} 2/);
    assert.match(metrics, /tidewire_pending_connections_closed_total\{reason="timeout"\} 5/);
    assert.match(metrics, /tidewire_pending_connections 0/);
    const warned = h.logs.filter((l) => l.level === 40 && l.reason === 'addressLimit');
    assert.equal(warned.length, 1, 'one warning per 10 s, not one per connection');
  });

  it('a malformed request is answered 400 and the socket destroyed, not left half-open', { timeout: 10_000 }, async () => {
    // This side stays open after the server's FIN: a half-open server socket would go on
    // accepting what it sends; a destroyed one answers it with a reset.
    const s = connect({ host: '127.0.0.1', port: h.port, localAddress: '127.0.0.3', allowHalfOpen: true });
    sockets.push(s);
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('error', () => undefined);
    const ended = new Promise<void>((r) => s.once('end', () => r()));
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    s.write('NOT HTTP\r\n\r\n');
    await ended;
    assert.match(got, /^HTTP\/1\.1 400/);
    const poke = setInterval(() => s.writable && s.write('more'), 20);
    const outcome = await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('still open'), 2000))]);
    clearInterval(poke);
    assert.equal(outcome, 'closed');
  });
});
