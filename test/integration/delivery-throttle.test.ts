/**
 * Throttled subscriptions end to end with real Postgres: with `maxRate: 2` a topic updated about
 * 60 times a second reaches the client at most twice a second, never less than an interval apart,
 * each update building on the previous one (a delta with `base`), and the latest value always
 * arrives once the writes stop. The bytes saved against an unthrottled client are reported.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import WebSocket from 'ws';
import { applyPatch } from '../../client/json-patch.ts';
import type { ServerMessage } from '../../core/messages.ts';
import type { JsonObject } from '../../core/json.ts';
import type { TidewireService } from '../../services/service.ts';
import { type TestPostgres, startPostgres } from '../support/postgres.ts';
import { startService } from '../support/service.ts';
import { waitFor } from '../support/wait.ts';

const ROWS = 10;
const RATE = 2;
const SECONDS = 4;

let db: TestPostgres;
let service: TidewireService;
let url: string;

before(async () => {
  db = await startPostgres();
  await db.query(`CREATE TABLE ticks (id int PRIMARY KEY, price numeric(12,4) NOT NULL, seq int NOT NULL, venue text NOT NULL)`);
  await db.query(`INSERT INTO ticks SELECT i, 100, 0, 'venue-' || i || repeat('v', 60) FROM generate_series(1, ${ROWS}) i`);
  ({ service, url } = await startService({
    server: { port: 0 },
    postgres: { url: db.url, slot: 'throttle', publication: 'throttle', tables: [{ table: 'public.ticks', path: 'ticks/{id}' }] },
  }));
});

after(async () => {
  await service?.stop();
  await db?.stop();
});

interface Arrival {
  at: number;
  message: ServerMessage & { path: string; version: number };
}

async function subscriber(subscribe: object) {
  const ws = new WebSocket(url);
  const arrivals: Arrival[] = [];
  const replica = new Map<string, { version: number; value: JsonObject }>();
  let bytes = 0;
  let live = false;
  ws.on('message', (data: Buffer) => {
    const at = performance.now();
    bytes += data.length;
    for (const m of JSON.parse(String(data)) as ServerMessage[]) {
      if (m.type === 'subscribed') live = true;
      if (m.type === 'value') replica.set(m.path, { version: m.version, value: m.value });
      else if (m.type === 'delta') {
        const held = replica.get(m.path);
        assert.equal(held?.version, m.base ?? m.version - 1, `${m.path} v${m.version} builds on v${held?.version}`);
        replica.set(m.path, { version: m.version, value: applyPatch(held!.value, m.patch) as JsonObject });
      } else continue;
      if (live) arrivals.push({ at, message: m as Arrival['message'] });
    }
  });
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  ws.send(JSON.stringify({ type: 'subscribe', id: 's', selector: 'ticks/*', ...subscribe }));
  await waitFor('subscribed', () => live);
  return { ws, arrivals, replica, bytes: () => bytes };
}

describe('throttling', () => {
  it(`maxRate ${RATE}: at most ${RATE} updates per second per topic, the latest always last`, async (t) => {
    const throttled = await subscriber({ maxRate: RATE });
    const full = await subscriber({});
    t.after(() => {
      throttled.ws.close();
      full.ws.close();
    });
    const bytes0 = { throttled: throttled.bytes(), full: full.bytes() };

    // Each row updated ~30 times a second, each update its own transaction.
    const writer = new pg.Client({ connectionString: db.url });
    await writer.connect();
    const t0 = performance.now();
    let statements = 0;
    while (performance.now() - t0 < SECONDS * 1000) {
      const id = 1 + (statements % ROWS);
      await writer.query('UPDATE ticks SET price = price + 0.0001, seq = seq + 1 WHERE id = $1', [id]);
      statements++;
      if (statements % ROWS === 0) await new Promise((r) => setTimeout(r, 15));
    }
    const t1 = performance.now();
    await writer.end();
    const table = new Map((await db.query<{ id: number; price: string; seq: number }>('SELECT id, price, seq FROM ticks')).rows.map((r) => [`ticks/${r.id}`, r]));

    // The trailing update: the latest value arrives within one interval after the last write.
    await waitFor('the throttled client to reach the table', () => [...table].every(([p, r]) => throttled.replica.get(p)?.value.seq === r.seq), 3000, 10);
    const settledAt = performance.now();
    assert.ok(settledAt - t1 < 1000 / RATE + 300, `the last values arrived ${Math.round(settledAt - t1)} ms after the last write`);
    await waitFor('the full client to reach the table', () => [...table].every(([p, r]) => full.replica.get(p)?.value.seq === r.seq), 3000, 10);

    const perRow = statements / ROWS / ((t1 - t0) / 1000);
    assert.ok(perRow > 20, `each row was updated ${perRow.toFixed(0)} times a second`);
    for (const path of table.keys()) {
      const times = throttled.arrivals.filter((a) => a.message.path === path).map((a) => a.at);
      // Over the run: at most one per interval (plus the one that opened the first interval).
      const span = (times.at(-1)! - times[0]) / 1000;
      assert.ok(times.length <= 1 + Math.ceil(span * RATE) + 1, `${path}: ${times.length} updates in ${span.toFixed(2)} s`);
      assert.ok(times.length >= SECONDS * RATE * 0.7, `${path}: only ${times.length} updates: the throttle must not starve it`);
      for (let i = 1; i < times.length; i++) {
        assert.ok(times[i] - times[i - 1] >= 1000 / RATE - 25, `${path}: two updates ${Math.round(times[i] - times[i - 1])} ms apart`);
      }
      // Any one-second window holds at most RATE + 1 updates (an interval's end can fall on its edge).
      for (const start of times) assert.ok(times.filter((x) => x >= start && x < start + 1000).length <= RATE + 1);
    }
    const fullCount = full.arrivals.length;
    const throttledCount = throttled.arrivals.length;
    const fullBytes = full.bytes() - bytes0.full;
    const throttledBytes = throttled.bytes() - bytes0.throttled;
    assert.ok(throttledCount * 5 < fullCount, `throttled ${throttledCount} messages, unthrottled ${fullCount}`);
    assert.ok(throttledBytes * 5 < fullBytes);
    // Throttle windows end: what the session kept per topic is released.
    await waitFor('throttle state released', () => service.distribution.queueDepth().conflatedTopics === 0, 3000);
    const report = `${statements} updates of ${ROWS} rows in ${((t1 - t0) / 1000).toFixed(1)} s: unthrottled ${fullCount} messages / ${fullBytes} B, ` +
      `maxRate ${RATE}: ${throttledCount} messages / ${throttledBytes} B (${(fullBytes / throttledBytes).toFixed(1)}x fewer bytes)`;
    t.diagnostic(report);
    console.log(`# delivery-throttle: ${report}`);
  });
});
