/**
 * Issue #13, finding 5: /ws checks the handshake's Origin. With security off a page of another
 * site must not read the local server's topics (browsers always send Origin on a WebSocket
 * handshake, and a page cannot forge it); loopback pages, pages this server served and clients
 * without Origin still connect. server.allowedOrigins lists exact origins.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { SignJWT } from 'jose';
import pino from 'pino';
import WebSocket from 'ws';
import { parseConfig, type ServerConfig } from '../../services/config/config.ts';
import { DistributionServer } from '../../services/distribution/index.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import { SecurityManager } from '../../services/security/index.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';

const CONFIG: ServerConfig = { host: '127.0.0.1', port: 0, maxPayloadBytes: 4096, sendQueueBytes: 1 << 20, flushIntervalMs: 2, maxSubscriptionsPerSession: 50, maxMessagesPerSecond: 100 };
const SECRET = 'hardening-origin-secret-0123456789-abcdef';

async function start(config: Partial<ServerConfig> = {}, secured = false) {
  const logs: Array<Record<string, any>> = [];
  const logger = pino({ level: 'info' }, new Writable({ write(c, _e, cb) { logs.push(JSON.parse(String(c))); cb(); } }));
  const security = secured ? SecurityManager.fromConfig({ jwt: { algorithms: ['HS256'], secret: SECRET }, roles: { r: { read: ['**'] } } }, { logger, env: {} }) : null;
  const server = new DistributionServer(new InProcessHandoff(new TopicStore()), { ...CONFIG, ...config }, { logger, security, heartbeatIntervalMs: 0 });
  const { port } = await server.listen();
  return { server, port, logs };
}

/** The handshake's HTTP status: 101 when it opened, else what it was refused with. */
function handshake(port: number, headers: { origin?: string; host?: string } = {}, query = ''): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws${query}`, { origin: headers.origin, headers: headers.host ? { host: headers.host } : {} });
    ws.on('error', () => undefined);
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode!);
      res.resume();
    });
  });
}

describe('Origin on /ws with security off (the default)', () => {
  it('refuses pages of other sites; admits loopback pages, same-origin pages by address, and clients without Origin', async () => {
    const { server, port, logs } = await start();
    try {
      assert.equal(await handshake(port), 101, 'no Origin: a non-browser client');
      assert.equal(await handshake(port, { origin: `http://127.0.0.1:${port}` }), 101, 'the dashboard served here');
      assert.equal(await handshake(port, { origin: 'http://localhost:5173' }), 101, 'a local dev server');
      assert.equal(await handshake(port, { origin: 'http://[::1]:3000' }), 101);
      for (const origin of ['https://evil.example', 'http://127.0.0.1.evil.example', 'null', 'http://localhost.evil.example:8080']) {
        assert.equal(await handshake(port, { origin }), 403, origin);
      }
      // DNS rebinding: the attacker's name resolves to this server, so Origin and Host agree.
      assert.equal(await handshake(port, { origin: `http://evil.example:${port}`, host: `evil.example:${port}` }), 403);
      // A page served here by an address (not a name) is same-origin.
      assert.equal(await handshake(port, { origin: 'http://10.1.2.3:8080', host: '10.1.2.3:8080' }), 101);
      assert.ok(logs.some((l) => l.msg === 'WebSocket handshake refused: its Origin is not allowed' && l.origin === 'https://evil.example'));
    } finally {
      await server.close();
    }
  });

  it('server.allowedOrigins: exactly the listed origins (and same-origin, and no Origin)', async () => {
    const { server, port } = await start({ allowedOrigins: ['https://app.example.com', 'http://dash.internal:8080'] });
    try {
      assert.equal(await handshake(port, { origin: 'https://app.example.com' }), 101);
      assert.equal(await handshake(port, { origin: 'http://dash.internal:8080' }), 101);
      assert.equal(await handshake(port, { origin: 'http://dash.internal:8081' }), 403);
      assert.equal(await handshake(port, { origin: 'https://sub.app.example.com' }), 403, 'exact, not a suffix');
      assert.equal(await handshake(port, { origin: 'http://localhost:5173' }), 403, 'a list replaces the loopback default');
      assert.equal(await handshake(port, { origin: `http://127.0.0.1:${port}` }), 101);
      assert.equal(await handshake(port), 101);
    } finally {
      await server.close();
    }
  });

  it('warns at start when it listens beyond loopback without security', async () => {
    const { server, logs } = await start({ host: '0.0.0.0' });
    await server.close();
    assert.ok(logs.some((l) => l.level === 40 && /listens on 0\.0\.0\.0, beyond loopback/.test(l.msg)));
    const local = await start();
    await local.server.close();
    assert.ok(!local.logs.some((l) => /beyond loopback/.test(l.msg)));
  });

  it('an allowedOrigins entry that is not an exact origin is a configuration error naming it', () => {
    for (const bad of ['https://*.example.com', 'https://app.example.com/', 'app.example.com', 'https://app.example.com/path']) {
      assert.throws(() => parseConfig({ server: { allowedOrigins: [bad] } }, {}), /server\.allowedOrigins\.0: must be an exact origin/, bad);
    }
    assert.deepEqual(parseConfig({ server: { allowedOrigins: ['http://localhost:3000'] } }, {}).server.allowedOrigins, ['http://localhost:3000']);
  });
});

describe('Origin on /ws with security on', () => {
  it('admits every origin by default (a bearer token authenticates, never a cookie), or exactly the list', async () => {
    const token = await new SignJWT({ sub: 'u', tenant: 't', exp: Math.floor(Date.now() / 1000) + 60 }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));
    const open = await start({}, true);
    try {
      assert.equal(await handshake(open.port, { origin: 'https://app.example.com' }, `?access_token=${token}`), 101);
      assert.equal(await handshake(open.port, { origin: 'https://app.example.com' }), 401, 'still needs its token');
    } finally {
      await open.server.close();
    }
    const listed = await start({ allowedOrigins: ['https://app.example.com'] }, true);
    try {
      assert.equal(await handshake(listed.port, { origin: 'https://app.example.com' }, `?access_token=${token}`), 101);
      assert.equal(await handshake(listed.port, { origin: 'https://evil.example' }, `?access_token=${token}`), 403);
    } finally {
      await listed.server.close();
    }
  });
});
