/**
 * Issue #13, item 2: no `maxRate` a client can send makes the server spin a timer or write to its
 * log per change. 100 sessions ask for `maxRate: 1e-9` against a real service process (real
 * Postgres) while its topics change: each is refused with INVALID_MESSAGE naming `maxRate` and
 * then subscribes at the lowest rate there is (0.01); the process writes no
 * TimeoutOverflowWarning (nor anything else) to its stderr/stdout, and its CPU over the same
 * writes stays within the bound of 100 sessions at `maxRate: 2`. Before the fix each such session
 * re-armed a 1 ms timer forever, with a warning each time.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import pg from 'pg';
import WebSocket from 'ws';
import { type TestPostgres, freePort, startPostgres } from '../support/postgres.ts';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.ts';
import { waitFor } from '../support/wait.ts';

const SESSIONS = 100;
const ROWS = 5;
const WRITE_MS = 3_000;

let db: TestPostgres;
let svc: ServiceProcess;
let url: string;

before(async () => {
  db = await startPostgres();
  await db.query('CREATE TABLE ticks (id int PRIMARY KEY, n int NOT NULL)');
  await db.query(`INSERT INTO ticks SELECT i, 0 FROM generate_series(1, ${ROWS}) i`);
  const port = await freePort();
  svc = await startServiceProcess(
    { postgres: { url: db.url, slot: 'bounds', publication: 'bounds', tables: [{ table: 'public.ticks', path: 'ticks/{id}' }] }, log: { level: 'warn' } },
    port,
  );
  url = `ws://127.0.0.1:${port}/ws`;
});

after(async () => {
  await svc?.kill();
  await db?.stop();
});

/** User plus system CPU of the service process so far, in clock ticks (/proc/<pid>/stat fields 14 and 15). */
function cpuTicks(): number {
  const stat = readFileSync(`/proc/${svc.child.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

interface Client {
  ws: WebSocket;
  answers: Array<{ type: string; id?: string; code?: string; message?: string }>;
  updates: number;
}

/** Opens a session that sends `first`; when it is refused, `retry` (if given). Resolves once a subscription is live. */
async function connect(first: object, retry?: object): Promise<Client> {
  const ws = new WebSocket(url);
  const client: Client = { ws, answers: [], updates: 0 };
  let live = false;
  ws.on('message', (data: Buffer) => {
    for (const m of JSON.parse(String(data)) as Client['answers']) {
      if (m.type === 'hello') ws.send(JSON.stringify(first));
      else if (m.type === 'subscribed') {
        client.answers.push(m);
        live = true;
      } else if (m.type === 'error') {
        client.answers.push(m);
        if (retry) ws.send(JSON.stringify(retry));
      } else if (m.type === 'value' || m.type === 'delta') client.updates++;
    }
  });
  await waitFor('a live subscription', () => live || ws.readyState > WebSocket.OPEN, 20_000, 10);
  assert.ok(live, `the session was closed before its subscription went live: ${JSON.stringify(client.answers)}`);
  return client;
}

/** Updates every row about every 10 ms for `ms`; returns the service's CPU ticks over that time. */
async function writeFor(ms: number): Promise<number> {
  const writer = new pg.Client({ connectionString: db.url });
  await writer.connect();
  const start = cpuTicks();
  const end = Date.now() + ms;
  while (Date.now() < end) {
    await writer.query('UPDATE ticks SET n = n + 1');
    await new Promise((r) => setTimeout(r, 10));
  }
  // Let the last changes reach the sessions (and any timers they armed run) before measuring.
  await new Promise((r) => setTimeout(r, 500));
  const used = cpuTicks() - start;
  await writer.end();
  return used;
}

async function closeAll(clients: Client[]): Promise<void> {
  await Promise.all(
    clients.map((c) => new Promise<void>((resolve) => {
      if (c.ws.readyState === WebSocket.CLOSED) return resolve();
      c.ws.once('close', () => resolve());
      c.ws.close();
    })),
  );
}

test('tiny maxRates are refused and the most throttled sessions cost no more than normal ones: no timer spins, nothing is logged', async () => {
  const normal = await Promise.all(Array.from({ length: SESSIONS }, (_, i) => connect({ type: 'subscribe', id: `n${i}`, selector: 'ticks/**', maxRate: 2 })));
  const normalTicks = await writeFor(WRITE_MS);
  assert.ok(normal.every((c) => c.updates > ROWS), 'the normal sessions received updates');
  await closeAll(normal);

  const logged = svc.output().length;
  const tiny = await Promise.all(
    Array.from({ length: SESSIONS }, (_, i) =>
      connect({ type: 'subscribe', id: `t${i}`, selector: 'ticks/**', maxRate: 1e-9 }, { type: 'subscribe', id: `m${i}`, selector: 'ticks/**', maxRate: 0.01 })),
  );
  const tinyTicks = await writeFor(WRITE_MS);
  const output = svc.output().slice(logged);
  await closeAll(tiny);

  const warnings = output.split('TimeoutOverflowWarning').length - 1;
  console.log(`service CPU over ${WRITE_MS} ms of writes: ${normalTicks} ticks with ${SESSIONS} sessions at maxRate 2, ${tinyTicks} with ${SESSIONS} sessions that asked for maxRate 1e-9; ${output.length} characters of log, ${warnings} TimeoutOverflowWarnings`);
  assert.equal(warnings, 0, 'no timer overflows');
  assert.ok(output.length < 2_000, `the service wrote ${output.length} characters of log while tiny-rate sessions watched changing topics`);
  assert.ok(tinyTicks <= normalTicks * 2 + 50, `CPU with tiny-rate sessions (${tinyTicks} ticks) stays within twice that of normal-rate sessions (${normalTicks} ticks) plus noise`);
  for (const c of tiny) {
    const refused = c.answers[0];
    assert.equal(refused?.type, 'error', `maxRate 1e-9 is refused, not served: ${JSON.stringify(c.answers)}`);
    assert.equal(refused.code, 'INVALID_MESSAGE');
    assert.match(refused.id ?? '', /^t\d+$/, 'the error answers the refused subscribe');
    assert.match(refused.message ?? '', /maxRate/);
    assert.equal(c.answers[1]?.type, 'subscribed', 'the lowest rate, 0.01, is served');
  }
});
