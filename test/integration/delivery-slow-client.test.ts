/**
 * A client that stops reading (its socket paused) while rows keep changing in Postgres: with the
 * default `conflate` policy it is not dropped; its updates are merged per topic, so what the
 * server holds for it stays bounded (about slowClientBytes of socket backlog plus one entry per
 * topic), other clients keep their latency, and once it reads again it gets the current state of
 * every topic as deltas from what it held, nothing missed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import WebSocket from 'ws';
import { applyPatch } from '../../client/json-patch.ts';
import type { QueueDepth } from '../../services/distribution/index.ts';
import type { ServerMessage } from '../../core/messages.ts';
import type { JsonObject } from '../../core/json.ts';
import type { TidewireService } from '../../services/service.ts';
import { type TestPostgres, startPostgres } from '../support/postgres.ts';
import { startService } from '../support/service.ts';
import { waitFor } from '../support/wait.ts';

const ROWS = 200;
const SLOW_CLIENT_BYTES = 256 * 1024;

let db: TestPostgres;
let service: TidewireService;
let url: string;

before(async () => {
  db = await startPostgres();
  await db.query(`CREATE TABLE feed (id int PRIMARY KEY, n int NOT NULL, stamp float8 NOT NULL, body text NOT NULL)`);
  await db.query(`INSERT INTO feed SELECT i, 0, 0, repeat('a', 2000) FROM generate_series(1, ${ROWS}) i`);
  ({ service, url } = await startService({
    server: { port: 0, slowClientBytes: SLOW_CLIENT_BYTES },
    postgres: { url: db.url, slot: 'slow', publication: 'slow', tables: [{ table: 'public.feed', path: 'feed/{id}' }] },
  }));
});

after(async () => {
  await service?.stop();
  await db?.stop();
});

async function subscriber() {
  const ws = new WebSocket(url);
  const replica = new Map<string, { version: number; value: JsonObject }>();
  /** Write-to-receive latency of each update (ms), from the stamp the writer put in the row. */
  const latencies: number[] = [];
  let messages = 0;
  let live = false;
  ws.on('message', (data) => {
    const now = Date.now();
    for (const m of JSON.parse(String(data)) as ServerMessage[]) {
      messages++;
      if (m.type === 'subscribed') {
        live = true;
        continue;
      }
      if (m.type === 'value') replica.set(m.path, { version: m.version, value: m.value });
      else if (m.type === 'delta') {
        const held = replica.get(m.path);
        assert.equal(held?.version, m.base ?? m.version - 1, `${m.path} v${m.version} builds on v${held?.version}`);
        replica.set(m.path, { version: m.version, value: applyPatch(held!.value, m.patch) as JsonObject });
      } else continue;
      if (live) {
        const stamp = replica.get((m as { path: string }).path)!.value.stamp as number;
        if (stamp > 0) latencies.push(now - stamp);
      }
    }
  });
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  ws.send(JSON.stringify({ type: 'subscribe', id: 's', selector: 'feed/*' }));
  await waitFor('subscribed', () => live);
  const socket = (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
  return { ws, replica, latencies, messages: () => messages, pause: () => socket.pause(), resume: () => socket.resume() };
}

/** Writes for `ms`: every 10 ms one transaction changing 50 rows' 3 KB body (several MB/s per subscriber). */
async function write(ms: number, from: number): Promise<number> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  let n = from;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    n++;
    const first = 1 + ((n * 50) % ROWS);
    await c.query(
      `UPDATE feed SET n = $1, stamp = extract(epoch from clock_timestamp()) * 1000, body = repeat(chr(65 + $1 % 26), 3000) WHERE id >= $2 AND id < $2 + 50`,
      [n, first],
    );
    await new Promise((r) => setTimeout(r, 10));
  }
  await c.end();
  return n;
}

const pct = (xs: number[], p: number): number => Math.round([...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]);

describe('a client that stops reading (conflate policy)', () => {
  it('is not dropped, costs bounded memory, does not slow others, and catches up exactly', async (t) => {
    const healthy = await subscriber();
    t.after(() => healthy.ws.close());

    // Baseline: the healthy client alone (after a warm-up).
    let n = await write(1000, 0);
    healthy.latencies.length = 0;
    n = await write(2000, n);
    const baseline = healthy.latencies.splice(0);

    const stalled = await subscriber();
    t.after(() => stalled.ws.terminate());
    stalled.pause();
    const samples: QueueDepth[] = [];
    const sampler = setInterval(() => samples.push(service.distribution.queueDepth()), 50);
    const conflations0 = service.distribution.stats.conflations;
    n = await write(4000, n);
    clearInterval(sampler);
    const during = healthy.latencies.splice(0);
    const depth = service.distribution.queueDepth();

    assert.equal(service.distribution.sessionCount, 2, 'the slow client was not dropped');
    assert.equal(depth.behind, 1, 'it is behind');
    assert.ok(service.distribution.stats.conflations - conflations0 > 1000, `${service.distribution.stats.conflations - conflations0} updates merged`);
    // What the server holds for it: the socket's backlog (stops growing past slowClientBytes) and
    // what was queued before it fell behind; merged updates are one entry per topic.
    const worst = Math.max(...samples.map((s) => s.bytes + s.socketBytes));
    assert.ok(worst < 2 * 1024 * 1024, `at most ${(worst / 1024).toFixed(0)} KiB queued for it`);
    assert.ok(Math.max(...samples.map((s) => s.conflatedTopics)) <= ROWS);

    // The others' latency: loosely (the benchmark measures it precisely).
    const p50 = [pct(baseline, 50), pct(during, 50)];
    const p99 = [pct(baseline, 99), pct(during, 99)];
    const report = `healthy client write-to-receive latency p50 ${p50[0]} → ${p50[1]} ms, p99 ${p99[0]} → ${p99[1]} ms with a stalled client; ` +
      `stalled session held at most ${(worst / 1024).toFixed(0)} KiB (+ ${ROWS} merged topics)`;
    t.diagnostic(report);
    console.log(`# delivery-slow-client: ${report}`);
    assert.ok(during.length > 1000, `${during.length} latency samples`);
    assert.ok(p50[1] < Math.max(3 * p50[0], 50), report);
    assert.ok(p99[1] < Math.max(3 * p99[0], 250), report);

    // It reads again: the current state of every row, each update built on what it held.
    stalled.resume();
    const table = new Map((await db.query<{ id: number; n: number }>('SELECT id, n FROM feed')).rows.map((r) => [`feed/${r.id}`, r.n]));
    await waitFor('the stalled client to catch up', () => [...table].every(([p, v]) => stalled.replica.get(p)?.value.n === v), 20_000);
    for (const [path, held] of stalled.replica) {
      assert.deepEqual(held.value, service.store.get(path)!.value);
      assert.equal(held.version, service.store.get(path)!.version);
    }
    const updates = n * 50;
    assert.ok(stalled.messages() < updates / 3, `${stalled.messages()} messages for ${updates} row updates`);
    await waitFor('no longer behind, nothing merged left', () => {
      const d = service.distribution.queueDepth();
      return d.behind === 0 && d.conflatedTopics === 0;
    });
  });
});
