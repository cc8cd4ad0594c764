/**
 * The client SDK against the real server, including a server restart on the same port with a
 * new store (new epoch): the SDK must end up with exactly the new store's values, without
 * re-emitting values that did not change and with removals for topics that vanished.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { TidewireClient, type ConnectionState } from '../../client/index.ts';
import type { ServerConfig } from '../../services/config/config.ts';
import { DistributionServer } from '../../services/distribution/index.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import type { JsonObject } from '../../core/json.ts';
import { Pipeline } from '../../services/pipeline.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import { type TopicUpdate } from '../../core/topic.ts';

const CONFIG: ServerConfig = {
  host: '127.0.0.1',
  port: 0,
  maxPayloadBytes: 65536,
  sendQueueBytes: 1 << 20,
  flushIntervalMs: 2,
  maxSubscriptionsPerSession: 10,
  maxMessagesPerSecond: 100,
};

async function start(port: number, initial: TopicUpdate[]) {
  const store = new TopicStore();
  const handoff = new InProcessHandoff(store);
  const pipeline = new Pipeline(store, handoff);
  await pipeline.apply(initial);
  const server = new DistributionServer(handoff, { ...CONFIG, port }, { logger: pino({ level: 'silent' }) });
  return { store, pipeline, server, port: (await server.listen()).port };
}

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const row = (path: string, value: JsonObject): TopicUpdate => ({ path, source: 'orders', value });
type Event = ['value', string, JsonObject, number] | ['removal', string] | ['live'];

describe('TidewireClient against a real server', () => {
  it('values, then deltas; two overlapping subscriptions share one copy of each topic', async () => {
    const s = await start(0, [row('orders/1/1', { n: 1, pad: 'x'.repeat(40) }), row('orders/2/1', { n: 2, pad: 'x'.repeat(40) })]);
    const client = new TidewireClient({ url: `ws://127.0.0.1:${s.port}/ws` }); // no WebSocket given: loads `ws` in Node 20
    const all: Event[] = [];
    const a = client.subscribe('orders/**', { onValue: (p, v, ver) => all.push(['value', p, v, ver]), onLive: () => all.push(['live']) });
    const b = client.subscribe('orders/1/*');
    await client.connect();
    await until(() => a.live && b.live, 'both live');
    assert.deepEqual([...a.values.keys()].sort(), ['orders/1/1', 'orders/2/1']);
    assert.deepEqual([...b.values.keys()], ['orders/1/1']);
    assert.equal(a.values.get('orders/1/1'), b.values.get('orders/1/1'), 'one stored copy');
    await s.pipeline.apply([row('orders/1/1', { n: 10, pad: 'x'.repeat(40) })]);
    await until(() => b.values.get('orders/1/1')?.n === 10, 'the delta');
    assert.deepEqual(all.at(-1), ['value', 'orders/1/1', { n: 10, pad: 'x'.repeat(40) }, 2]);
    await s.pipeline.apply([{ path: 'orders/2/1', source: 'orders', value: null }]);
    await until(() => !a.values.has('orders/2/1'), 'the removal');
    client.close();
    await s.server.close();
  });

  it('reconnects to a restarted server (new store, new epoch): no duplicate emissions, removals for vanished topics', async () => {
    const first = await start(0, [
      row('orders/1', { status: 'open', total: 10 }),
      row('orders/2', { status: 'open', total: 20 }),
      row('orders/3', { status: 'open', total: 30 }),
    ]);
    const port = first.port;
    // Advance versions so they differ from what a new store will have.
    await first.pipeline.apply([row('orders/1', { status: 'paid', total: 10 })]);
    await first.pipeline.apply([row('orders/1', { status: 'shipped', total: 10 })]);

    const client = new TidewireClient({ url: `ws://127.0.0.1:${port}/ws`, reconnect: { initialMs: 20, maxMs: 100 } });
    const states: ConnectionState[] = [];
    client.onState((st) => states.push(st));
    const events: Event[] = [];
    const sub = client.subscribe('orders/*', {
      onValue: (p, v, ver) => events.push(['value', p, v, ver]),
      onRemoval: (p) => events.push(['removal', p]),
      onLive: () => events.push(['live']),
    });
    await client.connect();
    await until(() => sub.live, 'live');
    assert.equal(events.length, 4);
    const epoch1 = client.epoch;
    events.length = 0;

    await first.server.close();
    await until(() => client.state === 'reconnecting', 'reconnecting');
    assert.equal(sub.live, false);
    assert.equal(sub.values.size, 3, 'values are kept while disconnected');
    await new Promise((r) => setTimeout(r, 150)); // a few refused reconnect attempts

    // The restarted service rebuilt its state: orders/1 the same (version 1 now), orders/2 changed,
    // orders/3 deleted while it was down, orders/4 new.
    const second = await start(port, [
      row('orders/1', { status: 'shipped', total: 10 }),
      row('orders/2', { status: 'open', total: 25 }),
      row('orders/4', { status: 'open', total: 40 }),
    ]);
    assert.notEqual(second.store.epoch, epoch1);
    await until(() => events.some((e) => e[0] === 'live'), 'live again');
    assert.equal(client.epoch, second.store.epoch);
    assert.deepEqual(events, [
      ['value', 'orders/2', { status: 'open', total: 25 }, 1],
      ['value', 'orders/4', { status: 'open', total: 40 }, 1],
      ['removal', 'orders/3'],
      ['live'],
    ]);
    const expected = [...second.store.all()].map((t) => [t.path, t.value] as const).sort();
    assert.deepEqual([...sub.values].sort(), expected);

    // Deltas continue from the new epoch's versions.
    await second.pipeline.apply([row('orders/1', { status: 'delivered', total: 10 })]);
    await until(() => sub.values.get('orders/1')?.status === 'delivered', 'a delta after the restart');
    assert.deepEqual(events.at(-1), ['value', 'orders/1', { status: 'delivered', total: 10 }, 2]);
    assert.deepEqual(states.slice(0, 3), ['connecting', 'open', 'reconnecting']);
    assert.equal(states.at(-1), 'open');

    client.close();
    assert.equal(client.state, 'closed');
    await second.server.close();
  });
});
