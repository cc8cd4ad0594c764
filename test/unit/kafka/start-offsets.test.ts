// Where each partition starts, and how each Kafka topic starts with durable state: a stored offset
// inside the log wins over startFrom; one outside it, a changed mapping, topics in the state without
// a fingerprint, or a path needing the key index re-read from the earliest offset.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Resync, SourceCheckpoints, SourcePosition } from '../../../core/ingest.ts';
import type { KafkaAdmin } from '../../../connectors/kafka/kafka-client.ts';
import { resolveKafkaSettings } from '../../../connectors/kafka/kafka-options.ts';
import { kafkaMappingFingerprint } from '../../../connectors/kafka/mapping-fingerprint.ts';
import { chooseStartOffset, planTopicStart, readStartOffsets } from '../../../connectors/kafka/start-offsets.ts';

test('chooseStartOffset: a stored offset inside the log wins; then a committed one inside it; else the earliest', () => {
  const log = { low: 10, high: 50 };
  assert.deepEqual(chooseStartOffset(log, 30, 40), { offset: 30, from: 'stored' });
  assert.deepEqual(chooseStartOffset(log, 10, null), { offset: 10, from: 'stored' }, 'the low end is inside');
  assert.deepEqual(chooseStartOffset(log, 50, null), { offset: 50, from: 'stored' }, 'the high end (nothing new) is inside');
  assert.deepEqual(chooseStartOffset(log, 9, 40), { offset: 40, from: 'committed' }, 'a stored offset retention deleted past falls back');
  assert.deepEqual(chooseStartOffset(log, 51, null), { offset: 10, from: 'earliest' }, 'past the end: the topic was recreated');
  assert.deepEqual(chooseStartOffset(log, null, 60), { offset: 10, from: 'earliest' }, 'a committed offset outside the log is ignored');
  assert.deepEqual(chooseStartOffset(log, null, null), { offset: 10, from: 'earliest' });
});

const FP = 'k1:aaaa';
function plan(over: Partial<Parameters<typeof planTopicStart>[0]> = {}) {
  return planTopicStart({
    watermarks: [
      { partition: 0, low: 0, high: 100 },
      { partition: 1, low: 20, high: 30 },
    ],
    stored: (p) => ({ 0: '60', 1: '25' })[p] ?? null,
    fingerprint: FP,
    storedFingerprint: FP,
    pathUsesValue: false,
    rowIndexComplete: true,
    holdsTopics: () => true,
    ...over,
  });
}

test('planTopicStart: the same mapping with every stored offset inside its log resumes', () => {
  assert.deepEqual(plan(), { mode: 'resume' });
  assert.deepEqual(plan({ stored: (p) => (p === 0 ? '100' : null) }), { mode: 'resume' }, 'a partition without a stored offset (added since) reads from startFrom');
});

test('planTopicStart: a stored offset outside the log, or not an offset, re-reads the whole topic and says why', () => {
  const before = plan({ stored: (p) => (p === 1 ? '19' : '60') });
  assert.equal(before.mode, 'reread');
  assert.match((before as { why: string }).why, /partition 1: the stored offset 19 is outside its log \(20 to 30\)/);
  assert.equal(plan({ stored: (p) => (p === 0 ? '101' : '25') }).mode, 'reread', 'past the end: recreated');
  assert.equal(plan({ stored: () => '1e3' }).mode, 'reread');
});

test('planTopicStart: a changed mapping re-reads; no fingerprint stored re-reads only when the state holds topics of it, else it is fresh', () => {
  assert.deepEqual(plan({ storedFingerprint: 'k1:bbbb' }), { mode: 'reread', why: 'its mapping changed' });
  assert.deepEqual(plan({ storedFingerprint: undefined }), { mode: 'reread', why: 'the state holds topics of it but no fingerprint of its mapping' });
  assert.deepEqual(plan({ storedFingerprint: undefined, holdsTopics: () => false }), { mode: 'fresh' });
  let asked = 0;
  plan({ holdsTopics: () => ++asked > 0 });
  plan({ storedFingerprint: 'k1:bbbb', holdsTopics: () => ++asked > 0 });
  assert.equal(asked, 0, 'the state is searched only for a topic without a fingerprint');
});

test('planTopicStart: a path naming value fields resumes with its key → path index stored complete, and re-reads without it', () => {
  assert.deepEqual(plan({ pathUsesValue: true }), { mode: 'resume' });
  const r = plan({ pathUsesValue: true, rowIndexComplete: false });
  assert.equal(r.mode, 'reread');
  assert.match((r as { why: string }).why, /value fields, and the key → path index tombstones need is not stored complete/);
  assert.deepEqual(plan({ pathUsesValue: false, rowIndexComplete: false }), { mode: 'resume' }, 'a path of key fields needs no index');
});

test('kafkaMappingFingerprint: follows what decides the topics, not the order keys were written in or the heartbeat topic', () => {
  const a = kafkaMappingFingerprint({ topic: 'prices', format: 'json', path: 'p/{key}', exclude: ['x'] }, 1024);
  assert.match(a, /^k1:[0-9a-f]{32}$/);
  assert.equal(kafkaMappingFingerprint({ path: 'p/{key}', exclude: ['x'], format: 'json', topic: 'prices', heartbeatTopic: 'hb' }, 1024), a);
  assert.notEqual(kafkaMappingFingerprint({ topic: 'prices', format: 'json', path: 'q/{key}', exclude: ['x'] }, 1024), a);
  assert.notEqual(kafkaMappingFingerprint({ topic: 'prices', format: 'json', path: 'p/{key}' }, 1024), a);
  assert.notEqual(kafkaMappingFingerprint({ topic: 'prices', format: 'json', path: 'p/{key}', exclude: ['x'] }, 2048), a);
});

/** A SourceCheckpoints whose reads answer from fixed maps (only the read side is used at start); `sources` hold topics. */
function storedState(positions: Record<string, string>, fingerprints: Record<string, string>, sources: string[] = []): SourceCheckpoints {
  const unused = () => {
    throw new Error('not used at start');
  };
  return {
    claim: async () => {},
    holdsTopics: () => sources.length > 0,
    topicsOf: (source) => (sources.includes(source) ? [{ path: `${source}/x`, value: {} }] : []),
    rowIndex: () => null,
    stored: (name) => positions[name] ?? null,
    fingerprints: () => fingerprints,
    setFingerprints: async () => {},
    checkpoint: async (_p: SourcePosition) => {},
    resync: unused as (s: readonly string[]) => Resync,
  };
}

function admin(logs: Record<string, { low: number; high: number }[]>, committed: Record<string, Map<number, string>> = {}): KafkaAdmin & { committedReads: string[] } {
  const committedReads: string[] = [];
  return {
    committedReads,
    connect: async () => {},
    clusterId: async () => 'cluster-a',
    listTopics: async () => Object.keys(logs),
    fetchWatermarks: async (topic) => logs[topic].map((w, partition) => ({ partition, low: String(w.low), high: String(w.high) })),
    fetchCommittedOffsets: async (_group, topic) => {
      committedReads.push(topic);
      return committed[topic] ?? new Map();
    },
    describeTopicConfigs: async () => new Map(),
    disconnect: async () => {},
  };
}

test('readStartOffsets: resumed topics start at their stored offsets, re-read ones at the earliest, fresh ones from startFrom', async () => {
  const topics = [
    { topic: 'prices', format: 'json' as const, path: 'prices/{key}' },
    { topic: 'orders', format: 'json' as const, path: 'orders/{key}' },
    { topic: 'moved', format: 'json' as const, path: 'moved/{value.site}/{key}' },
  ];
  const settings = resolveKafkaSettings({ brokers: ['k:9092'], startFrom: 'committed', topics });
  const fp = (i: number) => kafkaMappingFingerprint(topics[i], settings.maxValueBytes);
  const a = admin(
    { prices: [{ low: 0, high: 90 }, { low: 5, high: 7 }], orders: [{ low: 40, high: 60 }], moved: [{ low: 0, high: 3 }], held: [{ low: 2, high: 9 }], fresh: [{ low: 2, high: 9 }] },
    { prices: new Map([[1, '6']]), held: new Map([[0, '8']]), fresh: new Map([[0, '8']]) },
  );
  const cp = storedState(
    { 'kafka:prices/0': '80', 'kafka:orders/0': '12', 'kafka:moved/0': '3' },
    { 'kafka:prices': fp(0), 'kafka:orders': fp(1), 'kafka:moved': fp(2) },
    ['kafka:prices', 'kafka:orders', 'kafka:moved', 'kafka:held', 'postgres:public.t'],
  );
  const mapping = (topic: string) => {
    const i = ['prices', 'orders', 'moved'].indexOf(topic);
    return i < 0 ? { fingerprint: 'k1:new', pathUsesValue: false, rowIndexComplete: true } : { fingerprint: fp(i), pathUsesValue: i === 2, rowIndexComplete: i !== 2 };
  };
  const all = ['prices', 'orders', 'moved', 'held', 'fresh'];
  const { positions, starts } = await readStartOffsets(a, settings, all, [], { checkpoints: storedState({}, {}), mapping });
  assert.deepEqual(Object.values(Object.fromEntries(starts)), all.map(() => ({ mode: 'fresh' })), 'an empty state: everything fresh');
  assert.deepEqual([...positions.all()].map((p) => [p.key, p.start, p.from]), [
    ['prices:0', 0, 'earliest'],
    ['prices:1', 6, 'committed'],
    ['orders:0', 40, 'earliest'],
    ['moved:0', 0, 'earliest'],
    ['held:0', 8, 'committed'],
    ['fresh:0', 8, 'committed'],
  ]);

  const r = await readStartOffsets(a, settings, all, [], { checkpoints: cp, mapping });
  assert.deepEqual(r.starts.get('prices'), { mode: 'resume' });
  assert.equal(r.starts.get('orders')!.mode, 'reread', 'offset 12 was deleted by retention');
  assert.equal(r.starts.get('moved')!.mode, 'reread', 'a path on value fields, its index not stored complete');
  assert.equal(r.starts.get('held')!.mode, 'reread', 'topics of it in the state, no fingerprint');
  assert.deepEqual(r.starts.get('fresh'), { mode: 'fresh' }, 'nothing of it in a state that holds other topics');
  assert.deepEqual([...r.positions.all()].map((p) => [p.key, p.name, p.start, p.target, p.from]), [
    ['prices:0', 'kafka:prices/0', 80, 90, 'stored'],
    ['prices:1', 'kafka:prices/1', 6, 7, 'committed'],
    ['orders:0', 'kafka:orders/0', 40, 60, 'earliest'],
    ['moved:0', 'kafka:moved/0', 0, 3, 'earliest'],
    ['held:0', 'kafka:held/0', 2, 9, 'earliest'],
    ['fresh:0', 'kafka:fresh/0', 8, 9, 'committed'],
  ]);
});

test('readStartOffsets: without durable state, startFrom earliest reads from the earliest offset whatever was committed', async () => {
  const settings = resolveKafkaSettings({ brokers: ['k:9092'], topics: [{ topic: 'prices', format: 'json', path: 'p/{key}' }] });
  const a = admin({ prices: [{ low: 3, high: 9 }], hb: [{ low: 0, high: 4 }] }, { prices: new Map([[0, '8']]) });
  const { positions, starts } = await readStartOffsets(a, settings, ['prices'], ['hb']);
  assert.deepEqual(Object.fromEntries(starts), { prices: { mode: 'fresh' } });
  assert.deepEqual(a.committedReads, []);
  assert.deepEqual([...positions.all()].map((p) => [p.key, p.start, p.target, p.from]), [
    ['hb:0', 4, 4, 'end'],
    ['prices:0', 3, 9, 'earliest'],
  ]);
});
