/** The client's surface for `status` (docs/PROTOCOL.md, "Feed status"): onStatus and Subscription.stale, across re-subscribes. */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { ClientMessage, ServerMessage } from '../../../core/messages.ts';
import { parseSelector } from '../../../core/selector.ts';
import { type FeedStatus, Subscription, type SubscriptionCore } from '../../../client/subscription.ts';
import { TopicSync } from '../../../client/topic-sync.ts';

let sent: ClientMessage[];
let sync: TopicSync;

beforeEach(() => {
  sent = [];
  sync = new TopicSync({ send: (m) => sent.push(m), error: () => {} });
});

function subscribe(selector: string): { sub: Subscription; statuses: FeedStatus[] } {
  const statuses: FeedStatus[] = [];
  const core: SubscriptionCore = {
    selector: parseSelector(selector),
    handlers: { onStatus: (s) => statuses.push(s) },
    state: 'pending',
    wireId: null,
    paths: new Set(),
    stale: null,
    retry: null,
  };
  sync.add(core);
  return { sub: new Subscription(core, sync.cache, (c) => sync.remove(c)), statuses };
}

const id = (): string => (sent.filter((m) => m.type === 'subscribe').at(-1) as { id: string }).id;
const subscribed = (): ServerMessage => ({ type: 'subscribed', id: id(), selector: 'orders/**', topics: 0 });
const status = (stale: boolean, sources?: string[]): ServerMessage => (sources ? { type: 'status', id: id(), stale, sources } : { type: 'status', id: id(), stale });

describe('TopicSync: feed status', () => {
  it('reports stale and fresh again, and sub.stale follows', () => {
    const { sub, statuses } = subscribe('orders/**');
    sync.onOpen();
    sync.handleFrame([subscribed()]);
    assert.equal(sub.stale, false);
    sync.handleFrame([status(true, ['dbz.public.orders'])]);
    assert.equal(sub.stale, true);
    sync.handleFrame([status(false, [])]);
    assert.equal(sub.stale, false);
    assert.deepEqual(statuses, [{ stale: true, sources: ['dbz.public.orders'] }, { stale: false, sources: [] }]);
  });

  it('a fresh status for a fresh subscription is not reported; without names (security on) stale alone is', () => {
    const { sub, statuses } = subscribe('orders/**');
    sync.onOpen();
    sync.handleFrame([subscribed(), status(false)]);
    assert.deepEqual(statuses, []);
    sync.handleFrame([status(true)]);
    assert.deepEqual(statuses, [{ stale: true }]);
    assert.equal(sub.stale, true);
  });

  it('after a reconnect a stale subscription is fresh unless the server says stale again in the answer', () => {
    const { sub, statuses } = subscribe('orders/**');
    sync.onOpen({ epoch: 'e1' });
    sync.handleFrame([subscribed(), status(true, ['a'])]);
    sync.onClose();
    sync.onOpen({ epoch: 'e1' });
    sync.handleFrame([subscribed(), status(true, ['a'])]);
    assert.equal(sub.stale, true);
    assert.deepEqual(statuses, [{ stale: true, sources: ['a'] }, { stale: true, sources: ['a'] }], 'no stale:false in between');
    sync.onClose();
    sync.onOpen({ epoch: 'e1' });
    sync.handleFrame([subscribed()]);
    assert.equal(sub.stale, false);
    assert.deepEqual(statuses.at(-1), { stale: false });
  });
});
