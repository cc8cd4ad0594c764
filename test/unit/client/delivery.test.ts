/**
 * The SDK's side of delivery: resume requests and their answers, filters routing values to
 * subscriptions, deltas with a base, a frame applied before handlers run, tokens.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { TidewireClient } from '../../../client/client.ts';
import { TidewireClientError } from '../../../client/errors.ts';
import { planResume } from '../../../client/resume.ts';
import { type ResumeInfo, Subscription, type SubscriptionCore } from '../../../client/subscription.ts';
import { refreshDelay, tokenTimes, withAccessToken } from '../../../client/token.ts';
import { TopicSync } from '../../../client/topic-sync.ts';
import { filters } from '../../../client/filter.ts';
import type { ClientMessage, ServerMessage, SubscribeMessage } from '../../../core/messages.ts';
import type { JsonObject } from '../../../core/json.ts';
import { compileFilter } from '../../../core/filter.ts';
import { parseSelector } from '../../../core/selector.ts';
import { FakeSocket, tick } from '../../support/fake-socket.ts';

type Event = ['value', string, JsonObject, number] | ['removal', string] | ['live'] | ['resume', string] | ['values', number];

let sent: ClientMessage[];
let sync: TopicSync;
let resumes: ResumeInfo[];

beforeEach(() => {
  sent = [];
  resumes = [];
  sync = new TopicSync({ send: (m) => sent.push(m), error: (e) => assert.fail(e.message), resumed: (i) => resumes.push(i) });
});

function subscribe(selector: string, filter?: string) {
  const events: Event[] = [];
  let sub!: Subscription;
  const core: SubscriptionCore = {
    selector: parseSelector(selector),
    handlers: {
      onValue: (p, v, ver) => events.push(['value', p, v, ver], ['values', sub.values.size]),
      onRemoval: (p) => events.push(['removal', p]),
      onLive: () => events.push(['live']),
      onResume: (i) => events.push(['resume', i.resumed]),
    },
    state: 'pending', wireId: null, paths: new Set(), stale: null, retry: null, filter: filter ? compileFilter(filter) : null,
  };
  sync.add(core);
  sub = new Subscription(core, sync.cache, (c) => sync.remove(c));
  return { sub, core, events };
}

const lastSubscribe = (): SubscribeMessage => sent.filter((m) => m.type === 'subscribe').at(-1) as SubscribeMessage;
const value = (path: string, version: number, v: JsonObject): ServerMessage => ({ type: 'value', path, version, value: v });
const subscribed = (extra: Partial<{ topics: number; resumed: 'exact' | 'partial' | 'fresh' }> = {}): ServerMessage => ({
  type: 'subscribed', id: lastSubscribe().id, selector: lastSubscribe().selector, topics: 0, ...extra,
});

describe('resume', () => {
  it('a reconnect to the same epoch lists the held versions; unchanged topics stay, changed ones arrive, gone ones are removed', () => {
    const { sub, events } = subscribe('o/*');
    sync.onOpen({ epoch: 'e1', maxPayloadBytes: 65536 });
    assert.equal(lastSubscribe().resume, undefined, 'nothing held yet');
    sync.handleFrame([value('o/1', 3, { a: 1 }), value('o/2', 5, { b: 1 }), value('o/3', 1, { c: 1 }), subscribed({ topics: 3 })]);
    events.length = 0;
    sync.onClose();
    sync.onOpen({ epoch: 'e1', maxPayloadBytes: 65536 });
    assert.deepEqual(lastSubscribe().resume, { epoch: 'e1', versions: { 'o/1': 3, 'o/2': 5, 'o/3': 1 } });
    sync.handleFrame([
      { type: 'delta', path: 'o/2', version: 9, base: 5, patch: [{ op: 'replace', path: '/b', value: 2 }] },
      { type: 'removal', path: 'o/3', version: 2 },
      subscribed({ topics: 2, resumed: 'exact' }),
    ]);
    assert.deepEqual(events, [['value', 'o/2', { b: 2 }, 9], ['values', 2], ['removal', 'o/3'], ['resume', 'exact'], ['live']]);
    assert.deepEqual(Object.fromEntries(sub.values), { 'o/1': { a: 1 }, 'o/2': { b: 2 } });
    assert.equal(sub.resumed, 'exact');
    assert.deepEqual(resumes, [{ selector: 'o/*', resumed: 'exact', epochChanged: false, topics: 2 }]);
  });

  it('a new epoch sends no resume, reports fresh, and does not report unchanged values again', () => {
    const { events } = subscribe('o/*');
    sync.onOpen({ epoch: 'e1' });
    sync.handleFrame([value('o/1', 3, { a: 1 }), value('o/2', 3, { b: 1 }), subscribed({ topics: 2 })]);
    events.length = 0;
    sync.onClose();
    sync.onOpen({ epoch: 'e2' });
    assert.equal(lastSubscribe().resume, undefined);
    sync.handleFrame([value('o/1', 1, { a: 1 }), value('o/2', 1, { b: 2 }), subscribed({ topics: 2 })]);
    assert.deepEqual(events, [['value', 'o/2', { b: 2 }, 1], ['values', 2], ['resume', 'fresh'], ['live']]);
    assert.equal(resumes[0].epochChanged, true);
  });

  it('a resume answered in pages is applied as one frame at its end: the values never mix the old and the new state', () => {
    const { sub, events } = subscribe('o/*');
    sync.onOpen({ epoch: 'e1' });
    sync.handleFrame([value('o/1', 3, { a: 1 }), value('o/2', 3, { b: 1 }), subscribed({ topics: 2 })]);
    events.length = 0;
    sync.onClose();
    sync.onOpen({ epoch: 'e1' });
    const id = lastSubscribe().id;
    sync.handleFrame([value('o/1', 4, { a: 2 }), { type: 'loading', id, sent: 1, total: 2 }]);
    assert.deepEqual(events, [], 'nothing applied before the answer is whole');
    assert.deepEqual(Object.fromEntries(sub.values), { 'o/1': { a: 1 }, 'o/2': { b: 1 } }, 'the old state, whole');
    assert.deepEqual(sub.progress, { sent: 1, total: 2 }, 'progress is shown at once');
    sync.handleFrame([{ type: 'delta', path: 'o/1', version: 5, patch: [{ op: 'replace', path: '/a', value: 3 }] }, value('o/2', 4, { b: 2 })]);
    assert.deepEqual(events, [], 'a change during the load is held too');
    sync.handleFrame([subscribed({ topics: 2, resumed: 'partial' })]);
    assert.deepEqual(events, [['value', 'o/1', { a: 2 }, 4], ['values', 2], ['value', 'o/1', { a: 3 }, 5], ['values', 2], ['value', 'o/2', { b: 2 }, 4], ['values', 2], ['resume', 'partial'], ['live']]);
    assert.deepEqual(Object.fromEntries(sub.values), { 'o/1': { a: 3 }, 'o/2': { b: 2 } });
  });

  it('a connection lost during a held resume drops what was held: the values stay the old state, resumed again', () => {
    const { sub, events } = subscribe('o/*');
    sync.onOpen({ epoch: 'e1' });
    sync.handleFrame([value('o/1', 3, { a: 1 }), subscribed({ topics: 1 })]);
    events.length = 0;
    sync.onClose();
    sync.onOpen({ epoch: 'e1' });
    sync.handleFrame([value('o/1', 4, { a: 2 })]);
    sync.onClose();
    assert.deepEqual(Object.fromEntries(sub.values), { 'o/1': { a: 1 } });
    sync.onOpen({ epoch: 'e1' });
    assert.deepEqual(lastSubscribe().resume, { epoch: 'e1', versions: { 'o/1': 3 } });
    sync.handleFrame([value('o/1', 4, { a: 2 }), subscribed({ topics: 1, resumed: 'exact' })]);
    assert.deepEqual(events, [['value', 'o/1', { a: 2 }, 4], ['values', 1], ['resume', 'exact'], ['live']]);
  });

  it('a delta whose base is not the held version is never applied', () => {
    const { sub } = subscribe('o/*');
    sync.onOpen({ epoch: 'e1' });
    sync.handleFrame([value('o/1', 3, { a: 1 }), subscribed({ topics: 1 })]);
    sent.length = 0;
    sync.handleFrame([{ type: 'delta', path: 'o/1', version: 9, base: 4, patch: [{ op: 'replace', path: '/a', value: 9 }] }]);
    assert.deepEqual(sub.values.get('o/1'), { a: 1 });
    assert.deepEqual(sent.map((m) => m.type), ['unsubscribe', 'subscribe'], 'fetched again');
    assert.deepEqual(lastSubscribe().resume, { epoch: 'e1', versions: {} }, 'the stale version is not listed');
  });

  it('lists only what fits the server\'s maxPayloadBytes and then reports partial', () => {
    const { sub, events } = subscribe('o/*');
    sync.onOpen({ epoch: 'e1', maxPayloadBytes: 400 });
    const many = Array.from({ length: 50 }, (_, i) => value(`o/${i}`, 7, { i }));
    sync.handleFrame([...many, subscribed({ topics: 50 })]);
    events.length = 0;
    sync.onClose();
    sync.onOpen({ epoch: 'e1', maxPayloadBytes: 400 });
    const msg = lastSubscribe();
    assert.ok(JSON.stringify(msg).length <= 400, `${JSON.stringify(msg).length} bytes`);
    const listed = Object.keys(msg.resume!.versions!);
    assert.ok(listed.length > 5 && listed.length < 50, String(listed.length));
    // The server sends the unlisted ones as values (unchanged: not reported again).
    const unlisted = many.filter((m) => !listed.includes((m as { path: string }).path));
    sync.handleFrame([...unlisted, subscribed({ topics: 50, resumed: 'exact' })]);
    assert.deepEqual(events, [['resume', 'partial'], ['live']]);
    assert.equal(sub.values.size, 50);
  });

  it('planResume skips stale versions and defines "__proto__" as a plain key', () => {
    const cache = new Map([['__proto__', { value: {}, version: 2, refs: 1 }], ['a', { value: {}, version: -1, refs: 1 }]]);
    const plan = planResume('e', ['__proto__', 'a'], cache, 50, 1000);
    assert.deepEqual([...plan.listed], ['__proto__']);
    assert.equal(JSON.stringify(plan.resume), '{"epoch":"e","versions":{"__proto__":2}}');
  });
});

describe('filters in the SDK', () => {
  it('values are routed to the subscriptions whose filter they match; leaving one is a removal for it only', () => {
    const open = subscribe('o/*', "status = 'open'");
    const all = subscribe('o/*');
    sync.onOpen({ epoch: 'e1' });
    const [a, b] = sent as SubscribeMessage[];
    assert.equal(a.filter, "status = 'open'");
    assert.equal(b.filter, undefined);
    sync.handleFrame([value('o/1', 1, { status: 'open' }), { type: 'subscribed', id: a.id, selector: 'o/*', topics: 1 }]);
    sync.handleFrame([value('o/1', 1, { status: 'open' }), value('o/2', 1, { status: 'paid' }), { type: 'subscribed', id: b.id, selector: 'o/*', topics: 2 }]);
    assert.deepEqual([...open.sub.values.keys()], ['o/1']);
    assert.deepEqual([...all.sub.values.keys()].sort(), ['o/1', 'o/2']);
    sync.handleFrame([{ type: 'delta', path: 'o/1', version: 2, patch: [{ op: 'replace', path: '/status', value: 'paid' }] }]);
    assert.deepEqual(open.events.at(-1), ['removal', 'o/1']);
    assert.equal(open.sub.values.size, 0);
    assert.deepEqual(all.sub.values.get('o/1'), { status: 'paid' });
    sync.handleFrame([{ type: 'delta', path: 'o/2', version: 2, patch: [{ op: 'replace', path: '/status', value: 'open' }] }]);
    assert.deepEqual(open.events.slice(-2), [['value', 'o/2', { status: 'open' }, 2], ['values', 1]]);
  });

  it('a removal with reason filter drops the topic', () => {
    const open = subscribe('o/*', "status = 'open'");
    sync.onOpen({ epoch: 'e1' });
    sync.handleFrame([value('o/1', 1, { status: 'open' }), subscribed({ topics: 1 })]);
    sync.handleFrame([{ type: 'removal', path: 'o/1', version: 2, reason: 'filter' }]);
    assert.equal(open.sub.values.size, 0);
    assert.equal(sync.cache.size, 0);
  });
});

describe('a frame is applied before handlers run', () => {
  it('every handler call sees the whole frame applied (a transfer never shows half done)', () => {
    const seen: Array<[string, JsonObject | undefined, JsonObject | undefined]> = [];
    const core: SubscriptionCore = {
      selector: parseSelector('acct/*'), state: 'pending', wireId: null, paths: new Set(), stale: null, retry: null,
      handlers: { onValue: (p) => seen.push([p, sub.values.get('acct/a'), sub.values.get('acct/b')]) },
    };
    sync.add(core);
    const sub = new Subscription(core, sync.cache, (c) => sync.remove(c));
    sync.onOpen({ epoch: 'e1' });
    sync.handleFrame([value('acct/a', 1, { bal: 100 }), value('acct/b', 1, { bal: 0 }), subscribed({ topics: 2 })]);
    seen.length = 0;
    sync.handleFrame([
      { type: 'delta', path: 'acct/a', version: 2, patch: [{ op: 'replace', path: '/bal', value: 60 }] },
      { type: 'delta', path: 'acct/b', version: 2, patch: [{ op: 'replace', path: '/bal', value: 40 }] },
    ]);
    assert.deepEqual(seen, [
      ['acct/a', { bal: 60 }, { bal: 40 }],
      ['acct/b', { bal: 60 }, { bal: 40 }],
    ]);
  });
});

describe('tokens', () => {
  const jwt = (payload: object): string => `e30.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.sig`;

  it('reads exp and iat, and refreshes at 80 % of the lifetime', () => {
    assert.deepEqual(tokenTimes(jwt({ exp: 2000, iat: 1000 })), { exp: 2000, iat: 1000 });
    assert.deepEqual(tokenTimes('garbage'), { exp: null, iat: null });
    assert.equal(refreshDelay(jwt({ exp: 2000, iat: 1000 }), 1_000_000), 800_000);
    assert.equal(refreshDelay(jwt({ exp: 2000, iat: 1000 }), 1_500_000), 300_000);
    assert.equal(refreshDelay(jwt({ exp: 2000 }), 1_900_000), 80_000, 'without iat: 80 % of what is left');
    assert.equal(refreshDelay(jwt({}), 0), null, 'no expiry: no refresh');
    assert.equal(refreshDelay(jwt({ exp: 1 }), 5000), 1000, 'never sooner than a second');
    assert.equal(withAccessToken('ws://h/ws?access_token=old&x=1', 'a.b+c'), 'ws://h/ws?access_token=a.b%2Bc&x=1');
  });

  afterEach(() => {
    FakeSocket.all = [];
    mock.timers.reset();
  });

  it('connects with ?access_token=, refreshes with auth before expiry, fetches a fresh token after 4001', async () => {
    const reasons: string[] = [];
    let n = 0;
    const now = Math.floor(Date.now() / 1000);
    const client = new TidewireClient({
      url: 'ws://x/ws',
      WebSocket: FakeSocket,
      reconnect: { initialMs: 1, maxMs: 2 },
      token: ({ reason }) => {
        reasons.push(reason);
        return jwt({ sub: 'u', n: ++n, iat: now, exp: now + 2 }); // refreshed after ~1.6 s
      },
    });
    void client.connect();
    await tick();
    await tick();
    const ws1 = FakeSocket.all[0];
    assert.match(ws1.url, /^ws:\/\/x\/ws\?access_token=e30\./);
    ws1.accept();
    await new Promise((r) => setTimeout(r, 1900));
    const auth = ws1.sent.find((m) => m.type === 'auth');
    assert.ok(auth, 'an auth message before expiry');
    assert.equal(tokenTimes(auth.token as string).exp, now + 2);
    assert.notEqual(auth.token, new URL(ws1.url).searchParams.get('access_token'), 'a fresh token');
    ws1.push({ type: 'authenticated', id: auth.id, exp: now + 2 });
    // The server closes with 4001: the next connection asks for a token again, saying why.
    ws1.readyState = 3;
    ws1.onclose?.({ code: 4001, reason: 'token expired' });
    for (let i = 0; i < 50 && FakeSocket.all.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(FakeSocket.all.length, 2);
    assert.deepEqual(reasons, ['connect', 'refresh', 'expired']);
    client.close();
  });

  it('a filter needs the filter language, kept out of the core entry: without it, a clear error saying what to import', () => {
    const c = new TidewireClient({ url: 'ws://x/ws', WebSocket: FakeSocket });
    assert.throws(() => c.subscribe('o/*', {}, { filter: 'a = 1' }), (e: unknown) => e instanceof TidewireClientError && e.code === 'FILTER_UNAVAILABLE' && e.message.includes("import { filters } from '@tidewire/client/filter'"));
    assert.equal(c.subscribe('o/*', {}).filter, undefined, 'no filter needs no language');
  });

  it('refuses a bad filter or maxRate synchronously', () => {
    const c = new TidewireClient({ url: 'ws://x/ws', WebSocket: FakeSocket, filters });
    assert.throws(() => c.subscribe('o/*', {}, { filter: 'a = ' }), (e: unknown) => e instanceof TidewireClientError && e.code === 'FILTER_INVALID' && /at 5; expected a value/.test(e.message));
    assert.throws(() => c.subscribe('o/*', {}, { maxRate: 0 }), (e: unknown) => e instanceof TidewireClientError && e.code === 'INVALID_MESSAGE');
    assert.throws(() => c.subscribe('o/*', {}, { maxRate: 0.001 }), (e: unknown) => e instanceof TidewireClientError && e.code === 'INVALID_MESSAGE', 'below the server minimum of 0.01: refused here, not by the server');
    assert.equal(c.subscribe('o/*', {}, { filter: 'a = 1', maxRate: 2 }).filter, 'a = 1');
  });
});
