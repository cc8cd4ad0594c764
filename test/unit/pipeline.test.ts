/**
 * The pipeline over durable state (issue #12), on a real LMDB store in a temp dir: applied batches
 * and their positions are written, a checkpoint resolves only once they are durable, a restart
 * restores topics under the same epoch, seq and version floor, and a re-read is diffed against
 * the state and applied as one batch.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { ChangeBatch, TopicUpdate } from '../../core/topic.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import { Pipeline } from '../../services/pipeline.ts';
import { LmdbStateStore, StateJournal } from '../../services/state/index.ts';
import { RESTORE_SEQ_GAP, TopicStore } from '../../services/topics/topic-store.ts';

const root = mkdtempSync(join(tmpdir(), 'tidewire-pipeline-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

async function node(dir: string) {
  const state = await LmdbStateStore.open(dir, { identity: {}, epoch: 'e1' });
  const store = new TopicStore({ epoch: state.epoch ?? 'e1' });
  if (!state.created) store.restore({ epoch: state.epoch!, seq: state.seq, versionFloor: state.versionFloor }, state.topics());
  const handoff = new InProcessHandoff(store);
  const batches: ChangeBatch[] = [];
  handoff.subscribe((b) => batches.push(b));
  const pipeline = new Pipeline(store, handoff, { journal: new StateJournal(state) });
  return { state, store, pipeline, batches };
}

const up = (path: string, value: Record<string, unknown>, source = 'postgres:public.t'): TopicUpdate => ({ path, source, value: value as never });

test('batches and positions are written; a checkpoint resolves once durable; a restart restores epoch, seq, versions and the floor', async () => {
  const dir = join(root, `p${++n}`);
  const a = await node(dir);
  await a.pipeline.apply([up('t/1', { n: 1 }), up('t/2', { n: 1 })], { name: 'postgres', position: '0/10' });
  await a.pipeline.apply([up('t/1', { n: 2 })], { name: 'postgres', position: '0/20' });
  await a.pipeline.apply([{ path: 't/2', source: 'postgres:public.t', value: null }], { name: 'postgres', position: '0/30' });
  await a.pipeline.checkpoint({ name: 'postgres', position: '0/40' });
  assert.equal(a.state.positions().postgres, '0/40', 'durable once the checkpoint resolved');
  assert.equal(a.state.seq, 3);
  await a.state.close();

  const b = await node(dir);
  assert.equal(b.store.epoch, 'e1');
  assert.equal(b.store.position, 3 + RESTORE_SEQ_GAP, 'numbered after the gap that tells lost positions apart');
  assert.equal(b.store.positionLost(3), false);
  assert.equal(b.store.positionLost(4), true);
  assert.equal(b.store.get('t/1')!.version, 2);
  assert.deepEqual(b.store.get('t/1')!.value, { n: 2 });
  assert.equal(b.store.get('t/2'), undefined);
  assert.equal(b.pipeline.stored('postgres'), '0/40');
  // t/2 was removed at version 2: created again, it continues after every removed version.
  assert.equal(b.state.versionFloor, 2);
  await b.pipeline.apply([up('t/2', { n: 9 })]);
  assert.equal(b.store.get('t/2')!.version, 3);
  assert.equal(b.batches.at(-1)!.seq, 4 + RESTORE_SEQ_GAP, 'seq continues after the gap');
  await b.state.close();
});

test('a re-read is diffed: equal rows send nothing, changed rows and rows not read go out as one batch', async () => {
  const dir = join(root, `p${++n}`);
  const a = await node(dir);
  await a.pipeline.apply([up('t/1', { n: 1 }), up('t/2', { n: 1 }), up('t/3', { n: 1 }), up('k/1', { n: 1 }, 'kafka:x')]);
  a.batches.length = 0;
  const resync = a.pipeline.resync(['postgres:public.t']);
  resync.take([up('t/1', { n: 1 }), up('t/2', { n: 5 })]);
  resync.take([up('t/4', { n: 1 })]);
  assert.equal(a.batches.length, 0, 'nothing is sent while the re-read runs');
  assert.equal(resync.read, 3);
  assert.equal(resync.differing, 2);
  const result = await resync.finish({ name: 'postgres', position: '0/99' });
  assert.deepEqual(result, { changed: 2, removed: 1 });
  assert.equal(a.batches.length, 1, 'one step from the old state to the new');
  const changes = a.batches[0].changes.map((c) => `${c.type === 'removal' ? 'removal' : 'change'} ${c.topic.path} v${c.version}`).sort();
  assert.deepEqual(changes, ['change t/2 v2', 'change t/4 v1', 'removal t/3 v2']);
  assert.ok(a.store.get('k/1'), 'topics of other sources stay');
  await a.pipeline.flushed();
  assert.equal(a.state.positions().postgres, '0/99');
  await a.state.close();
});

test('an aborted re-read applies nothing', async () => {
  const dir = join(root, `p${++n}`);
  const a = await node(dir);
  await a.pipeline.apply([up('t/1', { n: 1 })]);
  const resync = a.pipeline.resync(['postgres:public.t']);
  resync.take([up('t/1', { n: 2 })]);
  resync.abort();
  assert.deepEqual(a.store.get('t/1')!.value, { n: 1 });
  assert.throws(() => resync.take([]), /finished/);
  await a.state.close();
});

test('in memory (no journal): checkpoints resolve at once and nothing is stored', async () => {
  const store = new TopicStore();
  const pipeline = new Pipeline(store, new InProcessHandoff(store));
  assert.equal(pipeline.durable, false);
  await pipeline.apply([up('t/1', { n: 1 })], { name: 'postgres', position: '0/1' });
  await pipeline.checkpoint({ name: 'postgres', position: '0/1' });
  assert.equal(pipeline.stored('postgres'), null);
  await pipeline.claim('postgres', 'x');
});
