/**
 * The hand-off log on a real Kafka broker (issue #15, step 1): an ingest-side Pipeline (TopicStore
 * and KafkaHandoff) fed values, deltas, removals and a transaction large enough to be split into
 * parts, and edges (KafkaReplica) reading the same topic. After every batch an edge holds the same
 * topics as the ingest node (path, version, value, tenant) and its listeners got the same batches
 * (seq, versions, wire text), the split one as one batch; an edge started later from offset 0
 * converges to the same state.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import type { ChangeBatch, TopicUpdate } from '../../core/topic.ts';
import { Pipeline } from '../../services/pipeline.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import { KafkaHandoff, KafkaReplica } from '../../services/handoff/kafka-handoff.ts';
import { type KafkaHandoffLog, kafkaHandoffLog } from '../../services/handoff/kafkajs-handoff-log.ts';
import { type KafkaBroker, startKafka } from '../support/kafka-broker.ts';
import { plainBatch, plainView } from '../support/change-batches.ts';
import { waitFor } from '../support/wait.ts';

const TOPIC = 'tidewire-handoff-it';
/** Small, so the large transaction below is split into several parts. */
const MAX_RECORD_BYTES = 16 * 1024;
const src = 'postgres:public.accounts';
const note = 'a note long enough that changing one small field is sent as a delta';

let broker: KafkaBroker;
let log: KafkaHandoffLog;
let handoff: KafkaHandoff | undefined;
const edges: KafkaReplica[] = [];

before(async () => {
  broker = await startKafka();
  log = kafkaHandoffLog({ brokers: broker.brokers, topic: TOPIC, maxRecordBytes: MAX_RECORD_BYTES, retentionMs: 3_600_000 });
});

after(async () => {
  for (const e of edges) await e.close();
  await handoff?.close();
  await broker?.stop();
});

function edge(): KafkaReplica {
  const e = new KafkaReplica(new TopicStore(), { onStopped: () => {} });
  edges.push(e);
  return e;
}

/** Waits until the edge applied batch `seq`; fails at once with its reason if it stopped. */
async function caughtUp(e: KafkaReplica, seq: number, what: string): Promise<void> {
  await waitFor(`the edge to apply batch ${seq} (${what})`, () => {
    if (e.stopped) return true;
    return e.view.position === seq;
  });
  assert.equal(e.stopped, null, `the edge stopped: ${e.stopped?.message}`);
}

/** Records in the hand-off topic (its end offset). */
async function recordCount(): Promise<number> {
  const admin = new Kafka({ brokers: broker.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const [p] = await admin.fetchTopicOffsets(TOPIC);
    return Number(p.high);
  } finally {
    await admin.disconnect();
  }
}

test('ensureTopic creates the hand-off topic with one partition and its retention, and refuses one with more', async () => {
  await log.ensureTopic();
  await log.ensureTopic(); // an existing topic is checked, not created again
  const admin = new Kafka({ brokers: broker.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const meta = await admin.fetchTopicMetadata({ topics: [TOPIC] });
    assert.equal(meta.topics[0].partitions.length, 1);
    const { resources } = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: TOPIC, configNames: ['retention.ms', 'cleanup.policy', 'max.message.bytes'] }] });
    const config = Object.fromEntries(resources[0].configEntries.map((c) => [c.configName, c.configValue]));
    assert.deepEqual(config, { 'retention.ms': '3600000', 'cleanup.policy': 'delete', 'max.message.bytes': String(MAX_RECORD_BYTES + 64 * 1024) });
    await admin.createTopics({ topics: [{ topic: 'three-partitions', numPartitions: 3 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
  const wrong = kafkaHandoffLog({ brokers: broker.brokers, topic: 'three-partitions' });
  await assert.rejects(wrong.ensureTopic(), /has 3 partitions; it must have exactly 1.*delete it and let tidewire create it/);
});

test('an edge holds the ingest node\'s topics and hands on its batches, a split transaction as one; a later edge converges', async () => {
  await log.ensureTopic();
  const store = new TopicStore();
  handoff = await KafkaHandoff.open(store, log, { maxRecordBytes: MAX_RECORD_BYTES });
  const pipeline = new Pipeline(store, handoff);
  const emitted: ChangeBatch[] = [];
  handoff.subscribe((b) => emitted.push(b));

  const first = edge();
  const got: ChangeBatch[] = [];
  first.subscribe((b) => got.push(b));
  await first.start(log, '0');

  const account = (id: number, balance: number, tenant = id % 2 === 0 ? 'even' : 'odd'): TopicUpdate => ({
    path: `accounts/${id}`,
    source: src,
    tenant,
    value: { id, balance, note, profile: { tier: 'gold', tags: ['a', 'b'] } },
  });
  const transactions: Array<[string, TopicUpdate[]]> = [
    ['values (creations, two tenants)', [account(1, 100), account(2, 100), account(3, 100)]],
    ['deltas (a transfer keeping the sum)', [account(1, 70), account(2, 130)]],
    ['a value replacing one whole', [{ path: 'accounts/3', source: src, value: { id: 3, closed: true } }]],
    ['a nested delta and a removal', [{ ...account(1, 70), value: { id: 1, balance: 70, note, profile: { tier: 'platinum', tags: ['a', 'b'] } } }, { path: 'accounts/3', source: src, value: null }]],
    ['a path created again after its removal', [account(3, 5)]],
    ['one transaction over many records', Array.from({ length: 400 }, (_, i) => account(100 + i, i))],
    ['a row changed twice and removed in one transaction', [account(2, 131), account(2, 132), { path: 'accounts/2', source: src, value: null }]],
  ];
  let splitParts = 0;
  for (const [what, updates] of transactions) {
    const recordsBefore = await recordCount();
    await pipeline.apply(updates);
    await pipeline.flushed(); // once Kafka acknowledged the batch
    const recordsAfter = await recordCount();
    if (what.startsWith('one transaction over many')) splitParts = recordsAfter - recordsBefore;
    else assert.equal(recordsAfter - recordsBefore, 1, `${what}: one record`);
    await caughtUp(first, store.position, what);
    assert.deepEqual(plainView(first.view), plainView(store), what);
    assert.deepEqual(got.map(plainBatch), emitted.map(plainBatch), what);
  }
  assert.ok(splitParts > 3, `the large transaction went out in ${splitParts} parts`);
  assert.equal(got.length, transactions.length, 'each transaction reached the edge\'s listeners as one batch');
  assert.equal(got[5].changes.length, 400);
  assert.ok(got.some((b) => b.changes.some((c) => c.type === 'delta')) && got.some((b) => b.changes.some((c) => c.type === 'removal')));
  assert.equal(first.offset, String(await recordCount()));

  const late = edge();
  const lateGot: ChangeBatch[] = [];
  late.subscribe((b) => lateGot.push(b));
  await late.start(log, '0');
  await caughtUp(late, store.position, 'the later edge, from offset 0');
  assert.deepEqual(plainView(late.view), plainView(store));
  assert.deepEqual(lateGot.map(plainBatch), emitted.map(plainBatch));
  assert.equal(late.position?.end, String(await recordCount()), 'the reader knows the log\'s end');
});
