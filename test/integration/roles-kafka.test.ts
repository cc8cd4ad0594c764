/**
 * Roles on a real Kafka broker and a real Postgres, each node its own `tidewire start` process
 * (issue #15, step 2): an ingest node on a table publishes to the hand-off topic, two edges
 * replicate it. SDK clients on each edge get the table and then its writes; every edge holds the
 * ingest node's versions and epoch for every topic; a client of an edge killed with -9 reconnects
 * to the other and resumes `exact` with the versions it holds; an edge is not ready before it has
 * caught up with the log, and stops being ready when the log holds a record it cannot apply.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import WebSocket from 'ws';
import { TidewireClient, type ResumeInfo, type Subscription, type WebSocketConstructor } from '../../client/index.ts';
import type { JsonObject } from '../../core/json.ts';
import { type KafkaBroker, startKafka } from '../support/kafka-broker.ts';
import { type TestPostgres, freePort, startPostgres } from '../support/postgres.ts';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.ts';
import { topicVersions } from '../support/topic-versions.ts';
import { waitFor } from '../support/wait.ts';

const TOPIC = 'tidewire-roles-it';
const ROWS = 40;

let broker: KafkaBroker;
let db: TestPostgres;
let handoff: { kafka: { brokers: string[]; topic: string } };
const clients: TidewireClient[] = [];
/** Kills each process spawned, healthy or not. */
const spawned: Array<() => void> = [];
let ingest: ServiceProcess;
let edgeA: ServiceProcess;
let edgeB: ServiceProcess;

before(async () => {
  [broker, db] = await Promise.all([startKafka(), startPostgres()]);
  handoff = { kafka: { brokers: broker.brokers, topic: TOPIC } };
  await db.query('CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)');
  await db.query(`INSERT INTO accounts SELECT i, 100 FROM generate_series(1, ${ROWS}) i`);
});

after(async () => {
  for (const c of clients) c.close();
  spawned.forEach((kill) => kill());
  await Promise.all([ingest, edgeA, edgeB].map((n) => n?.kill()));
  await db?.stop();
  await broker?.stop();
});

/** Starts a node and waits for its /health to say ok; the after hook kills whatever was spawned. */
async function startNode(config: object, port?: number): Promise<ServiceProcess> {
  return startServiceProcess({ log: { level: 'warn' }, ...config }, port ?? (await freePort()), {
    onSpawn: (child) => spawned.push(() => child.exitCode === null && child.kill('SIGKILL')),
  });
}

const edgeConfig = () => ({ role: 'edge', handoff, state: { memory: true } });

/** The SDK's WebSocket option: every (re)connect goes to the URL `target` gives then. */
function routedTo(target: () => string): WebSocketConstructor {
  return class extends WebSocket {
    constructor(_url: string) {
      super(target());
    }
  } as unknown as WebSocketConstructor;
}

const wsUrl = (node: ServiceProcess) => `ws://127.0.0.1:${node.port}/ws`;

async function table(): Promise<Map<string, JsonObject>> {
  const { rows } = await db.query<{ id: number; balance: number }>('SELECT id, balance FROM accounts');
  return new Map(rows.map((r) => [`accounts/${r.id}`, { id: r.id, balance: r.balance }]));
}

function plain(sub: Subscription): Map<string, JsonObject> {
  return new Map([...sub.values].map(([path, value]) => [path, value]));
}


async function ready(port: number): Promise<{ status: number; reasons: string[] }> {
  const r = await fetch(`http://127.0.0.1:${port}/ready`);
  return { status: r.status, reasons: ((await r.json()) as { reasons: string[] }).reasons };
}

/** A few source transactions: a transfer between two accounts, an insert, a delete, an update. */
async function writeSome(round: number): Promise<void> {
  await db.query(`BEGIN; UPDATE accounts SET balance = balance - 7 WHERE id = ${1 + (round % ROWS)}; UPDATE accounts SET balance = balance + 7 WHERE id = ${2 + (round % (ROWS - 1))}; COMMIT`);
  await db.query('INSERT INTO accounts VALUES ($1, $2)', [1000 + round, round]);
  await db.query('DELETE FROM accounts WHERE id = $1', [3 + round]);
  await db.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [10 + round]);
}

/** waitFor, failing with what each node printed (a node that died says why). */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs?: number): Promise<void> {
  try {
    await waitFor(what, check, timeoutMs);
  } catch (err) {
    const outputs = [ingest, edgeA, edgeB].filter(Boolean).map((n) => `--- port ${n.port} (exit ${n.child.exitCode}) ---\n${n.output().slice(-2000)}`);
    throw new Error(`${(err as Error).message}\n${outputs.join('\n')}`, { cause: err });
  }
}

const converged = (sub: Subscription, expected: Map<string, JsonObject>) => sub.live && JSON.stringify([...plain(sub)].sort()) === JSON.stringify([...expected].sort());

test('one ingest node and two edges: clients on each edge get the table and its writes, with the same versions everywhere', async () => {
  ingest = await startNode({ role: 'ingest', handoff, postgres: { url: db.url, slot: 'roles', publication: 'roles', tables: [{ table: 'public.accounts', path: 'accounts/{id}' }] } });
  [edgeA, edgeB] = await Promise.all([startNode(edgeConfig()), startNode(edgeConfig())]);

  const onA = new TidewireClient({ url: wsUrl(edgeA), reconnect: { initialMs: 50, maxMs: 200 } });
  const onB = new TidewireClient({ url: wsUrl(edgeB) });
  clients.push(onA, onB);
  const subA = onA.subscribe('accounts/*');
  const subB = onB.subscribe('accounts/*');
  await Promise.all([onA.connect(), onB.connect()]);
  let expected = await table();
  await until('the initial values on both edges', () => converged(subA, expected) && converged(subB, expected));

  for (let round = 0; round < 3; round++) await writeSome(round);
  expected = await table();
  await until('the writes on both edges', () => converged(subA, expected) && converged(subB, expected));

  const paths = [...expected.keys()];
  const atIngest = await topicVersions(ingest, paths);
  assert.ok(Object.values(atIngest).every((v) => /^[^/]+\/[0-9]+$/.test(v)), 'the ingest node serves every topic');
  assert.ok(Object.values(atIngest).some((v) => !v.endsWith('/1')), 'some topics changed after their creation');
  assert.deepEqual(await topicVersions(edgeA, paths), atIngest, 'edge A holds the ingest node\'s epoch and versions');
  assert.deepEqual(await topicVersions(edgeB, paths), atIngest, 'edge B holds the ingest node\'s epoch and versions');
  assert.equal(onA.epoch, onB.epoch);

  const health = (await (await fetch(`http://127.0.0.1:${edgeA.port}/health`)).json()) as { handoff: { behind: number; offset: string; end: string } };
  assert.equal(health.handoff.behind, 0, 'a caught-up edge is 0 records behind');
  assert.ok(Number(health.handoff.offset) > 0 && health.handoff.offset === health.handoff.end);
  const metrics = await (await fetch(`http://127.0.0.1:${edgeA.port}/metrics`)).text();
  assert.match(metrics, /^tidewire_handoff_lag_records 0$/m);
  assert.match(metrics, /^tidewire_handoff_lag_seconds 0$/m);
  const published = await (await fetch(`http://127.0.0.1:${ingest.port}/metrics`)).text();
  const count = Number(/^tidewire_handoff_publish_seconds_count ([0-9]+)$/m.exec(published)?.[1] ?? 0);
  assert.ok(count >= 4, `the ingest node measured the publish latency of its batches (${count})`);
});

test('kill -9 of an edge: its client reconnects to the other edge and resumes exact with the versions it holds', async () => {
  let target = wsUrl(edgeA);
  const client = new TidewireClient({ url: wsUrl(edgeA), WebSocket: routedTo(() => target), reconnect: { initialMs: 50, maxMs: 200 } });
  clients.push(client);
  const resumes: ResumeInfo[] = [];
  client.onResume((info) => resumes.push(info));
  const sub = client.subscribe('accounts/*');
  await client.connect();
  let expected = await table();
  await until('the client on edge A', () => converged(sub, expected));
  const epoch = client.epoch;

  target = wsUrl(edgeB);
  assert.equal(await edgeA.kill('SIGKILL'), null, 'edge A was killed, not stopped');
  await writeSome(3); // written while the client is between edges
  expected = await table();
  await until('the client to resume on edge B', () => resumes.length > 0 && converged(sub, expected));
  assert.deepEqual(resumes.map((r) => [r.resumed, r.epochChanged]), [['exact', false]], 'resumed exact on edge B, in the same epoch');
  assert.equal(client.epoch, epoch);

  await writeSome(4);
  expected = await table();
  await until('later writes through edge B', () => converged(sub, expected));
});

test('an edge started on a log of many batches is not ready before it caught up, then ready with the same state', async () => {
  // Many small transactions: one record each in the hand-off topic.
  await db.query(`DO $$ BEGIN FOR i IN 1..300 LOOP UPDATE accounts SET balance = balance + 1 WHERE id = 20; COMMIT; END LOOP; END $$`);
  const expected = await table();
  await until('edge B to apply the burst', async () => JSON.stringify(await topicVersions(edgeB, ['accounts/20'])) === JSON.stringify(await topicVersions(ingest, ['accounts/20'])));

  // Every /ready answer from the first the process gives (before it listens, there is none).
  const port = await freePort();
  const answers: Array<{ status: number; reasons: string[] }> = [];
  const poll = waitFor('the late edge to answer /ready 200', async () => {
    const a = await ready(port).catch(() => null);
    if (a) answers.push(a);
    return a?.status === 200;
  }, 30_000, 10);
  const late = await startNode(edgeConfig(), port);
  await poll;
  assert.equal(answers[0].status, 503, `its first /ready answer was ${JSON.stringify(answers[0])}`);
  assert.match(answers[0].reasons.join('; '), /^handoff: (starting|snapshotting)/);
  assert.deepEqual(await topicVersions(late, expected.keys()), await topicVersions(ingest, expected.keys()));
  await late.kill();
});

test('a record the edges cannot apply stops them: not ready, /health failed, saying what to do', async () => {
  const producer = new Kafka({ brokers: broker.brokers, logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
  try {
    await producer.send({ topic: TOPIC, messages: [{ value: 'not a hand-off record' }] });
  } finally {
    await producer.disconnect();
  }
  await until('edge B to stop being ready', async () => (await ready(edgeB.port)).status === 503);
  const { reasons } = await ready(edgeB.port);
  assert.match(reasons.join('; '), /^handoff: failed \(stopped applying the hand-off topic tidewire-roles-it at offset [0-9]+ .*restart this edge to rebuild its state from the log\)/);
  const health = (await (await fetch(`http://127.0.0.1:${edgeB.port}/health`)).json()) as { status: string };
  assert.equal(health.status, 'failed');
  assert.match(edgeB.output(), /this edge stopped applying the hand-off log and is not ready/);
});
