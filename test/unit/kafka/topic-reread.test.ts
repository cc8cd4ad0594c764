// The re-read's own rules, over the real Pipeline and TopicStore: the last update per path wins
// (a tombstone too), kept (TOASTed) fields come from the value held before, a truncate drops
// what was held of its source, and finish applies only what differs, as one batch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PartitionPositions } from '../../../connectors/kafka/partition-positions.ts';
import { TopicReread } from '../../../connectors/kafka/topic-reread.ts';
import type { ChangeBatch } from '../../../core/topic.ts';
import { InProcessHandoff } from '../../../services/handoff/handoff.ts';
import { Pipeline } from '../../../services/pipeline.ts';
import { TopicStore } from '../../../services/topics/topic-store.ts';

const S = 'kafka:t';

async function setup() {
  const store = new TopicStore();
  const handoff = new InProcessHandoff(store);
  const pipeline = new Pipeline(store, handoff);
  await pipeline.apply([
    { path: 't/a', source: S, value: { x: 1 } },
    { path: 't/b', source: S, value: { x: 1 } },
    { path: 't/c', source: S, value: { x: 1 } },
    { path: 'other/z', source: 'kafka:other', value: { x: 1 } },
  ]);
  const batches: ChangeBatch[] = [];
  handoff.subscribe((b) => batches.push(b));
  const changes = () => batches.flatMap((b) => b.changes.map((c) => `${c.topic.path} ${c.type === 'removal' ? 'removed' : JSON.stringify(c.after)}`)).sort();
  return { store, pipeline, batches, changes };
}

test('the last update per path wins; unchanged paths send nothing; paths not held (or last removed) are removed; other sources untouched', async () => {
  const { pipeline, batches, changes } = await setup();
  const reread = new TopicReread(new Set(['t']), pipeline, { [S]: 'k1:x' });
  assert.equal(reread.covers('t'), true);
  assert.equal(reread.covers('other'), false);
  reread.take([{ path: 't/a', source: S, value: { x: 0 } }]);
  reread.take([{ path: 't/a', source: S, value: { x: 1 } }]); // back to the state's value
  reread.take([{ path: 't/b', source: S, value: { x: 2 } }, { path: 't/d', source: S, value: { x: 4 } }]);
  reread.take([{ path: 't/d', source: S, value: null }]);
  assert.equal(reread.size, 3);
  const r = await reread.finish(pipeline, new PartitionPositions().all());
  assert.deepEqual(r, { paths: 3, changed: 1, removed: 1 });
  assert.equal(batches.length, 1);
  assert.deepEqual(changes(), ['t/b {"x":2}', 't/c removed']);
  assert.equal(reread.covers('t'), false, 'finished: later records are applied as read');
  await assert.rejects(reread.finish(pipeline, []), /finished/);
});

test('kept fields are filled from the update held before; a truncate drops what was held of its source', async () => {
  const { store, pipeline, changes } = await setup();
  const reread = new TopicReread(new Set(['t']), pipeline, {});
  reread.take([{ path: 't/a', source: S, value: { x: 5, doc: 'big' } }]);
  reread.take([{ path: 't/a', source: S, value: { x: 6 }, keep: ['doc', 'absent'] }]);
  reread.take([{ path: 't/b', source: S, value: { x: 9 } }]);
  reread.truncate(S);
  reread.take([{ path: 't/c', source: S, value: { x: 7 } }]);
  await reread.finish(pipeline, []);
  assert.deepEqual(changes(), ['t/a removed', 't/b removed', 't/c {"x":7}']);

  const again = await setup();
  const r2 = new TopicReread(new Set(['t']), again.pipeline, {});
  r2.take([{ path: 't/a', source: S, value: { x: 5, doc: 'big' } }]);
  r2.take([{ path: 't/a', source: S, value: { x: 6 }, keep: ['doc'] }]);
  await r2.finish(again.pipeline, []);
  assert.deepEqual(again.store.get('t/a')!.value, { x: 6, doc: 'big' });
  assert.equal(store.get('t/c')!.version, 2);
});
