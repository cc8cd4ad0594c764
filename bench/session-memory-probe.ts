/**
 * Memory per idle session (issue #16 item 3: "an idle authenticated session with one subscription
 * at most ~12 KB of RSS; raw ws costs 8–10 KB here"): N connections of the ws-clients worker, each
 * subscribed to one topic and then idle, against (a) raw `ws` answering the subscribe, and (b)
 * tidewire's DistributionServer over 100 topics, and (c) the same with security on (each session
 * authenticated by its own JWT, one role), each in a fresh process, measured the same way:
 * RSS and V8 heap after a full GC before and after the connections, divided by N.
 *
 *   node --expose-gc --import tsx bench/session-memory-probe.ts 5000
 *   node --expose-gc --import tsx bench/session-memory-probe.ts 5000 --heap-snapshot /tmp/s.heapsnapshot   # (b) only, snapshot after connecting
 */
import { writeHeapSnapshot } from 'node:v8';
import { SignJWT } from 'jose';
import { WebSocketServer } from 'ws';
import { parseConfig } from '../services/config/config.ts';
import { DistributionServer } from '../services/distribution/index.ts';
import { InProcessHandoff } from '../services/handoff/handoff.ts';
import { Pipeline } from '../services/pipeline.ts';
import { SecurityManager } from '../services/security/index.ts';
import { TopicStore } from '../services/topics/topic-store.ts';
import { benchLogger } from './lib/quiet-logger.ts';
import { Worker } from './lib/worker.ts';

const n = Number(process.argv[2] ?? 5000);
const which = process.argv.includes('--raw') ? 'raw' : process.argv.includes('--tidewire') ? 'tidewire' : process.argv.includes('--secure') ? 'secure' : null;
const SECRET = 'a bench secret of at least thirty-two bytes';
const snapshotAt = process.argv.includes('--heap-snapshot') ? process.argv[process.argv.indexOf('--heap-snapshot') + 1] : null;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

function settle(): { rss: number; heap: number } {
  for (let i = 0; i < 3; i++) gc!();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
}

async function serveRaw(): Promise<{ port: number; close(): void }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise((r) => wss.once('listening', r));
  wss.on('connection', (ws) => ws.on('message', () => ws.send(JSON.stringify([{ type: 'subscribed', id: 's' }]))));
  return { port: (wss.address() as { port: number }).port, close: () => wss.close() };
}

/** (c): security on, every session authenticated by its own HS256 JWT, one role reading `items/**`. */
const securityConfig = { jwt: { algorithms: ['HS256'], secret: SECRET }, roles: { reader: { read: [{ pattern: 'items/**' }] } } };

async function sessionTokens(): Promise<string[]> {
  const key = new TextEncoder().encode(SECRET);
  const exp = Math.floor(Date.now() / 1000) + 3600;
  return Promise.all(Array.from({ length: n }, (_, i) => new SignJWT({ tenant: 'acme', roles: ['reader'] }).setProtectedHeader({ alg: 'HS256' }).setSubject(`user-${i}`).setExpirationTime(exp).sign(key)));
}

async function serveTidewire(secure = false): Promise<{ port: number; close(): void }> {
  const store = new TopicStore();
  const handoff = new InProcessHandoff(store);
  await new Pipeline(store, handoff).apply(Array.from({ length: 100 }, (_, i) => ({ path: `items/${i + 1}`, source: 'bench', value: { id: i + 1, qty: 1, note: 'an item' } })));
  const config = parseConfig({ server: { host: "127.0.0.1", port: 0 } }, {});
  const logger = benchLogger('error');
  const security = secure ? SecurityManager.fromConfig(parseConfig({ security: securityConfig }, {}).security!, { logger }) : undefined;
  const server = new DistributionServer(handoff, config.server, { logger, heartbeatIntervalMs: 0, security });
  const { port } = await server.listen();
  return { port, close: () => void server.close() };
}

async function measure(kind: 'raw' | 'tidewire' | 'secure'): Promise<void> {
  const server = kind === 'raw' ? await serveRaw() : await serveTidewire(kind === 'secure');
  const tokens = kind === 'secure' ? await sessionTokens() : undefined;
  const before = settle();
  const clients = await Worker.start('ws-clients', [], { nodeArgs: ['--max-old-space-size=8192'] });
  await clients.call('connect', { url: `ws://127.0.0.1:${server.port}/ws`, n, protocol: 'tidewire', selector: 'items/7', probes: 0, concurrency: 200, tokens });
  await new Promise((r) => setTimeout(r, 1000));
  const after = settle();
  if (snapshotAt) console.log(`heap snapshot: ${writeHeapSnapshot(snapshotAt)}`);
  console.log(`${kind}: ${n} idle sessions, one subscription each: RSS ${((after.rss - before.rss) / n / 1024).toFixed(1)} KiB/session, V8 heap ${((after.heap - before.heap) / n / 1024).toFixed(1)} KiB/session (RSS ${(before.rss / 2 ** 20).toFixed(0)} → ${(after.rss / 2 ** 20).toFixed(0)} MiB)`);
  await clients.stop();
  server.close();
}

if (which) {
  await measure(which);
  process.exit(0);
}
// Each kind in a fresh process, alternating, twice.
const { spawnSync } = await import('node:child_process');
for (let rep = 0; rep < 2; rep++) {
  for (const kind of ['raw', 'tidewire', 'secure']) {
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', new URL(import.meta.url).pathname, String(n), `--${kind}`, ...(snapshotAt && kind === 'tidewire' ? ['--heap-snapshot', snapshotAt] : [])], { encoding: 'utf8' });
    process.stdout.write(r.stdout + r.stderr.split('\n').filter((l) => !/ExperimentalWarning|--trace-warnings/.test(l)).join('\n'));
  }
}
