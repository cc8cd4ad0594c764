/**
 * Issue #13, finding 6: `GET /topics/<path>` must take as long for a topic the caller may not
 * read (another tenant's, or its own tenant's outside its grants) as for a path with no topic,
 * or the time tells that it exists. The real `tidewire start` (audit log on, to a pipe) over
 * Postgres with two tenants; 400 interleaved samples of each case over one kept-alive
 * connection, in a fresh random order every round. Two missing paths are measured against each
 * other as the control: the machine's own noise. A gap counts only when it is both large
 * (a Mann-Whitney z above 4 and above twice the control's, and a median over 3% slower) and
 * consistent: the test fails when all of three rounds show it, so one noisy round cannot fail
 * it and a real oracle (z ≈ 12 in the issue) cannot pass.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { type TestPostgres, freePort, startPostgres } from '../support/postgres.ts';
import { waitFor } from '../support/wait.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const SECRET = 'hardening-timing-secret-0123456789-abcdef';
const SAMPLES = 400;
const ROUNDS = 3;

let db: TestPostgres;
let child: ChildProcess | undefined;
let port = 0;
let shipper: ChildProcess | undefined;
let logFile = '';
const logged = () => { try { return statSync(logFile).size; } catch { return 0; } };

before(async () => {
  db = await startPostgres();
  await db.query(`CREATE TABLE orders (id int PRIMARY KEY, org text NOT NULL, note text NOT NULL)`);
  // acme may read orders/acme/100 only; orders/acme/200 is acme's but not granted; orders/globex/300 is globex's.
  await db.query(`INSERT INTO orders VALUES (100, 'acme', 'readable'), (200, 'acme', 'not granted'), (300, 'globex', 'another tenant')`);
  port = await freePort();
  const file = join(tmpdir(), `tidewire-timing-${process.pid}.json`);
  writeFileSync(file, JSON.stringify({
    log: { level: 'info' },
    state: { dir: mkdtempSync(join(tmpdir(), 'tidewire-timing-state-')) },
    postgres: { url: db.url, slot: 'timing', publication: 'timing', tables: [{ table: 'public.orders', path: 'orders/{org}/{id}', tenantColumn: 'org' }] },
    security: { jwt: { algorithms: ['HS256'], secret: SECRET }, roles: { reader: { read: ['orders/acme/100'] } } },
  }));
  // What it logs goes down a pipe to another process, as to a log shipper: the audit records are
  // real writes. Not to this process: reading them here would put an event for every denial in the
  // loop that times the answers, and the harness would measure itself (a steady 5-8%).
  logFile = join(tmpdir(), `tidewire-timing-${process.pid}.log`);
  shipper = spawn('sh', ['-c', 'exec cat > "$0"', logFile], { stdio: ['pipe', 'ignore', 'inherit'] });
  child = spawn(process.execPath, [join(ROOT, 'bin/tidewire.mjs'), 'start', '--config', file, '--port', String(port)], {
    cwd: ROOT, stdio: ['ignore', shipper.stdin!, 'pipe'], env: { ...process.env, TIDEWIRE_DATABASE_URL: '' },
  });
  shipper.stdin!.destroy(); // the child holds its own copy of the pipe's end
  child.stderr!.resume();
  // /ready, not /health: the topics must be loaded (snapshot done) before they are sampled.
  await waitFor('tidewire to be ready', async () => {
    if (child!.exitCode !== null) throw new Error(`tidewire exited with ${child!.exitCode}`);
    return (await fetch(`http://127.0.0.1:${port}/ready`).catch(() => null))?.status === 200;
  }, 60_000, 100);
});

after(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
  }
  shipper?.kill('SIGKILL');
  await db?.stop();
});

const token = () =>
  new SignJWT({ sub: 'timing', tenant: 'acme', roles: ['reader'], exp: Math.floor(Date.now() / 1000) + 600 }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));

function timedGet(agent: Agent, path: string, auth: string): Promise<{ ms: number; status: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request({ host: '127.0.0.1', port, path, agent, headers: { authorization: auth } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ ms: performance.now() - t0, status: res.statusCode! }));
    });
    req.on('error', reject);
    req.end();
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Mann-Whitney U as a z score: positive when `a` tends to be slower than `b` (ties get mid-ranks). */
function mannWhitneyZ(a: number[], b: number[]): number {
  const all = [...a.map((v) => ({ v, a: true })), ...b.map((v) => ({ v, a: false }))].sort((x, y) => x.v - y.v);
  let rankA = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j].v === all[i].v) j++;
    const mid = (i + j + 1) / 2;
    for (let k = i; k < j; k++) if (all[k].a) rankA += mid;
    i = j;
  }
  const n1 = a.length;
  const n2 = b.length;
  const u = rankA - (n1 * (n1 + 1)) / 2;
  return (u - (n1 * n2) / 2) / Math.sqrt((n1 * n2 * (n1 + n2 + 1)) / 12);
}

type Case = 'anotherTenant' | 'noGrant' | 'missing' | 'missing2';
const PATHS: Record<Case, string> = {
  anotherTenant: '/topics/orders/globex/300',
  noGrant: '/topics/orders/acme/200',
  missing: '/topics/orders/globex/301',
  missing2: '/topics/orders/acme/201',
};

async function sample(auth: string): Promise<Record<Case, number[]>> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const times: Record<Case, number[]> = { anotherTenant: [], noGrant: [], missing: [], missing2: [] };
  const cases = Object.keys(PATHS) as Case[];
  for (let i = 0; i < 50; i++) for (const c of cases) await timedGet(agent, PATHS[c], auth); // warm-up
  for (let i = 0; i < SAMPLES; i++) {
    const order = [...cases].sort(() => Math.random() - 0.5);
    for (const c of order) {
      const r = await timedGet(agent, PATHS[c], auth);
      assert.equal(r.status, 404, c);
      times[c].push(r.ms);
      // Let work the server does after answering finish before the next request: it must not
      // be counted against whichever case happens to come next.
      await new Promise((r) => setTimeout(r, 1));
    }
  }
  agent.destroy();
  return times;
}

test('GET /topics: a topic the caller may not read answers as fast as a missing one', { timeout: 240_000 }, async (t) => {
  const auth = `Bearer ${await token()}`;
  assert.equal((await timedGet(new Agent(), '/topics/orders/acme/100', auth)).status, 200, 'the readable one is there');
  const before = logged();
  const verdicts: string[] = [];
  let clean = false;
  for (let round = 1; round <= ROUNDS && !clean; round++) {
    const s = await sample(auth);
    const control = mannWhitneyZ(s.missing2, s.missing);
    // Each forbidden path against the missing one that walks the same grants (same tenant prefix).
    const gaps = ([['anotherTenant', 'missing'], ['noGrant', 'missing2']] as const).map(([c, against]) => {
      const z = mannWhitneyZ(s[c], s[against]);
      const rel = median(s[c]) / median(s[against]) - 1;
      return { c, against, z, rel, gap: z > Math.max(4, 2 * Math.abs(control)) && rel > 0.03 };
    });
    const line = `round ${round}: median missing ${median(s.missing).toFixed(3)} / ${median(s.missing2).toFixed(3)} ms, control z ${control.toFixed(1)}; ` +
      gaps.map((g) => `${g.c} ${median(s[g.c]).toFixed(3)} ms (${(g.rel * 100).toFixed(1)}% vs ${g.against}, z ${g.z.toFixed(1)})`).join(', ');
    verdicts.push(line);
    t.diagnostic(line);
    clean = !gaps.some((g) => g.gap);
  }
  assert.ok(logged() > before, 'the denials were audited (the log grew)');
  assert.ok(clean, `a forbidden topic answered consistently slower than a missing one:\n${verdicts.join('\n')}`);
});

test('WebSocket subscribe: a topic the session may not read answers as fast as a missing one', { timeout: 240_000 }, async (t) => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?access_token=${await token()}`);
  await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
  const waiting = new Map<string, (at: number) => void>();
  ws.on('message', (d) => {
    const at = performance.now();
    for (const m of JSON.parse(String(d))) if (m.type === 'subscribed') waiting.get(m.id)?.(at);
  });
  let n = 0;
  const subscribe = (selector: string) =>
    new Promise<number>((resolve) => {
      const id = `s${++n}`;
      const t0 = performance.now();
      waiting.set(id, (at) => {
        waiting.delete(id);
        ws.send(JSON.stringify({ type: 'unsubscribe', id }));
        resolve(at - t0);
      });
      ws.send(JSON.stringify({ type: 'subscribe', id, selector }));
    });
  const selectors = { anotherTenant: 'orders/globex/300', noGrant: 'orders/acme/200', missing: 'orders/globex/301' };
  const times: Record<keyof typeof selectors, number[]> = { anotherTenant: [], noGrant: [], missing: [] };
  const cases = Object.keys(selectors) as Array<keyof typeof selectors>;
  // The server-wide rate limit is 200 messages/s and every sample is two messages.
  for (let i = 0; i < 150; i++) {
    for (const c of [...cases].sort(() => Math.random() - 0.5)) {
      times[c].push(await subscribe(selectors[c]));
      await new Promise((r) => setTimeout(r, 12));
    }
  }
  ws.close();
  const m = median(times.missing);
  const line = `median missing ${m.toFixed(3)} ms; ` + (['anotherTenant', 'noGrant'] as const).map((c) => `${c} ${median(times[c]).toFixed(3)} ms (z ${mannWhitneyZ(times[c], times.missing).toFixed(1)})`).join(', ');
  t.diagnostic(line);
  for (const c of ['anotherTenant', 'noGrant'] as const) {
    const z = mannWhitneyZ(times[c], times.missing);
    assert.ok(!(z > 4 && median(times[c]) / m > 1.03), `${c} subscribed consistently slower than a missing path: ${line}`);
  }
});
