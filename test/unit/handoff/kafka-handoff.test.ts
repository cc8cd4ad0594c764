import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChangeBatch } from '../../../core/topic.ts';
import { TopicStore } from '../../../services/topics/topic-store.ts';
import { HandoffError } from '../../../services/handoff/handoff-error.ts';
import { KafkaHandoff, KafkaReplica } from '../../../services/handoff/kafka-handoff.ts';
import { plainBatch, plainView } from '../../support/change-batches.ts';
import { MemoryLog } from '../../support/memory-log.ts';

const src = 'kafka:quotes';

const tick = () => new Promise((r) => setImmediate(r));

test('publish resolves once the log holds the batch; batches published meanwhile go out in one append, in order', async () => {
  const log = new MemoryLog();
  const store = new TopicStore({ epoch: 'e1' });
  const handoff = await KafkaHandoff.open(store, log);
  const local: number[] = [];
  handoff.subscribe((b) => local.push(b.seq));
  log.hold = true;
  let settled = 0;
  const published = [1, 2, 3, 4].map((i) => handoff.publish(store.apply([{ path: `q/${i}`, source: src, value: { i } }])!).then(() => settled++));
  assert.deepEqual(local, [1, 2, 3, 4], 'local listeners get each batch at once');
  await tick();
  assert.equal(settled, 0, 'nothing resolves before the log holds it');
  log.release();
  await tick();
  log.release();
  await Promise.all(published);
  assert.deepEqual(log.appends, [1, 3], 'the first append alone, the three published during it together');
  assert.deepEqual(log.records.map((r) => JSON.parse(r.value!.toString()).seq), [1, 2, 3, 4]);
});

test('a batch the log did not take fails its publish and every later one, and nothing is written after it', async () => {
  const log = new MemoryLog();
  const store = new TopicStore({ epoch: 'e1' });
  const handoff = await KafkaHandoff.open(store, log);
  await handoff.publish(store.apply([{ path: 'q/1', source: src, value: { i: 1 } }])!);
  log.failNext = new Error('broker gone');
  const failed = handoff.publish(store.apply([{ path: 'q/2', source: src, value: { i: 2 } }])!);
  await assert.rejects(failed, (e: HandoffError) => e.code === 'HANDOFF_PUBLISH_FAILED' && /broker gone.*restart the ingest node/.test(e.message));
  log.failNext = null;
  await assert.rejects(handoff.publish(store.apply([{ path: 'q/3', source: src, value: { i: 3 } }])!), (e: HandoffError) => e.code === 'HANDOFF_PUBLISH_FAILED');
  assert.equal(log.records.length, 1);
});

test('a retriable failure of the log is retried with backoff, in order, until the log takes the batches; close gives up on it', async () => {
  const log = new MemoryLog();
  const store = new TopicStore({ epoch: 'e1' });
  const events: string[] = [];
  const handoff = await KafkaHandoff.open(store, log, { retry: { initialMs: 5, maxMs: 20 }, onRetrying: (e) => events.push(`retrying ${e.code}`), onRecovered: () => events.push('recovered') });
  log.failNext = new HandoffError('HANDOFF_KAFKA', 'Kafka failed while writing: connect ECONNREFUSED', { retriable: true });
  const published = [1, 2, 3].map((i) => handoff.publish(store.apply([{ path: `q/${i}`, source: src, value: { i } }])!));
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(log.records.length, 0);
  assert.equal(handoff.retrying?.code, 'HANDOFF_KAFKA');
  assert.equal(handoff.failed, null, 'not failed: retrying');
  log.failNext = null;
  const receipts = await Promise.all(published);
  assert.deepEqual(log.records.map((r) => JSON.parse(r.value!.toString()).seq), [1, 2, 3], 'each batch once, in order');
  assert.deepEqual(receipts.map((r) => r?.position), ['1', '2', '3']);
  assert.equal(handoff.retrying, null);
  assert.deepEqual(events, ['retrying HANDOFF_KAFKA', 'recovered'], 'one outage, said once');

  log.failNext = new HandoffError('HANDOFF_KAFKA', 'still down', { retriable: true });
  const stuck = handoff.publish(store.apply([{ path: 'q/4', source: src, value: { i: 4 } }])!);
  const refused = assert.rejects(stuck, (e: HandoffError) => e.code === 'HANDOFF_PUBLISH_FAILED' && /still down/.test(e.message));
  await new Promise((r) => setTimeout(r, 20));
  await handoff.close();
  await refused;
});

test('a batch with a change too large for a record fails publishing, with what to raise', async () => {
  const store = new TopicStore({ epoch: 'e1' });
  const handoff = await KafkaHandoff.open(store, new MemoryLog(), { maxRecordBytes: 2048 });
  await assert.rejects(handoff.publish(store.apply([{ path: 'big', source: src, value: { b: 'x'.repeat(4000) } }])!), (e: HandoffError) => e.code === 'HANDOFF_PUBLISH_FAILED' && /raise the hand-off record limit/.test(e.message));
});

test('a replica hands its listeners the batches the ingest node emitted, a split one whole, and a second replica from offset 0 converges', async () => {
  const log = new MemoryLog();
  const store = new TopicStore({ epoch: 'e1' });
  const handoff = await KafkaHandoff.open(store, log, { maxRecordBytes: 2048 });
  const emitted: ChangeBatch[] = [];
  const edge = new KafkaReplica(new TopicStore());
  const got: ChangeBatch[] = [];
  edge.subscribe((b) => got.push(b));
  await edge.start(log);
  const note = 'a note long enough that changing one small field is sent as a delta';
  const txs = [
    Array.from({ length: 60 }, (_, i) => ({ path: `q/${i}`, source: src, value: { i, px: 1, note } })),
    [{ path: 'q/1', source: src, value: { i: 1, px: 2, note } }, { path: 'q/2', source: src, value: null }],
  ];
  for (const tx of txs) {
    const b = store.apply(tx)!;
    emitted.push(b);
    await handoff.publish(b);
  }
  assert.ok(log.records.length > 3, 'the first batch was split');
  assert.deepEqual(got.map(plainBatch), emitted.map(plainBatch));
  assert.deepEqual(plainView(edge.view), plainView(store));
  assert.equal(edge.offset, String(log.records.length));
  const late = new KafkaReplica(new TopicStore());
  await late.start(log, '0');
  assert.deepEqual(plainView(late.view), plainView(store));
  assert.equal(edge.stopped, null);
});

test('a record that is not a hand-off record stops the replica at the last batch applied', async () => {
  const log = new MemoryLog();
  const store = new TopicStore({ epoch: 'e1' });
  const handoff = await KafkaHandoff.open(store, log);
  await handoff.publish(store.apply([{ path: 'q/1', source: src, value: { i: 1 } }])!);
  const held = plainView(store);
  log.records.push({ offset: '1', value: Buffer.from('{"id":1}') });
  await handoff.publish(store.apply([{ path: 'q/2', source: src, value: { i: 2 } }])!);
  const stops: Array<[string, string | undefined]> = [];
  const edge = new KafkaReplica(new TopicStore(), { onStopped: (err, offset) => stops.push([(err as HandoffError).code, offset]) });
  await edge.start(log);
  assert.deepEqual(stops, [['HANDOFF_RECORD_INVALID', '1']]);
  assert.deepEqual(plainView(edge.view), held);
  assert.equal(edge.offset, '1', 'reading again continues after the last batch applied');
});

test('an edge does not publish', async () => {
  const edge = new KafkaReplica(new TopicStore());
  await assert.rejects(edge.publish({ epoch: 'e', seq: 1, changes: [] }), (e: HandoffError) => e.code === 'HANDOFF_READ_ONLY');
});
