/**
 * kill -9 of an ingest node with durable state, under a write load, on a real Kafka broker and a
 * real Postgres (issue #15): the state stores a batch only once the hand-off log holds it, and a
 * restart stores what the log holds past the state before its source resumes. So an edge that
 * keeps reading the log through every crash never meets a gap or a batch twice: it never stops,
 * its client keeps the sum of the accounts after every frame, sees no value twice and no version
 * go back, and everything ends where the table is, with the ingest node's versions. A restart of
 * the Kafka broker under writes is ridden out the same way: the ingest node retries its appends
 * (its idempotent producer keeps them from landing twice) and the edge its reads.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { TidewireClient } from '../../client/index.ts';
import type { JsonObject } from '../../core/json.ts';
import { type KafkaBroker, startKafka } from '../support/kafka-broker.ts';
import { perFrame } from '../support/per-frame.ts';
import { type TestPostgres, freePort, startPostgres } from '../support/postgres.ts';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.ts';
import { topicVersions } from '../support/topic-versions.ts';
import { waitFor } from '../support/wait.ts';

const TOPIC = 'tidewire-ingest-crash-it';
const ROWS = 60;
const BALANCE = 1000;
const KILLS = 3;

let broker: KafkaBroker;
let db: TestPostgres;
const spawned: Array<() => void> = [];
let ingest: ServiceProcess | undefined;
let edge: ServiceProcess | undefined;
const dir = mkdtempSync(join(tmpdir(), 'tidewire-ingest-crash-'));

before(async () => {
  [broker, db] = await Promise.all([startKafka(), startPostgres()]);
  await db.query('CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)');
  await db.query(`INSERT INTO accounts SELECT i, ${BALANCE} FROM generate_series(1, ${ROWS}) i`);
});

after(async () => {
  spawned.forEach((kill) => kill());
  await Promise.all([ingest, edge].map((n) => n?.kill()));
  await db?.stop();
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function startNode(config: object, port: number): Promise<ServiceProcess> {
  return startServiceProcess({ log: { level: 'info' }, ...config }, port, {
    onSpawn: (child) => spawned.push(() => child.exitCode === null && child.kill('SIGKILL')),
  });
}


/** An SDK client on the edge checking, after every frame it applies, the sum, no value twice and no version backwards. */
function watch(t: { after(fn: () => void): void }, node: ServiceProcess) {
  const balances = new Map<string, number>();
  const versionOf = new Map<string, number>();
  let sum = 0;
  const w = { balances, versionOf, frames: 0, violations: [] as string[], epoch: '' };
  const afterFrame = perFrame(() => {
    if (!sub.live) return;
    w.frames++;
    if (sum !== ROWS * BALANCE) w.violations.push(`after frame ${w.frames}: the accounts sum to ${sum} over ${balances.size} topics`);
  });
  const client = new TidewireClient({ url: `ws://127.0.0.1:${node.port}/ws`, reconnect: { initialMs: 50, maxMs: 200 } });
  t.after(() => client.close());
  const sub = client.subscribe('accounts/*', {
    onValue: (path, value: JsonObject, version) => {
      const held = versionOf.get(path);
      if (held !== undefined && version <= held) w.violations.push(`${path}: version ${version} after ${held}`);
      if (balances.get(path) === value.balance) w.violations.push(`${path}: balance ${value.balance} emitted twice`);
      versionOf.set(path, version);
      sum += (value.balance as number) - (balances.get(path) ?? 0);
      balances.set(path, value.balance as number);
      afterFrame();
    },
    onRemoval: (path) => w.violations.push(`${path} removed`),
    onLive: () => afterFrame(),
  });
  return {
    w,
    client,
    async ready(): Promise<void> {
      await client.connect();
      await waitFor('the client on the edge to hold every account', () => sub.live && balances.size === ROWS, 30_000);
      w.epoch = client.epoch!;
    },
  };
}

/**
 * Transfers between two accounts, one transaction each, until `stop`: about 600 a second at most,
 * a load an edge applies with room to catch up after an outage on a loaded 2-core machine (the
 * test is about what is applied, not how fast).
 */
function transfers(): { stop(): Promise<number> } {
  let writing = true;
  let n = 0;
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      const from = 1 + ((i * 7) % ROWS);
      const to = 1 + ((i * 13 + 5) % ROWS);
      if (from === to) continue;
      await db.query(`BEGIN; UPDATE accounts SET balance = balance - ${1 + (i % 9)} WHERE id = ${from}; UPDATE accounts SET balance = balance + ${1 + (i % 9)} WHERE id = ${to}; COMMIT`);
      n++;
      if (n % 3 === 0) await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    async stop() {
      writing = false;
      await writer;
      return n;
    },
  };
}

/** The client ends at the table, the edge never stopped and holds the ingest node's versions, every frame kept the sum. */
async function convergesAtTheTable(watcher: ReturnType<typeof watch>, minFrames: number): Promise<void> {
  const { w, client } = watcher;
  const { rows } = await db.query<{ id: number; balance: number }>('SELECT id, balance FROM accounts');
  try {
    await waitFor('the client on the edge to hold exactly the table', () => rows.every((r) => w.balances.get(`accounts/${r.id}`) === r.balance), 30_000);
  } catch (err) {
    const off = rows.filter((r) => w.balances.get(`accounts/${r.id}`) !== r.balance).map((r) => `accounts/${r.id}`);
    const health = await (await fetch(`http://127.0.0.1:${edge!.port}/health`)).text();
    const detail = `\noff: ${off.slice(0, 5).join(' ')} (${off.length}); client versions ${off.slice(0, 5).map((p) => w.versionOf.get(p)).join(' ')}; edge ${JSON.stringify(await topicVersions(edge!, off.slice(0, 5)))}; ingest ${JSON.stringify(await topicVersions(ingest!, off.slice(0, 5)))}; edge health ${health}; violations ${w.violations.slice(0, 5).join(' | ')}`;
    throw new Error(`${(err as Error).message}${detail}\n--- ingest ---\n${ingest!.output().slice(-3000)}\n--- edge ---\n${edge!.output().slice(-3000)}`, { cause: err });
  }
  assert.doesNotMatch(edge!.output(), /stopped applying the hand-off log/, 'the edge never stopped');
  assert.equal((await fetch(`http://127.0.0.1:${edge!.port}/ready`)).status, 200, 'the edge is ready');
  const paths = rows.map((r) => `accounts/${r.id}`);
  assert.deepEqual(await topicVersions(edge!, paths), await topicVersions(ingest!, paths), 'the edge holds the ingest node\'s versions');
  assert.equal(client.epoch, w.epoch, 'one epoch throughout');
  assert.ok(w.frames > minFrames, `frames were checked (${w.frames})`);
  assert.deepEqual(w.violations.slice(0, 8), [], `every one of ${w.frames} frames kept the sum, with no value twice (${w.violations.length} did not)`);
}

let ingestConfig: object;
let ingestPort: number;

test('kill -9 of the ingest node under writes, three times: the edge never stops, its client never holds a sum that never existed, and all ends at the table', { timeout: 240_000 }, async (t) => {
  const handoff = { kafka: { brokers: broker.brokers, topic: TOPIC } };
  ingestPort = await freePort();
  ingestConfig = {
    role: 'ingest',
    handoff,
    state: { dir },
    postgres: { url: db.url, slot: 'crash', publication: 'crash', tables: [{ table: 'public.accounts', path: 'accounts/{id}' }] },
  };
  ingest = await startNode(ingestConfig, ingestPort);
  edge = await startNode({ role: 'edge', handoff, state: { memory: true } }, await freePort());
  const watcher = watch(t, edge);
  await watcher.ready();

  const writes = transfers();
  try {
    for (let kill = 0; kill < KILLS; kill++) {
      await new Promise((r) => setTimeout(r, 700 + kill * 250));
      assert.equal(await ingest.kill('SIGKILL'), null, 'the ingest node was killed, not stopped');
      ingest = await startNode(ingestConfig, ingestPort);
    }
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    const n = await writes.stop();
    assert.ok(n > 200, `transfers were committed under the kills (${n})`);
  }
  await convergesAtTheTable(watcher, 20);
  assert.match(ingest.output(), /state loaded/, 'the ingest node restarted from its durable state');
});

test('a Kafka broker restart under writes: the ingest node retries its appends and the edge its reads, and nothing is lost or applied twice', { timeout: 180_000 }, async (t) => {
  const watcher = watch(t, edge!);
  await watcher.ready();
  const writes = transfers();
  try {
    await new Promise((r) => setTimeout(r, 700));
    await broker.restart();
    await new Promise((r) => setTimeout(r, 1500));
  } finally {
    const n = await writes.stop();
    assert.ok(n > 100, `transfers were committed around the restart (${n})`);
  }
  await convergesAtTheTable(watcher, 5);
  assert.match(ingest!.output(), /the hand-off log takes no batch now: retrying/, 'appends failed while the broker was away, and were retried');
  assert.match(ingest!.output(), /the hand-off log takes batches again/);
  const health = (await (await fetch(`http://127.0.0.1:${ingest!.port}/health`)).json()) as { status: string };
  assert.equal(health.status, 'ok', 'the ingest node is healthy again');
  assert.equal(ingest!.child.exitCode, null, 'the ingest node kept running');
});
