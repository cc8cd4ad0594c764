/**
 * Kafka over durable state across restarts (issue #12, items 1–2), with a real broker, a real
 * `tidewire start` process and the SDK: after a SIGTERM and after a kill -9, with records produced
 * while tidewire was down, the restarted service resumes each partition at the offset stored with
 * the state — it reads only what was produced meanwhile, not the topic from its earliest offset —
 * and the client resumes in the same epoch: no value emitted twice, none older than one it had,
 * and the state equals the last record per key. A path naming value fields resumes too, with its
 * key → path index stored with the state: moves and tombstones produced while down (or in a burst
 * cut by kill -9) find their old topics, and no topic is left at a path its key has left.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { TidewireClient, type Subscription } from '../../client/index.ts';
import type { JsonObject } from '../../core/json.ts';
import { type KafkaBroker, startKafka } from '../support/kafka-broker.ts';
import { freePort } from '../support/postgres.ts';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.ts';
import { waitFor } from '../support/wait.ts';

const TOPIC = 'state-quotes';
const KEYS = 40;
const SITES_TOPIC = 'state-sites';

let broker: KafkaBroker;
let producer: Producer;
let svc: ServiceProcess | undefined;
const clients: TidewireClient[] = [];
/** The last record produced per key: what the state must equal. */
const latest = new Map<string, JsonObject>();
let produced = 0;

before(async () => {
  broker = await startKafka();
  const kafka = new Kafka({ brokers: broker.brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 3 }, { topic: SITES_TOPIC, numPartitions: 2 }], waitForLeaders: true });
  await admin.disconnect();
  producer = kafka.producer();
  await producer.connect();
});

after(async () => {
  for (const c of clients) c.close();
  await svc?.kill();
  await producer?.disconnect();
  await broker?.stop();
});

/** `count` records round-robin over the keys; each key's `n` counts up, so an older value is recognisable. */
async function produce(count: number): Promise<void> {
  const messages = [];
  for (let i = 0; i < count; i++) {
    const key = `K${produced % KEYS}`;
    const n = (latest.get(key)?.n as number | undefined ?? 0) + 1;
    const value = { key, n, px: 100 + ((produced * 7) % 91) / 10 };
    latest.set(key, value);
    messages.push({ key, value: JSON.stringify(value) });
    produced++;
  }
  await producer.send({ topic: TOPIC, messages });
}

function config(dir: string): object {
  return {
    log: { level: 'info' },
    state: { dir },
    kafka: { brokers: broker.brokers, groupId: 'state-restart', topics: [{ topic: TOPIC, format: 'json', path: 'quotes/{key}' }] },
  };
}

/** Kafka records read by this process (redeliveries of applied records not counted). */
async function recordsRead(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('tidewire_kafka_records_total '));
  assert.ok(line, 'the records counter is exported');
  return Number(line.split(' ')[1]);
}

interface Watcher {
  client: TidewireClient;
  sub: Subscription;
  /** A value emitted equal to the one before it for the same path. */
  duplicates: string[];
  /** A value emitted with a lower `n` than one emitted before for the same path. */
  regressions: string[];
  removals: string[];
  resumes: Array<{ resumed: string; epochChanged: boolean }>;
}

function watch(port: number): Watcher {
  const client = new TidewireClient({ url: `ws://127.0.0.1:${port}/ws`, reconnect: { initialMs: 100, maxMs: 400 } });
  clients.push(client);
  const last = new Map<string, number>();
  const w: Watcher = { client, sub: undefined as never, duplicates: [], regressions: [], removals: [], resumes: [] };
  w.sub = client.subscribe('quotes/**', {
    onValue: (path, value) => {
      const n = value.n as number;
      const before = last.get(path);
      if (before === n) w.duplicates.push(`${path} n=${n}`);
      else if (before !== undefined && n < before) w.regressions.push(`${path} n=${before} then n=${n}`);
      last.set(path, n);
    },
    onRemoval: (path) => w.removals.push(path),
    onResume: (info) => w.resumes.push({ resumed: info.resumed, epochChanged: info.epochChanged }),
  });
  return w;
}

async function holdsLatest(w: Watcher): Promise<void> {
  await waitFor(
    'the client to hold the last record of every key',
    () => w.sub.values.size === latest.size && [...latest].every(([k, v]) => (w.sub.values.get(`quotes/${k}`)?.n as number | undefined) === v.n),
    30_000,
  );
}

test('SIGTERM, then kill -9, with records produced while down: each restart reads only what came meanwhile; the client resumes in the same epoch, nothing twice or older', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidewire-kafka-state-'));
  const port = await freePort();
  await produce(400);
  svc = await startServiceProcess(config(dir), port);
  const w = watch(port);
  await w.client.connect();
  await holdsLatest(w);
  const epoch = w.client.epoch;
  assert.equal(await recordsRead(port), 400, 'a first start reads the topic from its earliest offset');

  // SIGTERM: the offsets stored at stop are exactly the records applied.
  assert.equal(await svc.kill('SIGTERM'), 0, 'stopped gracefully');
  await produce(150);
  svc = await startServiceProcess(config(dir), port);
  await holdsLatest(w);
  assert.equal(await recordsRead(port), 150, 'resumed at the stored offsets: only the records produced while down were read');
  assert.match(svc.output(), /resuming Kafka topics from the offsets stored with the state/);
  assert.equal(w.client.epoch, epoch, 'same epoch after a restart');

  // Live records, then a crash once they are applied (and so, moments later, durable).
  await produce(100);
  await holdsLatest(w);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await svc.kill('SIGKILL'), null, 'killed, not stopped');
  await produce(120);
  svc = await startServiceProcess(config(dir), port);
  await holdsLatest(w);
  assert.equal(await recordsRead(port), 120, 'after kill -9 too, only the records produced while down were read');
  assert.equal(w.client.epoch, epoch, 'same epoch after kill -9');

  assert.ok(w.resumes.length >= 2, `the subscription was resumed at each restart (${w.resumes.length})`);
  for (const r of w.resumes) {
    assert.notEqual(r.resumed, 'fresh', 'never resumed fresh');
    assert.equal(r.epochChanged, false);
  }
  assert.deepEqual(w.duplicates, [], 'no value emitted twice');
  assert.deepEqual(w.regressions, [], 'no key went back to an older value');
  assert.deepEqual(w.removals, [], 'no removal');
  w.client.close();
  await svc.kill('SIGTERM');
  svc = undefined;
});

test('kill -9 during a produce burst: the restart resumes from the stored offsets (not the earliest) in the same epoch and converges, nothing emitted twice', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidewire-kafka-state-'));
  const port = await freePort();
  svc = await startServiceProcess(config(dir), port);
  const w = watch(port);
  await w.client.connect();
  await holdsLatest(w);
  const epoch = w.client.epoch;
  const before = produced;
  let running = true;
  const burst = (async () => {
    while (running) {
      await produce(20);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await svc.kill('SIGKILL'), null, 'killed, not stopped');
  await new Promise((r) => setTimeout(r, 300)); // the burst goes on while tidewire is down
  svc = await startServiceProcess(config(dir), port);
  await new Promise((r) => setTimeout(r, 1000));
  running = false;
  await burst;
  await holdsLatest(w);
  const read = await recordsRead(port);
  assert.ok(read < produced - before, `the restart read ${read} records, fewer than the ${produced - before} of the burst: it resumed from the stored offsets`);
  assert.equal(w.client.epoch, epoch, 'same epoch');
  for (const r of w.resumes) assert.notEqual(r.resumed, 'fresh', 'never resumed fresh');
  assert.deepEqual(w.duplicates, [], 'no value emitted twice');
  assert.deepEqual(w.removals, [], 'no removal');
  w.client.close();
  await svc.kill('SIGTERM');
  svc = undefined;
});

/** Records of SITES_TOPIC: each key's value names its site, which moves; some are tombstones. */
const sites = { produced: 0, latest: new Map<string, JsonObject | null>() };

async function produceSites(count: number): Promise<void> {
  const messages = [];
  for (let i = 0; i < count; i++) {
    const n = sites.produced++;
    const k = (n * 7) % 30;
    const key = `S${k}`;
    // Each round over the 30 keys moves every key to another of three sites; every 9th record is a tombstone.
    const value = n % 9 === 4 ? null : { key, n, site: ['north', 'south', 'west'][(Math.floor(n / 30) + k) % 3] };
    sites.latest.set(key, value);
    messages.push({ key, value: value === null ? null : JSON.stringify(value) });
  }
  await producer.send({ topic: SITES_TOPIC, messages });
}

/** What a client of `sites/**` must hold: path → n, one per live key, at its value's site. */
function expectedSites(): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, v] of sites.latest) if (v !== null) out.set(`sites/${v.site}/${key}`, v.n as number);
  return out;
}

async function holdsSites(sub: Subscription): Promise<void> {
  const want = expectedSites();
  await waitFor(
    'the client to hold each live key at its last site, and nothing else',
    () => sub.values.size === want.size && [...want].every(([path, n]) => (sub.values.get(path)?.n as number | undefined) === n),
    30_000,
  ).catch((err) => {
    const held = [...sub.values].map(([p, v]) => `${p}=${v.n}`).sort();
    throw new Error(`${(err as Error).message}: held ${held.join(' ')}; want ${[...want].map(([p, n]) => `${p}=${n}`).sort().join(' ')}`);
  });
}

test('a path naming value fields resumes with its key → path index stored: moves and tombstones produced while down, and in a burst cut by kill -9, leave nothing behind', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidewire-kafka-state-'));
  const port = await freePort();
  const conf = {
    log: { level: 'info' },
    state: { dir },
    kafka: { brokers: broker.brokers, groupId: 'state-sites', topics: [{ topic: SITES_TOPIC, format: 'json', path: 'sites/{value.site}/{key}' }] },
  };
  await produceSites(200);
  svc = await startServiceProcess(conf, port);
  const client = new TidewireClient({ url: `ws://127.0.0.1:${port}/ws`, reconnect: { initialMs: 100, maxMs: 400 } });
  clients.push(client);
  const resumes: string[] = [];
  const sub = client.subscribe('sites/**', { onResume: (info) => resumes.push(info.resumed) });
  await client.connect();
  await holdsSites(sub);
  const epoch = client.epoch;

  // Down: keys move and are deleted; the restart reads only those records and finds the old topics.
  assert.equal(await svc.kill('SIGTERM'), 0, 'stopped gracefully');
  await produceSites(60);
  svc = await startServiceProcess(conf, port);
  await holdsSites(sub);
  assert.equal(await recordsRead(port), 60, 'resumed at the stored offsets, not re-read from the earliest');
  assert.doesNotMatch(svc.output(), /re-reading Kafka topic/);

  // A burst of moves cut by kill -9: the index stored with each batch's topics, never ahead of them.
  let running = true;
  const burst = (async () => {
    while (running) {
      await produceSites(15);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await svc.kill('SIGKILL'), null, 'killed, not stopped');
  const atKill = sites.produced;
  await new Promise((r) => setTimeout(r, 300));
  svc = await startServiceProcess(conf, port);
  await new Promise((r) => setTimeout(r, 500));
  running = false;
  await burst;
  await holdsSites(sub);
  assert.ok((await recordsRead(port)) < sites.produced, `read ${await recordsRead(port)} of ${sites.produced} records: resumed, not re-read (${atKill} produced at the kill)`);
  assert.doesNotMatch(svc.output(), /re-reading Kafka topic/);
  assert.equal(client.epoch, epoch, 'same epoch');
  for (const r of resumes) assert.notEqual(r, 'fresh', 'never resumed fresh');
  client.close();
  await svc.kill('SIGTERM');
  svc = undefined;
});
