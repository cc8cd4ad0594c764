/**
 * Issue #13, finding 1: connections that never finish a request must not hold descriptors. The
 * real `tidewire start` runs under a descriptor limit of 256 (prlimit) with Postgres and two
 * tenants; hundreds of sockets that send half a request (`GET /ws HTTP/1.1\r\nHost: x\r\n`) or
 * nothing, and never read or close, come from several loopback addresses. Valid sessions of both
 * tenants must still connect and get their data, and once the handshake timeout has passed every
 * descriptor those sockets took must be released (counted in /proc/<pid>/fd).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { type TestPostgres, freePort, startPostgres } from '../support/postgres.ts';
import { waitFor } from '../support/wait.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const SECRET = 'hardening-connections-secret-0123456789';
const NOFILE = 256;
const HANDSHAKE_TIMEOUT_MS = 2_000;
const PER_ADDRESS = 32;
const GLOBAL = 96;

let db: TestPostgres;
let child: ChildProcess | undefined;
let out = '';
const attack: Socket[] = [];

before(async () => {
  db = await startPostgres();
  await db.query(`CREATE TABLE orders (id int PRIMARY KEY, org text NOT NULL, qty int NOT NULL)`);
  await db.query(`INSERT INTO orders VALUES (1, 'acme', 1), (2, 'acme', 2), (3, 'globex', 3)`);
});

after(async () => {
  for (const s of attack) s.destroy();
  if (child && child.exitCode === null) {
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
  }
  await db?.stop();
});

function token(tenant: string): Promise<string> {
  return new SignJWT({ sub: `u-${tenant}`, tenant, roles: ['reader'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(SECRET));
}

const descriptors = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

/** A WebSocket session from `localAddress` that subscribes to orders/** and keeps what it receives. */
function session(port: number, localAddress: string, tok: string): Promise<{ ws: WebSocket; messages: Array<Record<string, any>> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?access_token=${tok}`, { localAddress, handshakeTimeout: 5_000 });
    const messages: Array<Record<string, any>> = [];
    ws.on('message', (d) => messages.push(...JSON.parse(String(d))));
    ws.once('error', reject);
    ws.once('open', () => {
      ws.send(JSON.stringify({ type: 'subscribe', id: 's', selector: 'orders/**' }));
      resolve({ ws, messages });
    });
  });
}

/** Opens a socket from `localAddress` that sends half a request (or nothing) and never reads or closes. */
function silentSocket(port: number, localAddress: string, partial: boolean): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, localAddress });
    attack.push(s);
    s.on('error', () => undefined);
    s.pause();
    s.once('connect', () => {
      if (partial) s.write('GET /ws HTTP/1.1\r\nHost: x\r\n');
      resolve();
    });
    s.once('close', () => resolve());
  });
}

test('half-open and silent connections under a descriptor limit: every tenant still connects, every descriptor is released', { timeout: 120_000 }, async (t) => {
  const port = await freePort();
  const file = join(tmpdir(), `tidewire-hardening-${process.pid}.json`);
  writeFileSync(file, JSON.stringify({
    log: { level: 'warn' },
    // Descriptors are counted: state in memory keeps the store's files out of the count.
    state: { memory: true },
    server: { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS, maxPendingConnections: GLOBAL, maxPendingConnectionsPerAddress: PER_ADDRESS },
    postgres: { url: db.url, slot: 'hardening', publication: 'hardening', tables: [{ table: 'public.orders', path: 'orders/{org}/{id}', tenantColumn: 'org' }] },
    security: { jwt: { algorithms: ['HS256'], secret: SECRET }, roles: { reader: { read: ['orders/**'] } } },
  }));
  child = spawn('prlimit', [`--nofile=${NOFILE}:${NOFILE}`, process.execPath, join(ROOT, 'bin/tidewire.mjs'), 'start', '--config', file, '--port', String(port)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TIDEWIRE_DATABASE_URL: '' },
  });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const pid = child.pid!;
  await waitFor('tidewire to answer /health', async () => {
    if (child!.exitCode !== null) throw new Error(`tidewire exited with ${child!.exitCode}: ${out.slice(-2000)}`);
    const r = await fetch(`http://127.0.0.1:${port}/health`).catch(() => null);
    return r?.status === 200;
  }, 60_000, 100);
  const limit = Number(/Max open files\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))?.[1]);
  assert.equal(limit, NOFILE, 'the service runs under the descriptor limit');
  const baseline = descriptors(pid);

  // 300 from 127.0.0.1, 40 from each of six more addresses: 540 sockets, more than the limit.
  const started = Date.now();
  const opening: Array<Promise<void>> = [];
  for (let i = 0; i < 300; i++) opening.push(silentSocket(port, '127.0.0.1', i % 2 === 0));
  for (let a = 4; a <= 9; a++) for (let i = 0; i < 40; i++) opening.push(silentSocket(port, `127.0.0.${a}`, i % 2 === 1));
  await Promise.all(opening);
  await new Promise((r) => setTimeout(r, 300));
  const held = descriptors(pid) - baseline;
  assert.ok(held <= GLOBAL + 4, `the server holds at most maxPendingConnections of them (held ${held})`);

  // While they are held: both tenants connect (from their own addresses) and get their data.
  const acme = await session(port, '127.0.0.2', await token('acme'));
  const globex = await session(port, '127.0.0.3', await token('globex'));
  const subscribed = (s: { messages: Array<Record<string, any>> }) => s.messages.some((m) => m.type === 'subscribed');
  await waitFor('both sessions subscribed', () => subscribed(acme) && subscribed(globex), 10_000);
  const values = (s: { messages: Array<Record<string, any>> }) => s.messages.filter((m) => m.type === 'value').map((m) => m.path).sort();
  assert.deepEqual(values(acme), ['orders/acme/1', 'orders/acme/2']);
  assert.deepEqual(values(globex), ['orders/globex/3']);
  await db.query(`UPDATE orders SET qty = 30 WHERE id = 3`);
  await db.query(`UPDATE orders SET qty = 10 WHERE id = 1`);
  await waitFor('the live changes', () => acme.messages.some((m) => m.path === 'orders/acme/1' && m.version === 2) && globex.messages.some((m) => m.path === 'orders/globex/3' && m.version === 2), 10_000);
  assert.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200, '/health answers while they are held');
  const sessionsConnected = 2;

  // After the handshake timeout every descriptor they took is released.
  await waitFor('the descriptors to be released', () => descriptors(pid) <= baseline + sessionsConnected + 1, HANDSHAKE_TIMEOUT_MS + 8_000, 50);
  const releasedAfter = Date.now() - started;
  const report = `attack sockets opened ${attack.length} (limit ${NOFILE} descriptors); held by the server at most ${held}; ` +
    `sessions that still connected and got data ${sessionsConnected}/2; every descriptor released ${releasedAfter} ms after the attack began (handshake timeout ${HANDSHAKE_TIMEOUT_MS} ms)`;
  t.diagnostic(report);
  assert.ok(releasedAfter < HANDSHAKE_TIMEOUT_MS + 5_000);
  assert.match(out, /maxPendingConnectionsPerAddress/, 'the limit is warned in the log');
  assert.match(out, /server\.handshakeTimeoutMs/, 'so is the timeout');

  // The attacker's sockets are dead for the server; the sessions are alive, a new one connects.
  assert.equal(acme.ws.readyState, WebSocket.OPEN);
  const again = await session(port, '127.0.0.1', await token('acme'));
  again.ws.close();
  acme.ws.close();
  globex.ws.close();
});
