/**
 * Whether a subscription's feed is stale: some topic its selector matches, among those the session
 * may read, comes from a source whose feed went quiet (Topic.source in the stale set the service
 * passes in, e.g. a Kafka topic with no record or heartbeat for kafka.staleAfterMs). Answered as a
 * `status` message whenever that changes, so a dashboard can grey out numbers that stopped moving.
 */
import type { Selector } from '../../core/selector.ts';
import type { TopicView } from '../../core/topic.ts';
import type { PermissionSet } from '../security/permission-set.ts';
import { forEachReadable } from './subscription-answer.ts';

/** Topic.source → the feed's name as operators know it (the Kafka topic). */
export type StaleSources = ReadonlyMap<string, string>;

/** The stale feeds behind the topics `selector` matches that the session may read, sorted; [] when none. */
export function staleFeedsOf(view: TopicView, permissions: PermissionSet | null, selector: Selector, stale: StaleSources): string[] {
  if (stale.size === 0) return [];
  const feeds = new Set<string>();
  forEachReadable({ view, permissions, selector }, (topic) => {
    const feed = stale.get(topic.source);
    if (feed !== undefined) feeds.add(feed);
  });
  return [...feeds].sort();
}
