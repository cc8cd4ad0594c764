/**
 * Issue #11, item 5: a failure while delivering to one session is that session's failure. Real
 * Postgres through a real TidewireService; the test injects a throw into chosen sessions (their
 * queue throws, as a bug in the queue, the delivery or a socket write would) on fan-out's fast
 * path, on the filtered path and in a flush round, and into a hand-off listener. Each failing
 * session is closed with 1011 and one error log line; every other session receives every change,
 * version after version, and ingest goes on (the source stays healthy, later writes arrive).
 * Before the fix, the fast-path throw failed the Postgres sink (PG_SINK_FAILED, not retried) and
 * a throw in a flush round escaped a timer.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import pino from 'pino';
import WebSocket from 'ws';
import { applyPatch } from '../../client/json-patch.ts';
import type { ServerMessage } from '../../core/messages.ts';
import type { Session } from '../../services/distribution/session.ts';
import { parseConfig } from '../../services/config/config.ts';
import type { JsonObject } from '../../core/json.ts';
import { TidewireService } from '../../services/service.ts';
import { type TestPostgres, startPostgres } from '../support/postgres.ts';
import { waitFor } from '../support/wait.ts';

const ROWS = 8;

let db: TestPostgres;
let service: TidewireService;
let url: string;
const logLines: Array<{ level: number; msg: string; session?: string; err?: { message: string } }> = [];

before(async () => {
  db = await startPostgres();
  await db.query('CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL)');
  await db.query(`INSERT INTO items SELECT i, 0 FROM generate_series(1, ${ROWS}) i`);
  const logs = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) logLines.push(JSON.parse(line));
      done();
    },
  });
  const config = parseConfig({
    server: { port: 0 },
    postgres: { url: db.url, slot: 'isolation', publication: 'isolation', tables: [{ table: 'public.items', path: 'items/{id}' }] },
  }, {});
  service = new TidewireService(config, { logger: pino({ level: 'info' }, logs) });
  const { port } = await service.start();
  url = `ws://127.0.0.1:${port}/ws`;
});

after(async () => {
  await service?.stop();
  await db?.stop();
});

/** The server-side sessions, newest last (the test reaches in to inject a failure into one). */
function serverSessions(): Session[] {
  return [...service.distribution['sessions']];
}

interface Client {
  ws: WebSocket;
  session: Session;
  replica: Map<string, { version: number; value: JsonObject }>;
  /** Per path, every version received after the subscription went live. */
  versions: Map<string, number[]>;
  closed: Promise<number>;
}

async function connect(subscribe: object): Promise<Client> {
  const before = new Set(serverSessions());
  const ws = new WebSocket(url);
  const replica = new Map<string, { version: number; value: JsonObject }>();
  const versions = new Map<string, number[]>();
  let live = false;
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.on('message', (data: Buffer) => {
    for (const m of JSON.parse(String(data)) as ServerMessage[]) {
      if (m.type === 'hello') ws.send(JSON.stringify({ type: 'subscribe', id: 's', selector: 'items/**', ...subscribe }));
      else if (m.type === 'subscribed') live = true;
      else if (m.type === 'value') replica.set(m.path, { version: m.version, value: m.value });
      else if (m.type === 'delta') {
        const held = replica.get(m.path);
        assert.equal(held?.version, m.base ?? m.version - 1, `${m.path} v${m.version} builds on what the client holds`);
        replica.set(m.path, { version: m.version, value: applyPatch(held!.value, m.patch) as JsonObject });
      }
      if (live && (m.type === 'value' || m.type === 'delta')) versions.set(m.path, [...(versions.get(m.path) ?? []), m.version]);
    }
  });
  await waitFor('a live subscription', () => live);
  const session = serverSessions().find((s) => !before.has(s));
  assert.ok(session, 'the server-side session');
  return { ws, session, replica, versions, closed };
}

/** Each row updated `rounds` times, one transaction per statement; returns the table afterwards. */
async function write(rounds: number): Promise<Map<string, number>> {
  const writer = new pg.Client({ connectionString: db.url });
  await writer.connect();
  for (let r = 0; r < rounds; r++) for (let id = 1; id <= ROWS; id++) await writer.query('UPDATE items SET n = n + 1 WHERE id = $1', [id]);
  await writer.query('BEGIN');
  await writer.query('UPDATE items SET n = n + 1');
  await writer.query('COMMIT');
  const rows = (await writer.query<{ id: number; n: number }>('SELECT id, n FROM items')).rows;
  await writer.end();
  return new Map(rows.map((r) => [`items/${r.id}`, r.n]));
}

/**
 * The client holds every row as the table has it (each delta applied to the version it builds
 * on) and, unless throttled (which merges updates), got every version since it subscribed, in
 * order, without a gap.
 */
async function holdsEverything(c: Client, table: Map<string, number>, what: string, everyVersion = true): Promise<void> {
  await waitFor(`${what} to reach the table`, () => [...table].every(([p, n]) => c.replica.get(p)?.value.n === n), 10_000, 10);
  if (!everyVersion) return;
  for (const [path, seen] of c.versions) {
    for (let i = 1; i < seen.length; i++) assert.equal(seen[i], seen[i - 1] + 1, `${what}: ${path} v${seen[i - 1]} then v${seen[i]}`);
  }
}

async function healthy(): Promise<void> {
  const r = await fetch(url.replace('ws://', 'http://').replace('/ws', '/health'));
  const body = (await r.json()) as { status: string };
  assert.equal(body.status, 'ok', `the service is healthy: ${JSON.stringify(body)}`);
}

function failing(c: Client, where: 'push' | 'take'): void {
  c.session.queue[where] = () => {
    throw new Error(`injected failure in ${where} for session ${c.session.id}`);
  };
}

describe('a failure delivering to one session', () => {
  it('closes that session (1011, one error line) on the fast path, the filtered path and in a flush round; the others get every change and ingest goes on', { timeout: 90_000 }, async () => {
    const plain = await connect({});
    const filtered = await connect({ filter: 'n >= 0' });
    const throttled = await connect({ maxRate: 1000 });
    const fastVictim = await connect({});
    const filteredVictim = await connect({ filter: 'n >= 0' });
    const flushVictim = await connect({});
    assert.equal(fastVictim.session.simple, true, 'the fast-path victim is served by the fast path');
    assert.equal(filteredVictim.session.simple, false, 'the filtered victim by its delivery');
    failing(fastVictim, 'push');
    failing(filteredVictim, 'push');
    failing(flushVictim, 'take');

    const table = await write(5);
    for (const [victim, what] of [[fastVictim, 'fast path'], [filteredVictim, 'filtered path'], [flushVictim, 'flush']] as const) {
      const code = await Promise.race([victim.closed, new Promise<string>((r) => setTimeout(() => r('still open after 10 s'), 10_000).unref())]);
      assert.equal(code, 1011, `the ${what} victim is closed with 1011`);
      const lines = logLines.filter((l) => l.level === 50 && l.session === victim.session.id);
      assert.equal(lines.length, 1, `one error line for the ${what} victim: ${JSON.stringify(lines)}`);
      assert.match(lines[0].msg, /failed to deliver to a session/);
      assert.match(lines[0].err?.message ?? '', /injected failure/);
    }
    await holdsEverything(plain, table, 'the plain session');
    await holdsEverything(filtered, table, 'the filtered session');
    await holdsEverything(throttled, table, 'the throttled session', false);
    await healthy();

    // Ingest goes on: later writes reach the sessions that are left.
    const later = await write(2);
    await holdsEverything(plain, later, 'the plain session, later');
    await holdsEverything(filtered, later, 'the filtered session, later');
    await healthy();
    assert.equal(service.distribution.sessionCount, 3, 'only the three victims ended');
    for (const c of [plain, filtered, throttled]) c.ws.close();
  });

  it('a throwing hand-off listener is logged; the others get the batch and ingest goes on', { timeout: 60_000 }, async () => {
    const plain = await connect({});
    const stop = service.handoff.subscribe(() => {
      throw new Error('injected listener failure');
    });
    try {
      const table = await write(1);
      await holdsEverything(plain, table, 'the session');
      await healthy();
      const lines = logLines.filter((l) => l.level === 50 && /hand-off listener failed/.test(l.msg));
      assert.ok(lines.length >= 1, 'the failure is logged');
      assert.match(lines[0].err?.message ?? '', /injected listener failure/);
    } finally {
      stop();
      plain.ws.close();
    }
  });
});
