/** The HTTP routes beside the WebSocket endpoint, requested with raw paths (no client-side normalisation). */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import WebSocket from 'ws';
import type { ServerConfig } from '../../services/config/config.ts';
import { DistributionServer, type DistributionServerOptions } from '../../services/distribution/index.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import { Pipeline } from '../../services/pipeline.ts';
import { encodeSegment } from '../../core/path.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';

const CONFIG: ServerConfig = {
  host: '127.0.0.1',
  port: 0,
  maxPayloadBytes: 4096,
  sendQueueBytes: 1 << 20,
  flushIntervalMs: 2,
  maxSubscriptionsPerSession: 5,
  maxMessagesPerSecond: 50,
};

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json(): any;
}

/** GET (or another method) with the path sent exactly as given. */
function http(port: number, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, json: () => JSON.parse(body) }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function start(options: Partial<DistributionServerOptions> = {}) {
  const store = new TopicStore();
  const handoff = new InProcessHandoff(store);
  const pipeline = new Pipeline(store, handoff);
  const server = new DistributionServer(handoff, CONFIG, { logger: pino({ level: 'silent' }), ...options });
  const { port } = await server.listen();
  return { store, pipeline, server, port };
}

describe('HTTP routes', () => {
  let s: Awaited<ReturnType<typeof start>>;
  const slashy = `orders/${encodeSegment('a/b')}/1`; // orders/a%2Fb/1

  before(async () => {
    s = await start();
    await s.pipeline.apply([
      { path: slashy, source: 'o', value: { id: 1, name: 'slash' } },
      { path: 'orders/a/b/1', source: 'o', value: { id: 2, name: 'deeper' } },
    ]);
  });
  after(() => s.server.close());

  it('GET /health reports status, epoch, topics, sessions and sources', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/ws`);
    await new Promise((r) => ws.once('message', r));
    const r = await http(s.port, '/health');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.deepEqual(r.json(), { status: 'ok', epoch: s.store.epoch, topics: 2, sessions: 1, sources: [] });
    ws.close();
  });

  it('GET /topics/<path> takes the raw path: a%2Fb stays one segment', async () => {
    const r = await http(s.port, `/topics/${slashy}`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { path: 'orders/a%2Fb/1', version: 1, epoch: s.store.epoch, value: { id: 1, name: 'slash' } });
    assert.equal((await http(s.port, '/topics/orders/a/b/1')).json().value.name, 'deeper');
    assert.equal((await http(s.port, `/topics/${slashy}?pretty=1`)).status, 200, 'the query string is not part of the path');
    await s.pipeline.apply([{ path: slashy, source: 'o', value: { id: 1, name: 'renamed' } }]);
    assert.equal((await http(s.port, `/topics/${slashy}`)).json().version, 2);
  });

  it('a missing topic is 404 NOT_FOUND', async () => {
    const r = await http(s.port, '/topics/orders/nope/1');
    assert.equal(r.status, 404);
    assert.equal(r.json().error.code, 'NOT_FOUND');
  });

  it('an invalid path is 400 INVALID_PATH with a reason', async () => {
    for (const p of ['/topics/', '/topics/a//b', '/topics/a/', '/topics/a/..', '/topics/a/.', '/topics/../x', '/topics/a/%2e%2e', '/topics/a*', '/topics/a/%zz', `/topics/${'x'.repeat(1100)}`]) {
      const r = await http(s.port, p);
      assert.equal(r.status, 400, p);
      assert.equal(r.json().error.code, 'INVALID_PATH', p);
      assert.ok(r.json().error.message.length > 10);
    }
  });

  it('unknown routes are 404 JSON; wrong methods 405; /ws without upgrade 426', async () => {
    for (const p of ['/', '/nope', '/topics', '/assets/app.js', '/health/x']) {
      const r = await http(s.port, p);
      assert.equal(r.status, 404, p);
      assert.equal(r.json().error.code, 'NOT_FOUND');
    }
    const post = await http(s.port, '/health', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    assert.equal((await http(s.port, '/ws')).status, 426);
    const head = await http(s.port, '/health', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  });

  it('a WebSocket upgrade on another path is refused with 404', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/other`);
    ws.on('error', () => undefined);
    const status = await new Promise<number>((resolve) => ws.on('unexpected-response', (_req, res) => resolve(res.statusCode!)));
    assert.equal(status, 404);
    ws.terminate();
    const ok = new WebSocket(`ws://127.0.0.1:${s.port}/ws?token=x`);
    await new Promise((r, j) => (ok.once('open', r), ok.once('error', j)));
    ok.close();
  });
});

describe('GET /health from the injected health check', () => {
  it('failed → 503, degraded → 200, with the sources', async () => {
    let status: 'ok' | 'degraded' | 'failed' = 'failed';
    const s = await start({ health: () => ({ status, sources: [{ name: 'postgres', state: status === 'failed' ? 'failed' : 'snapshotting' }] }) });
    try {
      const failed = await http(s.port, '/health');
      assert.equal(failed.status, 503);
      assert.equal(failed.json().status, 'failed');
      assert.deepEqual(failed.json().sources, [{ name: 'postgres', state: 'failed' }]);
      status = 'degraded';
      assert.equal((await http(s.port, '/health')).status, 200);
    } finally {
      await s.server.close();
    }
  });

  it('a health check that throws is a 500, and the server carries on', async () => {
    const s = await start({ health: () => { throw new Error('boom'); } });
    try {
      const r = await http(s.port, '/health');
      assert.equal(r.status, 500);
      assert.equal(r.json().error.code, 'INTERNAL');
      assert.equal((await http(s.port, '/topics/x')).status, 404);
    } finally {
      await s.server.close();
    }
  });
});

describe('static files (staticDir)', () => {
  let dir: string;
  let s: Awaited<ReturnType<typeof start>>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tidewire-static-'));
    mkdirSync(join(dir, 'www', 'assets', 'img'), { recursive: true });
    writeFileSync(join(dir, 'www', 'index.html'), '<!doctype html><title>dash</title>');
    writeFileSync(join(dir, 'www', 'assets', 'app.js'), 'console.log(1)');
    writeFileSync(join(dir, 'www', 'assets', 'app.css'), 'body{}');
    writeFileSync(join(dir, 'www', 'assets', 'img', 'a b.svg'), '<svg/>');
    writeFileSync(join(dir, 'secret.txt'), 'do not serve');
    symlinkSync(join(dir, 'secret.txt'), join(dir, 'www', 'assets', 'link.txt'));
    s = await start({ staticDir: join(dir, 'www') });
  });
  after(async () => {
    await s.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves / and /assets/* with their content types', async () => {
    const index = await http(s.port, '/');
    assert.equal(index.status, 200);
    assert.equal(index.headers['content-type'], 'text/html; charset=utf-8');
    assert.match(index.body, /dash/);
    const js = await http(s.port, '/assets/app.js');
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(js.body, 'console.log(1)');
    assert.equal((await http(s.port, '/assets/app.css')).headers['content-type'], 'text/css; charset=utf-8');
    const svg = await http(s.port, '/assets/img/a%20b.svg');
    assert.equal(svg.status, 200);
    assert.equal(svg.headers['content-type'], 'image/svg+xml');
  });

  it('never serves anything outside the folder', async () => {
    for (const p of ['/assets/../secret.txt', '/assets/..%2f..%2fsecret.txt', '/assets/%2e%2e/%2e%2e/secret.txt', '/assets/..\\..\\secret.txt', '/assets/%00', '/assets/link.txt', '/assets/img', '/assets/nope.js', '/assets/']) {
      const r = await http(s.port, p);
      assert.ok(r.status === 400 || r.status === 404, `${p} → ${r.status}`);
      assert.doesNotMatch(r.body, /do not serve/);
    }
  });

  it('the API routes still work beside it', async () => {
    assert.equal((await http(s.port, '/health')).status, 200);
  });
});
