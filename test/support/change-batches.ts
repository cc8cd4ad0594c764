// ChangeBatches and topic state as plain data, to compare an edge's with the ingest node's:
// everything distribution reads from a change (its wire text above all), nothing of identity.
import type { ChangeBatch, Topic, TopicView } from '../../core/topic.ts';
import { parseSelector } from '../../core/selector.ts';

export function plainBatch(batch: ChangeBatch): object {
  return {
    epoch: batch.epoch,
    seq: batch.seq,
    changes: batch.changes.map((c) => ({
      type: c.type,
      path: c.topic.path,
      tenant: c.topic.tenant,
      source: c.topic.source,
      version: c.version,
      wire: c.wire,
      before: c.before,
      after: c.after,
      patch: c.type === 'delta' ? c.patch : undefined,
      valueBytes: c.type === 'delta' ? c.valueBytes : undefined,
    })),
  };
}

export function plainTopic(t: Topic): object {
  return { path: t.path, tenant: t.tenant, source: t.source, version: t.version, seq: t.seq, value: t.value };
}

/** Every topic of the view, by path, plus its epoch and position. */
export function plainView(view: TopicView): object {
  const topics: Topic[] = [];
  view.forEachMatching(parseSelector('**'), (t) => topics.push(t));
  topics.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { epoch: view.epoch, position: view.position, size: view.size, topics: topics.map(plainTopic) };
}
