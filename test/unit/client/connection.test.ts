import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import { TidewireClient } from '../../../client/client.ts';
import { type ConnectionEvent, type ConnectionState, nextState } from '../../../client/connection-state.ts';
import { TidewireClientError } from '../../../client/errors.ts';
import { FrameError, parseFrame } from '../../../client/frames.ts';
import { Outbox } from '../../../client/outbox.ts';
import { FakeSocket, tick } from '../../support/fake-socket.ts';

describe('connection state machine', () => {
  const table: Array<[ConnectionState, ConnectionEvent, ConnectionState]> = [
    ['closed', 'connect', 'connecting'],
    ['closed', 'opened', 'closed'],
    ['closed', 'lost', 'closed'],
    ['closed', 'close', 'closed'],
    ['connecting', 'opened', 'open'],
    ['connecting', 'lost', 'reconnecting'],
    ['connecting', 'close', 'closed'],
    ['connecting', 'connect', 'connecting'],
    ['open', 'lost', 'reconnecting'],
    ['open', 'close', 'closed'],
    ['open', 'connect', 'open'],
    ['open', 'opened', 'open'],
    ['reconnecting', 'opened', 'open'],
    ['reconnecting', 'lost', 'reconnecting'],
    ['reconnecting', 'close', 'closed'],
    ['reconnecting', 'connect', 'reconnecting'],
  ];
  for (const [from, event, to] of table) {
    it(`${from} --${event}--> ${to}`, () => assert.equal(nextState(from, event), to));
  }
});

describe('Outbox', () => {
  afterEach(() => mock.timers.reset());

  it('sends at most perSecond messages per second, the rest when the window turns', () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const out: string[] = [];
    const box = new Outbox(3, () => Date.now());
    box.attach({ send: (t) => out.push(t) });
    for (let i = 0; i < 7; i++) box.send({ i });
    assert.equal(out.length, 3);
    assert.equal(box.pending, 4);
    mock.timers.tick(999);
    assert.equal(out.length, 3);
    mock.timers.tick(1);
    assert.equal(out.length, 6);
    mock.timers.tick(1000);
    assert.deepEqual(out.map((t) => JSON.parse(t).i), [0, 1, 2, 3, 4, 5, 6]);
  });

  it('holds messages until attached and drops them when detached', () => {
    const out: string[] = [];
    const box = new Outbox(10);
    box.send({ a: 1 });
    assert.equal(out.length, 0);
    box.attach({ send: (t) => out.push(t) });
    assert.deepEqual(out, ['{"a":1}']);
    box.detach();
    box.send({ b: 1 });
    assert.equal(out.length, 1);
  });
});

describe('parseFrame', () => {
  it('reads a JSON array of messages and skips unknown types', () => {
    assert.deepEqual(parseFrame('[{"type":"pong"},{"type":"future-thing","x":1},{"type":"removal","path":"a","version":2}]'), [
      { type: 'pong' },
      { type: 'removal', path: 'a', version: 2 },
    ]);
  });

  it('refuses frames it cannot trust', () => {
    for (const bad of [new Uint8Array(2), 'nope', '{"type":"pong"}', '[1]', '[{"type":"value","path":"a","version":1}]', '[{"type":"delta","path":"a","version":2,"patch":{}}]']) {
      assert.throws(() => parseFrame(bad), FrameError, String(bad));
    }
  });
});


describe('TidewireClient (scripted socket)', () => {
  afterEach(() => {
    FakeSocket.all = [];
  });

  it('refuses a URL that is not ws:// or wss://', () => {
    assert.throws(() => new TidewireClient({ url: 'http://x/ws', WebSocket: FakeSocket }), TypeError);
    assert.throws(() => new TidewireClient({ url: 'not a url', WebSocket: FakeSocket }), TypeError);
  });

  it('refuses an invalid selector synchronously', () => {
    const c = new TidewireClient({ url: 'ws://x/ws', WebSocket: FakeSocket });
    for (const s of ['../x', 'a//b', '**/x', 'a'.repeat(2000)]) {
      assert.throws(() => c.subscribe(s), (e: unknown) => e instanceof TidewireClientError && e.code === 'INVALID_SELECTOR', s);
    }
  });

  it('connects, subscribes, reconnects with backoff and re-subscribes; close() stops it all', async () => {
    const states: string[] = [];
    const c = new TidewireClient({ url: 'ws://x/ws', WebSocket: FakeSocket, reconnect: { initialMs: 1, maxMs: 2 } });
    c.onState((s) => states.push(s));
    const sub = c.subscribe('orders/**');
    const connected = c.connect();
    await tick();
    const ws1 = FakeSocket.all[0];
    assert.equal(ws1.url, 'ws://x/ws');
    ws1.accept('e1');
    await connected;
    assert.equal(c.epoch, 'e1');
    assert.deepEqual(ws1.sent, [{ type: 'subscribe', id: ws1.sent[0].id, selector: 'orders/**', positions: true }]);
    ws1.push({ type: 'value', path: 'orders/1', version: 1, value: { a: 1 } }, { type: 'subscribed', id: ws1.sent[0].id, selector: 'orders/**', topics: 1 });
    assert.equal(sub.live, true);

    ws1.drop();
    assert.equal(c.state, 'reconnecting');
    assert.equal(sub.live, false);
    await new Promise((r) => setTimeout(r, 20));
    const ws2 = FakeSocket.all[1];
    assert.ok(ws2, 'a new socket after the backoff');
    ws2.accept('e2');
    assert.equal(c.epoch, 'e2');
    assert.equal(ws2.sent[0].type, 'subscribe');
    ws2.push({ type: 'subscribed', id: ws2.sent[0].id, selector: 'orders/**', topics: 0 });
    assert.equal(sub.values.size, 0, 'the topic that did not come back is gone');

    c.close();
    assert.equal(ws2.closed, 1000);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(FakeSocket.all.length, 2, 'no reconnect after close()');
    assert.deepEqual(states, ['connecting', 'open', 'reconnecting', 'open', 'closed']);
  });

  it('keeps backing off while connections drop right after opening; starts over after a stable one', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    // Full jitter: each delay is random in [0, step]; at 0.5 it is half the step.
    mock.method(Math, 'random', () => 0.5);
    try {
      const c = new TidewireClient({ url: 'ws://x/ws', WebSocket: FakeSocket, reconnect: { initialMs: 100, maxMs: 10_000 } });
      void c.connect();
      await tick();
      /** Drops the newest socket (after `openFor` ms open) and returns how long until the next one. */
      const dropAndTime = async (openFor: number): Promise<number> => {
        const ws = FakeSocket.all.at(-1)!;
        ws.accept();
        mock.timers.tick(openFor);
        ws.drop();
        const count = FakeSocket.all.length;
        let waited = 0;
        while (FakeSocket.all.length === count) {
          mock.timers.tick(10);
          waited += 10;
          await tick();
          assert.ok(waited < 20_000);
        }
        return waited;
      };
      const d1 = await dropAndTime(0);
      const d2 = await dropAndTime(0);
      const d3 = await dropAndTime(0);
      assert.ok(d1 >= 50 && d1 <= 110, `first delay ${d1}`);
      assert.ok(d2 >= 100 && d2 <= 210, `second delay ${d2}`);
      assert.ok(d3 >= 200 && d3 <= 410, `third delay ${d3}`);
      const afterStable = await dropAndTime(5_000);
      assert.ok(afterStable <= 110, `after a stable connection ${afterStable}`);
      c.close();
    } finally {
      mock.timers.reset();
      mock.restoreAll();
    }
  });

  it('a server that closes every session with 4008 gets reconnects after growing, jittered delays, never a fixed 250 ms', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const randoms = [0.9, 0.2, 0.7, 0.4, 0.95, 0.1, 0.6, 0.8, 0.3, 0.5];
    let next = 0;
    mock.method(Math, 'random', () => randoms[next++ % randoms.length]);
    try {
      const c = new TidewireClient({ url: 'ws://x/ws', WebSocket: FakeSocket });
      void c.connect();
      await tick();
      const delays: number[] = [];
      for (let i = 0; i < 8; i++) {
        const ws = FakeSocket.all.at(-1)!;
        ws.accept();
        ws.drop(4008);
        const count = FakeSocket.all.length;
        let waited = 0;
        while (FakeSocket.all.length === count) {
          mock.timers.tick(1);
          waited += 1;
          await tick();
          assert.ok(waited <= 10_000, 'never waits past maxMs (10 s)');
        }
        delays.push(waited);
      }
      // Default step: 250 ms doubling to 10 s; the delay is the step times the random draw.
      const steps = [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000];
      assert.deepEqual(delays, steps.map((step, i) => Math.max(1, Math.round(randoms[i] * step))));
      assert.ok(delays[7] > 10 * 250 && delays[5] > delays[1], `grows: ${delays.join(', ')}`);
      c.close();
    } finally {
      mock.timers.reset();
      mock.restoreAll();
    }
  });

  it('onDisconnect says why each connection was closed (code, reason) and how long until the next attempt, growing', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    mock.method(Math, 'random', () => 0.999);
    try {
      const c = new TidewireClient({ url: 'ws://x/ws', WebSocket: FakeSocket });
      const seen: Array<{ code: number | null; reason: string; attempt: number; retryInMs: number }> = [];
      c.onDisconnect((info) => seen.push({ ...info }));
      void c.connect();
      await tick();
      for (let i = 0; i < 4; i++) {
        const ws = FakeSocket.all.at(-1)!;
        ws.accept();
        ws.readyState = 3;
        ws.onclose?.({ code: 4008, reason: 'send queue full: read faster or subscribe to less' });
        const count = FakeSocket.all.length;
        while (FakeSocket.all.length === count) {
          mock.timers.tick(50);
          await tick();
        }
      }
      assert.deepEqual(seen.map((d) => [d.code, d.reason, d.attempt]), [1, 2, 3, 4].map((n) => [4008, 'send queue full: read faster or subscribe to less', n]));
      assert.deepEqual(seen.map((d) => d.retryInMs), [250, 500, 1000, 2000].map((step) => Math.round(0.999 * step)));
      c.close();
      assert.equal(seen.length, 4, 'close() is not a disconnect');
    } finally {
      mock.timers.reset();
      mock.restoreAll();
    }
  });

  it('reports unreadable frames and keeps going', async () => {
    const errors: string[] = [];
    const c = new TidewireClient({ url: 'ws://x/ws', WebSocket: FakeSocket });
    c.onError((e) => errors.push(e.code));
    void c.connect();
    await tick();
    const ws = FakeSocket.all[0];
    ws.accept();
    ws.onmessage?.({ data: 'garbage' });
    ws.push({ type: 'error', code: 'BAD_JSON', message: 'x' });
    assert.deepEqual(errors, ['PROTOCOL_ERROR', 'BAD_JSON']);
    assert.equal(c.state, 'open');
    c.close();
  });

  it('connect() rejects if close() comes first', async () => {
    const c = new TidewireClient({ url: 'ws://x/ws', WebSocket: FakeSocket });
    const p = c.connect();
    c.close();
    await assert.rejects(p, TidewireClientError);
  });
});
