/**
 * An ingest node's durable state behind the hand-off log (issue #15), on a real LMDB store in a
 * temp dir and the log as an array: a batch is stored only once the log holds it, with the log's
 * offset after it; after a crash that lost acknowledgements, a restart stores what the log holds
 * past the stored state (with the source positions and row index writes the records carry) and
 * the log goes on after it: an edge that read everything applies the next batch with no gap.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { RowWrite } from '../../../core/ingest.ts';
import type { TopicUpdate } from '../../../core/topic.ts';
import { HandoffError } from '../../../services/handoff/handoff-error.ts';
import { KafkaHandoff, KafkaReplica } from '../../../services/handoff/kafka-handoff.ts';
import { readLogTail } from '../../../services/handoff/log-recovery.ts';
import { Pipeline } from '../../../services/pipeline.ts';
import { LmdbStateStore, StateJournal } from '../../../services/state/index.ts';
import { RESTORE_SEQ_GAP, TopicStore } from '../../../services/topics/topic-store.ts';
import { plainView } from '../../support/change-batches.ts';
import { MemoryLog } from '../../support/memory-log.ts';

const root = mkdtempSync(join(tmpdir(), 'tidewire-log-recovery-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const src = 'postgres:public.t';
const LOG = 'handoff:t';
const up = (path: string, value: Record<string, unknown> | null): TopicUpdate => ({ path, source: src, value: value as never });
const row = (key: string, path: string | null): RowWrite => ({ source: src, key, path });
const pg = (position: string) => ({ name: 'postgres', position });
const ticks = async (k = 5) => {
  for (let i = 0; i < k; i++) await new Promise((r) => setImmediate(r));
};

/** An ingest node on `dir` publishing to `log`; a state that exists is restored, as the service does. */
async function ingestNode(dir: string, log: MemoryLog) {
  const state = await LmdbStateStore.open(dir, { identity: {}, epoch: 'e1' });
  const store = new TopicStore({ epoch: state.epoch ?? 'e1' });
  if (!state.created) store.restore({ epoch: state.epoch!, seq: state.seq, versionFloor: state.versionFloor }, state.topics());
  const journal = new StateJournal(state);
  const handoff = new KafkaHandoff(store, await log.openWriter(), { positionName: LOG });
  const pipeline = new Pipeline(store, handoff, { journal });
  /** What the service does at start: store the log's tail past the state. */
  const recover = async () => {
    const tail = await readLogTail(log, state.positions()[LOG], state.seq, (batch, after) => {
      journal.write(store.recover(batch), batch.position, batch.rows, Promise.resolve({ name: LOG, position: after }));
    });
    await journal.flushed();
    return tail;
  };
  return { state, store, journal, pipeline, recover };
}

test('a batch is stored only once the log holds it, with the offset after it; a checkpoint made meanwhile waits for it too', async () => {
  const log = new MemoryLog();
  const a = await ingestNode(join(root, `r${++n}`), log);
  await a.pipeline.apply([up('a/1', { n: 1 })], pg('0/10'), [row('1', 'a/1')]);
  await a.pipeline.flushed();
  assert.equal(a.state.seq, 1);
  assert.equal(a.state.positions()[LOG], '1', 'the offset after the batch is stored with it');

  log.hold = true;
  const applied = a.pipeline.apply([up('a/1', { n: 2 })], pg('0/20'));
  let checkpointed = false;
  const checkpoint = a.pipeline.checkpoint(pg('0/25')).then(() => (checkpointed = true));
  await ticks(20);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(a.state.seq, 1, 'the store is never ahead of the log');
  assert.equal(a.state.positions().postgres, '0/10', 'nor is any position after it');
  assert.equal(checkpointed, false, 'a checkpoint behind a batch the log has not taken does not resolve');
  log.release();
  await applied;
  await checkpoint;
  assert.equal(a.state.seq, 2);
  assert.deepEqual({ postgres: a.state.positions().postgres, log: a.state.positions()[LOG] }, { postgres: '0/25', log: '2' });
  await a.state.close();
});

test('a log that failed a batch fails the next apply and checkpoint: the batch and everything after it are never stored', async () => {
  const log = new MemoryLog();
  const a = await ingestNode(join(root, `r${++n}`), log);
  await a.pipeline.apply([up('a/1', { n: 1 })], pg('0/10'));
  await a.pipeline.flushed();
  log.failNext = new Error('broker gone');
  // The source does not wait for the log's acknowledgement of each batch: it learns of the failure next.
  await a.pipeline.apply([up('a/1', { n: 2 })], pg('0/20')).catch(() => {});
  await ticks();
  await assert.rejects(a.pipeline.checkpoint(pg('0/30')), (e: HandoffError) => e.code === 'HANDOFF_PUBLISH_FAILED');
  await assert.rejects(a.pipeline.apply([up('a/1', { n: 3 })], pg('0/40')), (e: HandoffError) => e.code === 'HANDOFF_PUBLISH_FAILED');
  assert.equal(a.state.seq, 1);
  assert.equal(a.state.positions().postgres, '0/10');
  await a.state.close();
});

test('the source does not wait for the log\'s acknowledgement of each batch, only once too many changes are not in the log', async () => {
  const log = new MemoryLog();
  const state = await LmdbStateStore.open(join(root, `r${++n}`), { identity: {}, epoch: 'e1' });
  const store = new TopicStore({ epoch: 'e1' });
  const pipeline = new Pipeline(store, new KafkaHandoff(store, await log.openWriter(), { positionName: LOG }), { journal: new StateJournal(state), maxUnloggedChanges: 10 });
  log.hold = true;
  let resolved = 0;
  for (let i = 0; i < 4; i++) void pipeline.apply([up(`a/${i}`, { i })]).then(() => resolved++);
  await ticks();
  assert.equal(resolved, 4, 'four batches of one change each (8 counted with their batches) are under the bound');
  const held = pipeline.apply([up('a/9', { i: 9 }), up('a/10', { i: 10 })]).then(() => resolved++);
  await ticks();
  assert.equal(resolved, 4, 'past the bound the source waits');
  log.release();
  await ticks();
  log.release();
  await held;
  assert.equal(resolved, 5);
  await pipeline.flushed();
  await state.close();
});

test('after a crash that lost the acknowledgement of a batch the log holds, a restart stores it, resumes its source after it, and the log goes on with no gap', async () => {
  const dir = join(root, `r${++n}`);
  const log = new MemoryLog();
  const a = await ingestNode(dir, log);
  const edge = new KafkaReplica(new TopicStore());
  await edge.start(log);
  await a.pipeline.apply([up('a/1', { n: 1 }), up('a/2', { n: 1 })], pg('0/10'), [row('1', 'a/1'), row('2', 'a/2')]);
  await a.pipeline.apply([up('a/1', { n: 2 })], pg('0/20'));
  await a.pipeline.flushed();
  // The log takes the next append; its acknowledgement never reaches the node. The batch after it
  // waits for that append and is never sent: it is lost with the process, as are the commits.
  log.loseAcks = true;
  void a.pipeline.apply([up('a/2', { n: 2 }), up('a/3', { n: 1 })], pg('0/30'), [row('3', 'a/3')]);
  void a.pipeline.apply([up('a/1', null)], pg('0/40'), [row('1', null)]);
  await ticks();
  assert.equal(log.records.length, 3);
  assert.equal(a.state.seq, 2, 'the state did not store what the log has not acknowledged');
  const edgeHeld = plainView(edge.view);
  await a.state.close();

  log.loseAcks = false;
  const b = await ingestNode(dir, log);
  assert.equal(b.state.seq, 2);
  const tail = await b.recover();
  assert.equal(tail.batches, 1);
  assert.equal(b.state.seq, 3, 'the batch the log held is stored');
  assert.equal(b.state.positions().postgres, '0/30', 'with the source position it brought: the source resumes after it');
  assert.equal(b.state.positions()[LOG], '3');
  assert.equal(b.state.rowPath(src, '3'), 'a/3', 'and its row index writes');
  assert.equal(b.store.get('a/2')!.version, 2, 'with the versions it was minted with');
  const { epoch, topics } = plainView(b.store) as { epoch: string; topics: unknown };
  assert.deepEqual({ epoch, topics }, { epoch: (edgeHeld as { epoch: string }).epoch, topics: (edgeHeld as { topics: unknown }).topics }, 'the state is the one the edge holds');

  // The source sends again what was never logged; the edge applies it after what it holds.
  await b.pipeline.apply([up('a/1', null)], pg('0/40'), [row('1', null)]);
  assert.equal(edge.stopped, null, 'the edge took the next batch: no gap, nothing twice');
  assert.equal(b.store.position, 3 + RESTORE_SEQ_GAP + 1, 'this run numbers after the gap, counted from the recovered batch');
  assert.deepEqual(plainView(edge.view), plainView(b.store));
  await b.pipeline.flushed();
  assert.equal(b.state.rowPath(src, '1'), undefined);
  await edge.close();
  await b.state.close();
});

test('reading the tail from an older offset skips the batches the state holds; a log behind the state is refused with what to do', async () => {
  const dir = join(root, `r${++n}`);
  const log = new MemoryLog();
  const a = await ingestNode(dir, log);
  for (let i = 1; i <= 3; i++) await a.pipeline.apply([up(`a/${i}`, { i })], pg(`0/${i}0`));
  await a.pipeline.flushed();
  const taken: number[] = [];
  const tail = await readLogTail(log, '0', 2, (batch) => taken.push(batch.seq));
  assert.deepEqual(taken, [3]);
  assert.equal(tail.end, '3');
  assert.deepEqual(await readLogTail(log, '3', 3, () => assert.fail('nothing to read')), { batches: 0, end: '3' });
  await assert.rejects(readLogTail(new MemoryLog(), '3', 3, () => {}), (e: HandoffError) => e.code === 'HANDOFF_LOG_BEHIND' && /delete the state folder/.test(e.message));
  await a.state.close();
});

test('recover is refused once the store numbered a batch of its own, and for a batch of another epoch', async () => {
  const store = new TopicStore({ epoch: 'e1' });
  store.restore({ epoch: 'e1', seq: 5, versionFloor: 0 }, []);
  assert.throws(() => store.recover({ epoch: 'e2', seq: 6, changes: [] }), /epoch e2/);
  assert.throws(() => store.recover({ epoch: 'e1', seq: 5, changes: [] }), /does not come after batch 5/);
  store.recover({ epoch: 'e1', seq: 6, changes: [{ type: 'value', path: 'a/1', tenant: 'default', source: src, version: 1, value: { n: 1 }, created: true }] });
  store.apply([up('a/2', { n: 1 })]);
  assert.throws(() => store.recover({ epoch: 'e1', seq: 7, changes: [] }), /only after restore/);
});
