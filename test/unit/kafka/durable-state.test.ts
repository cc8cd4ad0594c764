// The Kafka connector over durable state (a real LMDB store in a temp dir, the real Pipeline and
// StateJournal), driven through a scripted KafkaClient: positions stored with each apply, a
// restart resuming at them, group offsets committed only once the state is durable, and the
// re-read (diffed, one batch) when stored offsets cannot be trusted or the mapping changed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { KafkaConnector } from '../../../connectors/kafka/index.ts';
import type { KafkaConfig } from '../../../connectors/kafka/kafka-settings.ts';
import type { SourceCheckpoints } from '../../../core/ingest.ts';
import type { ChangeBatch } from '../../../core/topic.ts';
import { InProcessHandoff } from '../../../services/handoff/handoff.ts';
import { Pipeline } from '../../../services/pipeline.ts';
import { LmdbStateStore, StateError } from '../../../services/state/index.ts';
import { StateJournal } from '../../../services/state/state-journal.ts';
import { TopicStore } from '../../../services/topics/topic-store.ts';
import { FakeKafka } from './fake-kafka.ts';

const logger = pino({ level: 'silent' });
const root = mkdtempSync(join(tmpdir(), 'tidewire-kafka-state-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `s${++dirs}`);

const PRICES: KafkaConfig = { brokers: ['fake:9092'], topics: [{ topic: 'prices', format: 'json', path: 'prices/{key}' }], connectTimeoutMs: 300 };

/** One tidewire node on the state in `dir`, loaded like the service loads it. */
async function openNode(dir: string, kafka: FakeKafka, config: KafkaConfig = PRICES, wrap?: (p: Pipeline) => SourceCheckpoints) {
  const state = await LmdbStateStore.open(dir, { identity: {}, epoch: `e-${dirs}` });
  const store = new TopicStore();
  if (state.epoch !== null && !state.created) store.restore({ epoch: state.epoch, seq: state.seq, versionFloor: state.versionFloor }, state.topics());
  else await state.setEpoch(store.epoch);
  const handoff = new InProcessHandoff(store);
  const batches: ChangeBatch[] = [];
  handoff.subscribe((b) => batches.push(b));
  const pipeline = new Pipeline(store, handoff, { journal: new StateJournal(state) });
  const connector = new KafkaConnector(config, pipeline, { logger, client: kafka, checkpoints: wrap ? wrap(pipeline) : pipeline });
  /** What each batch changed, as `path vN value` / `path removed`. */
  const changes = () => batches.flatMap((b) => b.changes.map((c) => (c.type === 'removal' ? `${c.topic.path} removed` : `${c.topic.path} v${c.version} ${JSON.stringify(c.after)}`)));
  const close = async () => {
    await connector.stop();
    await state.close();
  };
  return { state, store, pipeline, connector, batches, changes, close };
}

async function until(what: string, check: () => boolean, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Starts the connector, lets the fake group assign `assignment` and delivers every partition to its end. */
async function startAndDeliver(kafka: FakeKafka, connector: KafkaConnector, assignment: Record<string, number[]>): Promise<void> {
  const consumers = kafka.consumers.length;
  const starting = connector.start();
  await until('the consumer runs', () => kafka.consumers.length > consumers && kafka.lastConsumer.running);
  kafka.lastConsumer.assign(assignment);
  for (const [topic, partitions] of Object.entries(assignment)) for (const p of partitions) await kafka.lastConsumer.deliver(topic, p);
  await starting;
}

test('each apply stores its partition position; a restart resumes at the stored offsets and reads only what came since', async () => {
  const dir = freshDir();
  const kafka = new FakeKafka();
  kafka.addTopic('prices', [{ values: [{ v: 1 }, { v: 2 }, { v: 3 }], keys: ['a', 'b', 'a'] }, { values: [{ v: 10 }], keys: ['c'] }]);
  const one = await openNode(dir, kafka);
  await startAndDeliver(kafka, one.connector, { prices: [0, 1] });
  await one.pipeline.flushed();
  assert.deepEqual(one.state.positions(), { 'kafka:prices/0': '3', 'kafka:prices/1': '1' });
  assert.equal(one.state.identity.kafka, 'cluster-a', 'the cluster is claimed');
  assert.deepEqual(one.connector.stats().starts, { prices: 'fresh' });
  assert.match(one.state.fingerprints()['kafka:prices'], /^k1:/);
  await one.close();

  kafka.append('prices', 0, 'b', { v: 4 });
  kafka.append('prices', 1, 'd', { v: 20 });
  const two = await openNode(dir, kafka);
  assert.equal(two.store.size, 3, 'state loaded');
  await startAndDeliver(kafka, two.connector, { prices: [0, 1] });
  assert.deepEqual(kafka.lastConsumer.seeks, ['prices:0@3', 'prices:1@1'], 'sought to the stored offsets, not the earliest');
  const stats = two.connector.stats();
  assert.deepEqual(stats.starts, { prices: 'resume' });
  assert.deepEqual(stats.partitions.map((p) => p.from), ['stored', 'stored']);
  assert.equal(stats.records, 2, 'only the records produced while down were read');
  assert.deepEqual(two.changes(), ['prices/b v2 {"v":4}', 'prices/d v1 {"v":20}'], 'versions go on from the stored ones; nothing else is sent');
  assert.deepEqual(two.store.get('prices/a')!.value, { v: 3 });
  await two.pipeline.flushed();
  assert.deepEqual(two.state.positions(), { 'kafka:prices/0': '4', 'kafka:prices/1': '2' });
  await two.close();
});

test('group offsets are committed only once the state covering them is durable', async () => {
  const kafka = new FakeKafka();
  kafka.addTopic('prices', [{ values: [{ v: 1 }, { v: 2 }] }]);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const asked: string[] = [];
  const node = await openNode(freshDir(), kafka, PRICES, (pipeline) => ({
    claim: (n, id) => pipeline.claim(n, id),
    holdsTopics: () => pipeline.holdsTopics(),
    topicsOf: (s, where) => pipeline.topicsOf(s, where),
    rowIndex: (s) => pipeline.rowIndex(s),
    stored: (n) => pipeline.stored(n),
    fingerprints: () => pipeline.fingerprints(),
    setFingerprints: (f) => pipeline.setFingerprints(f),
    resync: (s) => pipeline.resync(s),
    checkpoint: async (p) => {
      asked.push(`${p.name}@${p.position}`);
      await gate;
      await pipeline.checkpoint(p);
    },
  }));
  await startAndDeliver(kafka, node.connector, { prices: [0] });
  assert.equal(node.store.size, 2, 'applied (and handed to clients) without waiting for the disk');
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(asked, ['kafka:prices/0@2']);
  assert.equal(kafka.committed.get('prices:0'), undefined, 'not committed before the checkpoint resolved');
  kafka.append('prices', 0, 'k9', { v: 9 });
  await kafka.lastConsumer.deliver('prices', 0);
  assert.equal(node.store.get('prices/k9')!.version, 1, 'the fetch loop goes on while the commit waits');
  release();
  await until('committed through offset 3', () => kafka.committed.get('prices:0') === '3');
  assert.deepEqual(asked, ['kafka:prices/0@2', 'kafka:prices/0@3'], 'the batch that landed meanwhile is committed after the first');
  await node.close();
});

test('a stored offset outside the log (the topic was recreated): re-read from the earliest, diffed — one batch, unchanged topics send nothing, gone ones removed', async () => {
  const dir = freshDir();
  const kafka = new FakeKafka();
  kafka.addTopic('prices', [{ values: [{ v: 1 }, { v: 2 }, { v: 3 }, { v: 4 }], keys: ['a', 'b', 'c', 'e'] }]);
  const one = await openNode(dir, kafka);
  await startAndDeliver(kafka, one.connector, { prices: [0] });
  await one.close();

  // Recreated with fewer records than were read: the stored offset 4 is past its end (3).
  kafka.addTopic('prices', [{ values: [{ v: 0 }, { v: 1 }, { v: 30 }], keys: ['a', 'a', 'd'] }]);
  const two = await openNode(dir, kafka);
  await startAndDeliver(kafka, two.connector, { prices: [0] });
  assert.deepEqual(kafka.lastConsumer.seeks, ['prices:0@0']);
  assert.deepEqual(two.connector.stats().starts, { prices: 'reread' });
  assert.equal(two.batches.length, 1, 'clients see one step from the stored state to the log');
  assert.deepEqual(two.changes().sort(), ['prices/b removed', 'prices/c removed', 'prices/d v1 {"v":30}', 'prices/e removed'], 'a went through an older value in the log, and sends nothing');
  assert.equal(two.store.get('prices/a')!.version, 1);
  await two.pipeline.flushed();
  assert.deepEqual(two.state.positions(), { 'kafka:prices/0': '3' }, 'stored once the re-read was applied');
  await until('committed', () => kafka.committed.get('prices:0') === '3');

  kafka.append('prices', 0, 'a', { v: 5 });
  await kafka.lastConsumer.deliver('prices', 0);
  assert.deepEqual(two.changes().slice(-1), ['prices/a v2 {"v":5}'], 'after the re-read records are applied as read');
  await two.close();
});

test('a changed mapping re-reads its topic diffed; a tombstone produced while down removes its topic; the new fingerprint is stored', async () => {
  const dir = freshDir();
  const kafka = new FakeKafka();
  kafka.addTopic('prices', [{ values: [{ v: 1, site: 'x' }, { v: 2, site: 'y' }], keys: ['a', 'b'] }]);
  const one = await openNode(dir, kafka);
  await startAndDeliver(kafka, one.connector, { prices: [0] });
  const fingerprint = one.state.fingerprints()['kafka:prices'];
  await one.close();

  kafka.append('prices', 0, 'b', null);
  const moved: KafkaConfig = { ...PRICES, topics: [{ topic: 'prices', format: 'json', path: 'sites/{value.site}/{key}' }] };
  const two = await openNode(dir, kafka, moved);
  await startAndDeliver(kafka, two.connector, { prices: [0] });
  assert.equal(two.batches.length, 1);
  assert.deepEqual(two.changes().sort(), ['prices/a removed', 'prices/b removed', 'sites/x/a v1 {"v":1,"site":"x"}']);
  await two.pipeline.flushed();
  assert.notEqual(two.state.fingerprints()['kafka:prices'], fingerprint);
  await two.close();

  // Its path names a value field; the re-read stored the key → path index with the state, so the
  // next start resumes and a tombstone produced while down still finds its topic.
  kafka.append('prices', 0, 'a', null);
  const three = await openNode(dir, kafka, moved);
  await startAndDeliver(kafka, three.connector, { prices: [0] });
  assert.deepEqual(three.connector.stats().starts, { prices: 'resume' });
  assert.deepEqual(three.changes(), ['sites/x/a removed']);
  await three.close();
});

test('a path naming value fields resumes with its stored key → path index: a move and a tombstone produced while down find their old topics; without a complete index it re-reads once', async () => {
  const dir = freshDir();
  const kafka = new FakeKafka();
  const SITES: KafkaConfig = { ...PRICES, topics: [{ topic: 'prices', format: 'json', path: 'sites/{value.site}/{key}' }] };
  kafka.addTopic('prices', [{ values: [{ v: 1, site: 'x' }, { v: 2, site: 'y' }, { v: 3, site: 'z' }], keys: ['a', 'b', 'c'] }]);
  const one = await openNode(dir, kafka, SITES);
  await startAndDeliver(kafka, one.connector, { prices: [0] });
  assert.deepEqual(one.connector.stats().starts, { prices: 'fresh' });
  await one.pipeline.flushed();
  assert.equal(one.state.rowsComplete('kafka:prices'), true, 'a fresh topic starts with an empty, complete index');
  assert.equal(one.state.rowPath('kafka:prices', 'b'), 'sites/y/b', 'stored with the topics');
  await one.close();

  kafka.append('prices', 0, 'a', { v: 4, site: 'w' }); // moves
  kafka.append('prices', 0, 'b', null); // gone
  const two = await openNode(dir, kafka, SITES);
  await startAndDeliver(kafka, two.connector, { prices: [0] });
  assert.deepEqual(two.connector.stats().starts, { prices: 'resume' });
  assert.deepEqual(two.changes(), ['sites/x/a removed', 'sites/w/a v1 {"v":4,"site":"w"}', 'sites/y/b removed']);
  await two.pipeline.flushed();
  assert.deepEqual(['a', 'b', 'c'].map((k) => two.state.rowPath('kafka:prices', k)), ['sites/w/a', undefined, 'sites/z/c']);
  // A state whose index is not complete (written before Kafka row indexes were stored): the next start re-reads.
  await two.state.resetRows('kafka:prices', false);
  await two.close();

  kafka.append('prices', 0, 'c', null);
  const three = await openNode(dir, kafka, SITES);
  await startAndDeliver(kafka, three.connector, { prices: [0] });
  assert.deepEqual(three.connector.stats().starts, { prices: 'reread' });
  assert.deepEqual(three.changes(), ['sites/z/c removed'], 'diffed: only what the log changed');
  await three.pipeline.flushed();
  assert.equal(three.state.rowsComplete('kafka:prices'), true, 'complete once the re-read is applied');
  assert.deepEqual(['a', 'b', 'c'].map((k) => three.state.rowPath('kafka:prices', k)), ['sites/w/a', undefined, undefined]);
  await three.close();

  kafka.append('prices', 0, 'a', null);
  const four = await openNode(dir, kafka, SITES);
  await startAndDeliver(kafka, four.connector, { prices: [0] });
  assert.deepEqual(four.connector.stats().starts, { prices: 'resume' });
  assert.deepEqual(four.changes(), ['sites/w/a removed']);
  await four.close();
});

test('the topics of a Kafka topic no longer consumed are removed at start', async () => {
  const dir = freshDir();
  const kafka = new FakeKafka();
  kafka.addTopic('prices', [{ values: [{ v: 1 }], keys: ['a'] }]);
  kafka.addTopic('orders', [{ values: [{ n: 1 }], keys: ['o1'] }]);
  const both: KafkaConfig = { ...PRICES, topics: [...PRICES.topics, { topic: 'orders', format: 'json', path: 'orders/{key}' }] };
  const one = await openNode(dir, kafka, both);
  await startAndDeliver(kafka, one.connector, { orders: [0], prices: [0] });
  assert.equal(one.store.size, 2);
  await one.close();

  const two = await openNode(dir, kafka, PRICES);
  await startAndDeliver(kafka, two.connector, { prices: [0] });
  assert.deepEqual(two.changes(), ['orders/o1 removed']);
  assert.equal(two.connector.stats().records, 0, 'prices resumed: nothing to read');
  await two.pipeline.flushed();
  assert.equal(two.state.fingerprints()['kafka:orders'], undefined);
  await two.close();
});

test('a state written for another Kafka cluster is refused, naming the state dir', async () => {
  const dir = freshDir();
  const kafka = new FakeKafka();
  kafka.addTopic('prices', [{ values: [{ v: 1 }] }]);
  const one = await openNode(dir, kafka);
  await startAndDeliver(kafka, one.connector, { prices: [0] });
  await one.close();

  kafka.clusterId = 'cluster-b';
  const two = await openNode(dir, kafka);
  await assert.rejects(two.connector.start(), (err: unknown) => err instanceof StateError && err.code === 'STATE_FOREIGN_SOURCE' && err.message.includes(dir) && /cluster-a/.test(err.message));
  assert.equal(two.connector.health().state, 'failed');
  await two.close();
});

test('a Debezium truncate empties the stored key → path index with the topics, and it stays complete', async () => {
  const dir = freshDir();
  const kafka = new FakeKafka();
  const ORDERS: KafkaConfig = { ...PRICES, topics: [{ topic: 'orders', format: 'debezium', path: 'orders/{value.site}/{key}' }] };
  kafka.addTopic('orders', [{ values: [{ op: 'c', after: { site: 'x' } }, { op: 'c', after: { site: 'y' } }], keys: ['a', 'b'] }]);
  const one = await openNode(dir, kafka, ORDERS);
  await startAndDeliver(kafka, one.connector, { orders: [0] });
  await one.pipeline.flushed();
  assert.equal(one.state.rowPath('kafka:orders', 'a'), 'orders/x/a');
  kafka.append('orders', 0, 't', { op: 't' });
  kafka.append('orders', 0, 'c', { op: 'c', after: { site: 'z' } });
  await kafka.lastConsumer.deliver('orders', 0);
  await one.pipeline.flushed();
  assert.equal(one.store.size, 1);
  assert.deepEqual(['a', 'b', 'c'].map((k) => one.state.rowPath('kafka:orders', k)), [undefined, undefined, 'orders/z/c']);
  assert.equal(one.state.rowsComplete('kafka:orders'), true);
  await one.close();
});

test('a Kafka topic no longer consumed takes its stored key → path index with its topics', async () => {
  const dir = freshDir();
  const kafka = new FakeKafka();
  kafka.addTopic('sites', [{ values: [{ site: 'x' }], keys: ['a'] }]);
  kafka.addTopic('prices', [{ values: [{ v: 1 }], keys: ['p'] }]);
  const SITES: KafkaConfig = { ...PRICES, topics: [...PRICES.topics, { topic: 'sites', format: 'json', path: 'sites/{value.site}/{key}' }] };
  const one = await openNode(dir, kafka, SITES);
  await startAndDeliver(kafka, one.connector, { prices: [0], sites: [0] });
  await one.pipeline.flushed();
  assert.equal(one.state.rowPath('kafka:sites', 'a'), 'sites/x/a');
  await one.close();

  const two = await openNode(dir, kafka, PRICES);
  await startAndDeliver(kafka, two.connector, { prices: [0] });
  await two.pipeline.flushed();
  assert.equal(two.state.rowPath('kafka:sites', 'a'), undefined, 'its index is emptied');
  assert.equal(two.state.rowsComplete('kafka:sites'), false);
  await two.close();
});
