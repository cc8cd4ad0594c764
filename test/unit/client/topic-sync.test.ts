import assert from 'node:assert/strict';
import { beforeEach, describe, it, mock } from 'node:test';
import type { ClientMessage, ServerMessage } from '../../../core/messages.ts';
import type { JsonObject } from '../../../core/json.ts';
import { parseSelector } from '../../../core/selector.ts';
import type { TidewireClientError } from '../../../client/errors.ts';
import { Subscription, type SubscriptionCore } from '../../../client/subscription.ts';
import { RATE_LIMIT_RETRY_MS, TopicSync } from '../../../client/topic-sync.ts';

type Event = ['value', string, JsonObject, number] | ['removal', string] | ['live'] | ['error', string];

let sent: ClientMessage[];
let errors: TidewireClientError[];
let sync: TopicSync;

beforeEach(() => {
  sent = [];
  errors = [];
  sync = new TopicSync({ send: (m) => sent.push(m), error: (e) => errors.push(e) });
});

function subscribe(selector: string): { sub: Subscription; core: SubscriptionCore; events: Event[] } {
  const events: Event[] = [];
  const core: SubscriptionCore = {
    selector: parseSelector(selector),
    handlers: {
      onValue: (p, v, ver) => events.push(['value', p, v, ver]),
      onRemoval: (p) => events.push(['removal', p]),
      onLive: () => events.push(['live']),
      onError: (e) => events.push(['error', e.code]),
    },
    state: 'pending',
    wireId: null,
    paths: new Set(),
    stale: null,
    retry: null,
  };
  sync.add(core);
  return { sub: new Subscription(core, sync.cache, (c) => sync.remove(c)), core, events };
}

const feed = (...ms: ServerMessage[]): void => ms.forEach((m) => sync.handle(m));
const value = (path: string, version: number, v: JsonObject): ServerMessage => ({ type: 'value', path, version, value: v });
const lastSubscribe = (): string => (sent.filter((m) => m.type === 'subscribe').at(-1) as { id: string }).id;

describe('TopicSync: subscribing', () => {
  it('requests subscriptions once connected, then reports values, then live', () => {
    const { sub, events } = subscribe('orders/**');
    assert.deepEqual(sent, []);
    sync.onOpen();
    assert.deepEqual(sent, [{ type: 'subscribe', id: lastSubscribe(), selector: 'orders/**', positions: true }]);
    assert.equal(sub.state, 'pending');
    feed(value('orders/1', 1, { a: 1 }), value('orders/2', 3, { a: 2 }), { type: 'subscribed', id: lastSubscribe(), selector: 'orders/**', topics: 2 });
    assert.deepEqual(events, [['value', 'orders/1', { a: 1 }, 1], ['value', 'orders/2', { a: 2 }, 3], ['live']]);
    assert.equal(sub.live, true);
    assert.deepEqual([...sub.values], [['orders/1', { a: 1 }], ['orders/2', { a: 2 }]]);
  });

  it('applies deltas that follow the held version', () => {
    const { sub, events } = subscribe('orders/*');
    sync.onOpen();
    feed(value('orders/1', 1, { a: 1, b: 1 }), { type: 'subscribed', id: lastSubscribe(), selector: 'orders/*', topics: 1 });
    feed({ type: 'delta', path: 'orders/1', version: 2, patch: [{ op: 'replace', path: '/a', value: 2 }] });
    feed({ type: 'delta', path: 'orders/1', version: 3, patch: [{ op: 'remove', path: '/b' }] });
    assert.deepEqual(sub.values.get('orders/1'), { a: 2 });
    assert.deepEqual(events.slice(-2), [['value', 'orders/1', { a: 2, b: 1 }, 2], ['value', 'orders/1', { a: 2 }, 3]]);
    assert.equal(sync.cache.get('orders/1')!.version, 3);
  });

  it('reports removals and forgets the topic', () => {
    const { sub, events } = subscribe('orders/*');
    sync.onOpen();
    feed(value('orders/1', 1, { a: 1 }), { type: 'subscribed', id: lastSubscribe(), selector: 'orders/*', topics: 1 });
    feed({ type: 'removal', path: 'orders/1', version: 2 });
    assert.deepEqual(events.at(-1), ['removal', 'orders/1']);
    assert.equal(sub.values.size, 0);
    assert.equal(sync.cache.size, 0);
  });
});

describe('TopicSync: gaps', () => {
  it('a delta that skips a version is never applied: the subscription is fetched again', () => {
    const { sub, core, events } = subscribe('orders/*');
    sync.onOpen();
    const first = lastSubscribe();
    feed(value('orders/1', 1, { a: 1 }), value('orders/2', 1, { b: 1 }), value('orders/3', 1, { c: 1 }));
    feed({ type: 'subscribed', id: first, selector: 'orders/*', topics: 3 });
    events.length = 0;
    sent.length = 0;
    feed({ type: 'delta', path: 'orders/1', version: 3, patch: [{ op: 'replace', path: '/a', value: 3 }] });
    assert.deepEqual(sub.values.get('orders/1'), { a: 1 }, 'the delta was not applied to the wrong base');
    assert.deepEqual(events, []);
    assert.deepEqual(sent, [{ type: 'unsubscribe', id: first }, { type: 'subscribe', id: lastSubscribe(), selector: 'orders/*', positions: true }]);
    assert.equal(sub.state, 'resyncing');
    assert.equal(sub.live, false);
    // A second broken delta while re-subscribing asks for nothing more.
    feed({ type: 'delta', path: 'orders/1', version: 4, patch: [{ op: 'replace', path: '/a', value: 4 }] });
    assert.equal(sent.length, 2);
    // The answer: orders/1 changed, orders/2 unchanged, orders/3 gone.
    feed({ type: 'unsubscribed', id: first }, value('orders/1', 4, { a: 4 }), value('orders/2', 1, { b: 1 }));
    feed({ type: 'subscribed', id: lastSubscribe(), selector: 'orders/*', topics: 2 });
    assert.deepEqual(events, [['value', 'orders/1', { a: 4 }, 4], ['removal', 'orders/3'], ['live']]);
    assert.deepEqual([...sub.values.keys()].sort(), ['orders/1', 'orders/2']);
    assert.equal(core.stale, null);
    assert.equal(sync.cache.size, 2);
  });

  it('a patch that does not apply is a gap too', () => {
    const { sub } = subscribe('t');
    sync.onOpen();
    feed(value('t', 1, { a: 1 }), { type: 'subscribed', id: lastSubscribe(), selector: 't', topics: 1 });
    sent.length = 0;
    feed({ type: 'delta', path: 't', version: 2, patch: [{ op: 'remove', path: '/missing' }] });
    assert.deepEqual(sub.values.get('t'), { a: 1 });
    assert.deepEqual(sent.map((m) => m.type), ['unsubscribe', 'subscribe']);
  });

  it('a late delta for a topic no subscription covers any more is ignored', () => {
    const { sub } = subscribe('a/*');
    sync.onOpen();
    feed(value('a/1', 1, { x: 1 }), { type: 'subscribed', id: lastSubscribe(), selector: 'a/*', topics: 1 });
    sub.unsubscribe();
    sent.length = 0;
    feed({ type: 'delta', path: 'a/1', version: 2, patch: [{ op: 'replace', path: '/x', value: 2 }] }, value('a/2', 1, { x: 1 }));
    assert.deepEqual(sent, []);
    assert.equal(sync.cache.size, 0);
  });
});

describe('TopicSync: overlapping subscriptions', () => {
  it('a topic matched by two subscriptions is stored once and reported to both', () => {
    const all = subscribe('orders/**');
    const one = subscribe('orders/7/*');
    sync.onOpen();
    const [idAll, idOne] = sent.map((m) => (m as { id: string }).id);
    feed(value('orders/7/1', 1, { n: 1 }), value('orders/8/1', 1, { n: 2 }), { type: 'subscribed', id: idAll, selector: 'orders/**', topics: 2 });
    feed(value('orders/7/1', 1, { n: 1 }), { type: 'subscribed', id: idOne, selector: 'orders/7/*', topics: 1 });
    assert.equal(sync.cache.size, 2);
    assert.equal(sync.cache.get('orders/7/1')!.refs, 2);
    assert.equal(all.sub.values.get('orders/7/1'), one.sub.values.get('orders/7/1'), 'the same stored value');
    assert.deepEqual(all.events.filter((e) => e[0] === 'value').length, 2, 'the second subscription did not re-report to the first');
    assert.deepEqual(one.events, [['value', 'orders/7/1', { n: 1 }, 1], ['live']]);
    feed({ type: 'delta', path: 'orders/7/1', version: 2, patch: [{ op: 'replace', path: '/n', value: 9 }] });
    assert.deepEqual(all.events.at(-1), ['value', 'orders/7/1', { n: 9 }, 2]);
    assert.deepEqual(one.events.at(-1), ['value', 'orders/7/1', { n: 9 }, 2]);
    all.sub.unsubscribe();
    assert.deepEqual(sent.at(-1), { type: 'unsubscribe', id: idAll });
    assert.equal(all.sub.state, 'closed');
    assert.equal(all.sub.values.size, 0);
    assert.deepEqual([...sync.cache.keys()], ['orders/7/1'], 'what only the first held is released');
    assert.deepEqual(one.sub.values.get('orders/7/1'), { n: 9 });
    one.sub.unsubscribe();
    assert.equal(sync.cache.size, 0);
  });
});

describe('TopicSync: reconnect', () => {
  it('after a reconnect, unchanged values are not reported again, changed ones are, vanished ones are removed', () => {
    const { sub, events } = subscribe('orders/*');
    sync.onOpen();
    feed(value('orders/1', 5, { a: 1 }), value('orders/2', 5, { b: 1 }), value('orders/3', 5, { c: 1 }));
    feed({ type: 'subscribed', id: lastSubscribe(), selector: 'orders/*', topics: 3 });
    events.length = 0;
    sync.onClose();
    assert.equal(sub.state, 'resyncing');
    assert.equal(sub.live, false);
    assert.equal(sub.values.size, 3, 'values are kept while disconnected');
    // A new server (new epoch): versions start again.
    sync.onOpen();
    feed(value('orders/1', 1, { a: 1 }), value('orders/2', 1, { b: 2 }), value('orders/4', 1, { d: 1 }));
    assert.deepEqual(events, [['value', 'orders/2', { b: 2 }, 1], ['value', 'orders/4', { d: 1 }, 1]]);
    feed({ type: 'subscribed', id: lastSubscribe(), selector: 'orders/*', topics: 3 });
    assert.deepEqual(events.slice(2), [['removal', 'orders/3'], ['live']]);
    assert.deepEqual([...sub.values.keys()].sort(), ['orders/1', 'orders/2', 'orders/4']);
    assert.equal(sync.cache.get('orders/1')!.version, 1, 'versions are those of the new epoch');
    // Deltas continue from the new versions.
    feed({ type: 'delta', path: 'orders/1', version: 2, patch: [{ op: 'add', path: '/z', value: true }] });
    assert.deepEqual(sub.values.get('orders/1'), { a: 1, z: true });
  });

  it('a delta on a held topic before its fresh value is not applied', () => {
    const { sub } = subscribe('t');
    sync.onOpen();
    feed(value('t', 1, { a: 1 }), { type: 'subscribed', id: lastSubscribe(), selector: 't', topics: 1 });
    sync.onClose();
    sync.onOpen();
    feed({ type: 'delta', path: 't', version: 2, patch: [{ op: 'replace', path: '/a', value: 2 }] });
    assert.deepEqual(sub.values.get('t'), { a: 1 });
  });
});

describe('TopicSync: errors', () => {
  it('a rate-limited subscribe is sent again after the rate window', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const { sub } = subscribe('a/*');
      sync.onOpen();
      const first = lastSubscribe();
      feed({ type: 'error', code: 'RATE_LIMITED', message: 'slow down', id: first });
      assert.equal(sent.length, 1);
      assert.equal(sub.state, 'pending');
      mock.timers.tick(RATE_LIMIT_RETRY_MS);
      assert.equal(sent.length, 2);
      assert.notEqual(lastSubscribe(), first);
      assert.deepEqual(errors, []);
    } finally {
      mock.timers.reset();
    }
  });

  it('a refused subscription fails, reports the error and holds nothing', () => {
    const { sub, events } = subscribe('a/*');
    sync.onOpen();
    feed({ type: 'error', code: 'TOO_MANY_SUBSCRIPTIONS', message: 'unsubscribe some', id: lastSubscribe() });
    assert.equal(sub.state, 'failed');
    assert.deepEqual(events, [['error', 'TOO_MANY_SUBSCRIPTIONS']]);
    assert.equal(errors[0].code, 'TOO_MANY_SUBSCRIPTIONS');
    assert.equal(errors[0].selector, 'a/*');
    feed(value('a/1', 1, { x: 1 }));
    assert.equal(sub.values.size, 0);
    sync.onClose();
    sync.onOpen();
    assert.equal(sent.filter((m) => m.type === 'subscribe').length, 1, 'a failed subscription is not re-requested');
  });

  it('a throwing handler is reported and does not stop the others', () => {
    const bad = subscribe('a/*');
    bad.core.handlers.onValue = () => {
      throw new Error('boom');
    };
    const good = subscribe('a/**');
    sync.onOpen();
    feed(value('a/1', 1, { x: 1 }));
    assert.equal(errors[0].code, 'HANDLER_FAILED');
    assert.deepEqual(good.events, [['value', 'a/1', { x: 1 }, 1]]);
  });

  it('errors without a matching request go to the client', () => {
    sync.onOpen();
    feed({ type: 'error', code: 'BAD_JSON', message: 'not json' });
    assert.equal(errors[0].code, 'BAD_JSON');
  });
});

describe('TopicSync: handler calls of a frame', () => {
  it('are made once the whole frame is applied, in order, each with exactly its own arguments', () => {
    const calls: Array<{ name: string; args: unknown[]; held: number }> = [];
    const core: SubscriptionCore = {
      selector: parseSelector('orders/**'),
      handlers: {
        onValue: (...args: unknown[]) => calls.push({ name: 'onValue', args, held: core.paths.size }),
        onProgress: (...args: unknown[]) => calls.push({ name: 'onProgress', args, held: core.paths.size }),
        onRemoval: (...args: unknown[]) => calls.push({ name: 'onRemoval', args, held: core.paths.size }),
        onLive: (...args: unknown[]) => calls.push({ name: 'onLive', args, held: core.paths.size }),
      },
      state: 'pending',
      wireId: null,
      paths: new Set(),
      stale: null,
      retry: null,
    };
    sync.add(core);
    sync.onOpen();
    const id = lastSubscribe();
    sync.handleFrame([value('orders/1', 1, { a: 1 }), { type: 'loading', id, sent: 1, total: 3 }, value('orders/2', 2, { a: 2 })]);
    sync.handleFrame([value('orders/3', 1, { a: 3 }), { type: 'removal', path: 'orders/1', version: 2 }, { type: 'subscribed', id, selector: 'orders/**', topics: 3 }]);
    assert.deepEqual(calls, [
      { name: 'onValue', args: ['orders/1', { a: 1 }, 1], held: 2 },
      { name: 'onProgress', args: [1, 3], held: 2 },
      { name: 'onValue', args: ['orders/2', { a: 2 }, 2], held: 2 },
      { name: 'onValue', args: ['orders/3', { a: 3 }, 1], held: 2 },
      { name: 'onRemoval', args: ['orders/1'], held: 2 },
      { name: 'onLive', args: [], held: 2 },
    ]);
  });

  it('a value seen twice in a frame is reported as new once, and the topic held once', () => {
    const { sub, events } = subscribe('orders/**');
    sync.onOpen();
    sync.handleFrame([value('orders/1', 1, { a: 1 }), value('orders/1', 1, { a: 1 }), value('orders/1', 2, { a: 2 })]);
    assert.deepEqual(events, [['value', 'orders/1', { a: 1 }, 1], ['value', 'orders/1', { a: 2 }, 2]]);
    assert.equal(sub.values.size, 1);
    sync.handleFrame([{ type: 'removal', path: 'orders/1', version: 3 }]);
    assert.equal(sub.values.size, 0);
    assert.equal(sync.cache.size, 0, 'no reference left behind');
  });
});
