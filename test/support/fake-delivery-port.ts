/**
 * A DeliveryPort for SessionDelivery's unit tests: a real topic view and stats, every message it
 * is handed recorded in `sent`, overflow and failures fail the test unless a test overrides them.
 */
import assert from 'node:assert/strict';
import type { Subscription } from '../../services/distribution/fan-out.ts';
import type { DeliveryPort } from '../../services/distribution/session-delivery.ts';
import { newStats } from '../../services/distribution/stats.ts';
import type { TopicView } from '../../core/topic.ts';

export function recordingDeliveryPort(view: TopicView, subs: Subscription[], overrides: Partial<DeliveryPort> = {}): DeliveryPort & { readonly sent: string[] } {
  const sent: string[] = [];
  return {
    view,
    stats: newStats(),
    permissions: () => null,
    subscriptions: () => subs,
    backlog: () => 0,
    queuedBytes: () => 0,
    enqueue: (wire) => sent.push(wire),
    push: (wire) => sent.push(wire),
    group: () => {},
    requestFlush: () => {},
    overflow: (why) => assert.fail(why),
    simple: () => {},
    failed: (err) => assert.fail(err as Error),
    ...overrides,
    sent,
  };
}
