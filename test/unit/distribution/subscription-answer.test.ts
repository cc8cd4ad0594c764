/**
 * The answer to a subscribe, from the topic state alone: values of what matches and may be read,
 * and on resume only what changed since the versions the client holds — nothing, one composed
 * delta, the value past the history, or a removal — with the kind of resume it was.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { applyPatch } from '../../../client/json-patch.ts';
import { type AnswerRequest, accessTag, answerSubscribe } from '../../../services/distribution/subscription-answer.ts';
import type { JsonObject } from '../../../core/json.ts';
import { type Principal, SecurityManager } from '../../../services/security/security-manager.ts';
import { compileFilter } from '../../../core/filter.ts';
import { parseSelector } from '../../../core/selector.ts';
import { TopicStore } from '../../../services/topics/topic-store.ts';
import { type TopicUpdate } from '../../../core/topic.ts';

const security = SecurityManager.fromConfig(
  {
    jwt: { algorithms: ['HS256'], secret: 'x'.repeat(32) },
    roles: { analytics: { read: [{ pattern: 'orders/**', fields: { exclude: ['email'] } }] } },
  },
  { logger: pino({ level: 'silent' }), env: {} },
);
const analyst: Principal = { subject: 'a', tenant: 'acme', roles: ['analytics'], claims: { sub: 'a' }, expiresAt: null, anonymous: false };

function order(id: number, over: JsonObject = {}): TopicUpdate {
  return { path: `orders/${id}`, source: 't', tenant: 'acme', value: { id, status: 'new', email: `c${id}@x`, note: 'n'.repeat(80), ...over } };
}

function answer(store: TopicStore, over: Partial<AnswerRequest> = {}) {
  const sent: string[] = [];
  const held = new Map<string, number | null>();
  const kept: Array<[string, number]> = [];
  const result = answerSubscribe(
    { view: store, permissions: null, selector: parseSelector('orders/**'), filter: null, resume: undefined, ...over },
    {
      send: (wire) => sent.push(wire),
      sent: (path, h) => held.set(path, h === null ? null : h.version),
      holds: (topic, version) => kept.push([topic.path, version]),
    },
  );
  return { result, messages: sent.map((w) => JSON.parse(w) as Record<string, unknown>), held, kept };
}

describe('answerSubscribe', () => {
  it('without resume: the value of every matching topic, and how many match', () => {
    const store = new TopicStore();
    store.apply([order(1), order(2), { path: 'other/1', source: 't', value: { x: 1 } }]);
    const { result, messages, held } = answer(store);
    assert.deepEqual(result, { topics: 2, resumed: undefined });
    assert.deepEqual(messages.map((m) => [m.type, m.path, m.version]), [['value', 'orders/1', 1], ['value', 'orders/2', 1]]);
    assert.deepEqual([...held], [['orders/1', 1], ['orders/2', 1]]);
  });

  it('a filter answers only the topics whose value matches', () => {
    const store = new TopicStore();
    store.apply([order(1), order(2, { status: 'paid' })]);
    const { result, messages } = answer(store, { filter: compileFilter("status = 'paid'") });
    assert.equal(result.topics, 1);
    assert.deepEqual(messages.map((m) => m.path), ['orders/2']);
  });

  it('resume in the same epoch: nothing for current topics, one composed delta with base, removals for what is gone', () => {
    const store = new TopicStore();
    store.apply([order(1), order(2), order(3)]);
    const before = structuredClone(store.get('orders/2')!.value);
    store.apply([order(2, { status: 'paid' })]);
    store.apply([order(2, { status: 'shipped' })]);
    store.apply([{ path: 'orders/3', source: 't', value: null }]);
    const { result, messages, held } = answer(store, { resume: { epoch: store.epoch, versions: { 'orders/1': 1, 'orders/2': 1, 'orders/3': 1 } } });
    assert.deepEqual(result, { topics: 2, resumed: 'exact' });
    assert.equal(messages.length, 2, JSON.stringify(messages));
    const [delta, removal] = messages;
    assert.equal(delta.type, 'delta');
    assert.equal(delta.version, 3);
    assert.equal(delta.base, 1, 'composed from the version the client holds');
    const applied = applyPatch(before, delta.patch as never) as JsonObject;
    assert.deepEqual(applied, store.get('orders/2')!.value, 'the composed delta brings the client to the current value');
    assert.deepEqual(removal, { type: 'removal', path: 'orders/3', version: 2 });
    assert.equal(held.get('orders/3'), null);
  });

  it('resume past the history: the value, answered as partial', () => {
    const store = new TopicStore({ history: { perTopic: 1 } });
    store.apply([order(1)]);
    store.apply([order(1, { status: 'a' })]);
    store.apply([order(1, { status: 'b' })]);
    const { result, messages } = answer(store, { resume: { epoch: store.epoch, versions: { 'orders/1': 1 } } });
    assert.equal(result.resumed, 'partial');
    assert.deepEqual(messages.map((m) => [m.type, m.version]), [['value', 3]]);
  });

  it('from a position, a listed version the server cannot answer (ahead of it after a crash) is sent as the value and stays exact', () => {
    const store = new TopicStore();
    store.apply([order(1), order(2)]);
    const seq = store.position;
    // The client applied orders/1 up to v7 after its position; this server has v1 (v2..v7 were lost).
    const { result, messages } = answer(store, { resume: { epoch: store.epoch, seq, versions: { 'orders/1': 7 } } });
    assert.equal(result.resumed, 'exact', 'not partial: from a position that means whole, and the client would drop orders/2');
    assert.deepEqual(messages.map((m) => [m.type, m.path, m.version]), [['value', 'orders/1', 1]]);
  });

  it('a position lost with a crash (past the restored seq, before this run\'s first) is answered whole, though below the current seq', () => {
    const store = new TopicStore();
    store.restore({ epoch: 'e', seq: 40, versionFloor: 0 }, [{ path: 'orders/1', tenant: 'acme', source: 't', version: 4, value: { id: 1 }, seq: 30 }]);
    store.apply([order(2)]); // the replay after the restart
    assert.ok(store.position > 45);
    assert.equal(store.positionLost(40), false, 'the restored position itself is this state');
    assert.equal(store.positionLost(45), true, 'a position a client got before the crash, never made durable');
    assert.equal(store.positionLost(store.position), false);
    const lost = answer(store, { resume: { epoch: 'e', seq: 45 } });
    assert.equal(lost.result.resumed, 'partial', 'whole: every matching topic as its value');
    assert.deepEqual(lost.messages.map((m) => [m.type, m.path]), [['value', 'orders/1'], ['value', 'orders/2']]);
    const durable = answer(store, { resume: { epoch: 'e', seq: 40 } });
    assert.equal(durable.result.resumed, 'exact');
    assert.deepEqual(durable.messages.map((m) => [m.type, m.path]), [['value', 'orders/2']], 'only what changed since the durable position');
  });

  it('resume from another epoch: every value afresh', () => {
    const store = new TopicStore();
    store.apply([order(1)]);
    const { result, messages } = answer(store, { resume: { epoch: 'old-epoch', versions: { 'orders/1': 1, 'orders/9': 4 } } });
    assert.equal(result.resumed, 'fresh');
    assert.deepEqual(messages.map((m) => [m.type, m.path]), [['value', 'orders/1']]);
  });

  it('a held topic that no longer matches the filter is removed with reason filter', () => {
    const store = new TopicStore();
    store.apply([order(1, { status: 'paid' })]);
    store.apply([order(1, { status: 'new' })]);
    const { messages } = answer(store, { filter: compileFilter("status = 'paid'"), resume: { epoch: store.epoch, versions: { 'orders/1': 1 } } });
    assert.deepEqual(messages, [{ type: 'removal', path: 'orders/1', version: 2, reason: 'filter' }]);
  });

  it('through a field projection: hidden fields never sent; a change of hidden fields only keeps the held version', () => {
    const store = new TopicStore();
    store.apply([order(1), order(2)]);
    store.apply([order(1, { email: 'changed@x' })]);
    store.apply([order(2, { status: 'paid' })]);
    const permissions = security.permissionsFor(analyst);
    const fresh = answer(store, { permissions });
    for (const m of fresh.messages) assert.equal((m.value as JsonObject).email, undefined, 'email is hidden');
    const resumed = answer(store, { permissions, resume: { epoch: store.epoch, versions: { 'orders/1': 1, 'orders/2': 1 } } });
    assert.deepEqual(resumed.kept, [['orders/1', 1]], 'only a hidden field changed: the client keeps version 1');
    assert.deepEqual(resumed.messages.map((m) => [m.type, m.path]), [['delta', 'orders/2']]);
    assert.equal(JSON.stringify(resumed.messages).includes('@x'), false);
  });

  it('a listed topic of another tenant is answered exactly like a missing one', () => {
    const store = new TopicStore();
    store.apply([{ ...order(5), tenant: 'globex' }]);
    const permissions = security.permissionsFor(analyst);
    const { messages } = answer(store, { permissions, resume: { epoch: store.epoch, versions: { 'orders/5': 1, 'orders/6': 1 } } });
    assert.deepEqual(messages, [
      { type: 'removal', path: 'orders/5', version: 2 },
      { type: 'removal', path: 'orders/6', version: 2 },
    ]);
  });
});

describe('answerSubscribe: resuming from a position (resume.seq)', () => {
  it('sends only what changed after the position: a delta from the version then, a removal for what was removed', () => {
    const store = new TopicStore();
    store.apply([order(1), order(2), order(3)]);
    const at = store.position;
    store.apply([order(1, { status: 'paid' })]);
    store.apply([{ path: 'orders/3', source: 't', value: null }]);
    store.apply([order(4)]);
    const { result, messages, held } = answer(store, { resume: { epoch: store.epoch, seq: at } });
    assert.deepEqual(result, { topics: 3, resumed: 'exact' });
    assert.deepEqual(messages.map((m) => [m.type, m.path, m.type === 'delta' ? (m.base ?? (m.version as number) - 1) : null]), [['delta', 'orders/1', 1], ['value', 'orders/4', null], ['removal', 'orders/3', null]]);
    assert.equal(held.get('orders/2'), 1, 'unchanged: the client keeps its version');
  });

  it('a topic that left the filter after the position gets a removal; one that did not change gets nothing', () => {
    const store = new TopicStore();
    store.apply([order(1), order(2), order(3, { status: 'paid' })]);
    const at = store.position;
    store.apply([order(1, { status: 'paid' })]);
    const { messages } = answer(store, { filter: compileFilter("status = 'new'"), resume: { epoch: store.epoch, seq: at } });
    assert.deepEqual(messages.map((m) => [m.type, m.path, m.reason ?? null]), [['removal', 'orders/1', 'filter']]);
  });

  it('past the removal log, ahead of the server, or under other permissions: every topic as its value, partial', () => {
    const store = new TopicStore({ removalLog: 1 });
    store.apply([order(1), order(2), order(3)]);
    const at = store.position;
    store.apply([{ path: 'orders/3', source: 't', value: null }]);
    store.apply([{ path: 'orders/2', source: 't', value: null }]);
    for (const resume of [{ epoch: store.epoch, seq: at }, { epoch: store.epoch, seq: store.position + 5 }, { epoch: store.epoch, seq: store.position, access: 'other' }]) {
      const { result, messages } = answer(store, { resume });
      assert.deepEqual(result, { topics: 1, resumed: 'partial' });
      assert.deepEqual(messages.map((m) => [m.type, m.path]), [['value', 'orders/1']]);
    }
  });

  it('listed versions and a position together: listed topics from their version, the others from the position', () => {
    const store = new TopicStore();
    store.apply([order(1), order(2)]);
    const at = store.position;
    store.apply([order(1, { status: 'paid' })]);
    store.apply([order(1, { status: 'sent' })]);
    const { messages, result } = answer(store, { resume: { epoch: store.epoch, seq: at, versions: { 'orders/1': 2 } } });
    assert.equal(result.resumed, 'exact');
    assert.deepEqual(messages.map((m) => [m.type, m.path, m.base ?? (m.version as number) - 1]), [['delta', 'orders/1', 2]]);
  });

  it('with security: a removed topic of another tenant is never named', () => {
    const store = new TopicStore();
    const principal = security.permissionsFor(analyst);
    store.apply([order(1), { path: 'orders/9', source: 't', tenant: 'other', value: { id: 9 } }]);
    const at = store.position;
    store.apply([{ path: 'orders/9', source: 't', value: null }, { path: 'orders/1', source: 't', value: null }]);
    const { messages } = answer(store, { permissions: principal, resume: { epoch: store.epoch, seq: at, access: accessTag(principal) } });
    assert.deepEqual(messages.map((m) => [m.type, m.path]), [['removal', 'orders/1']]);
  });
});

describe('answerSubscribe in pages, through permissions', () => {
  it('later pages are projected too, and a topic that became unreadable while it waited is not sent', () => {
    const store = new TopicStore();
    store.apply(Array.from({ length: 20 }, (_, i) => order(i + 1)));
    const permissions = security.permissionsFor(analyst);
    const sent: Array<Record<string, unknown>> = [];
    const sink = { send: (w: string) => sent.push(JSON.parse(w)), sent: () => {}, holds: () => {} };
    const answer = answerSubscribe({ view: store, permissions, selector: parseSelector('orders/**'), filter: null, resume: undefined, pageChars: 300 }, sink);
    const pages = answer.rest!;
    assert.ok(pages && sent.length < 20, 'more than one page');
    assert.equal(pages.has('orders/19'), true, 'waits for its page');
    // While it waits, orders/19 passes to another tenant: through these permissions it is gone.
    store.apply([{ path: 'orders/19', source: 't', value: null }]);
    store.apply([{ ...order(19), tenant: 'globex' }]);
    while (!pages.done) pages.next(store, permissions, 300);
    assert.deepEqual(sent.map((m) => m.type), Array(19).fill('value'));
    assert.equal(new Set(sent.map((m) => m.path)).size, 19, 'every readable order once');
    assert.equal(sent.some((m) => m.path === 'orders/19'), false, 'another tenant\'s topic is never sent');
    assert.equal(JSON.stringify(sent).includes('@x'), false, 'email is hidden on every page');
  });
});
