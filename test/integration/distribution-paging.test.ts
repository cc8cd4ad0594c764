/**
 * Subscriptions of any size (issue #12, item 6): 200,000 topics (~26 MB of values, three times
 * the default sendQueueBytes) load into an SDK client in pages under flow control, while writes
 * go on — updates, creations and removals, before and after the loading cursor. Nothing is lost
 * or emitted twice, the client ends with exactly the server's state, progress is reported, and
 * the server's send queue for the client never passes its limit.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { TidewireClient } from '../../client/index.ts';
import type { ServerConfig } from '../../services/config/config.ts';
import { DistributionServer } from '../../services/distribution/index.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import { Pipeline } from '../../services/pipeline.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import type { TopicUpdate } from '../../core/topic.ts';
import { parseSelector } from '../../core/selector.ts';

const SEND_QUEUE = 8 << 20; // the default
const CONFIG: ServerConfig = {
  host: '127.0.0.1', port: 0, maxPayloadBytes: 65536, sendQueueBytes: SEND_QUEUE, flushIntervalMs: 2, maxSubscriptionsPerSession: 10, maxMessagesPerSecond: 100,
};
const TOPICS = 200_000;
const PAD = 'x'.repeat(80);

const account = (id: number, balance: number): TopicUpdate => ({ path: `accounts/${id % 100}/${id}`, source: 'accounts', value: { id, balance, pad: PAD } });

async function until(check: () => boolean, what: string, timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('a subscription larger than the send queue', () => {
  it('loads in pages while writes go on: nothing lost or twice, progress reported, the queue within its limit', async () => {
    const store = new TopicStore();
    const handoff = new InProcessHandoff(store);
    const pipeline = new Pipeline(store, handoff);
    const initial: TopicUpdate[] = [];
    for (let id = 0; id < TOPICS; id++) initial.push(account(id, 0));
    await pipeline.apply(initial);
    const server = new DistributionServer(handoff, CONFIG, { logger: pino({ level: 'silent' }) });
    const { port } = await server.listen();

    const client = new TidewireClient({ url: `ws://127.0.0.1:${port}/ws` });
    const progress: Array<[number, number]> = [];
    /** The last version emitted per path: each emission must be newer. */
    const emitted = new Map<string, number>();
    const twice: string[] = [];
    const sub = client.subscribe('accounts/**', {
      onValue: (path, _value, version) => {
        const last = emitted.get(path);
        if (last !== undefined && version <= last) twice.push(`${path} v${version} after v${last}`);
        emitted.set(path, version);
      },
      onRemoval: (path) => emitted.delete(path),
      onProgress: (sent, total) => progress.push([sent, total]),
    });

    // Writes while loading: updates all over the key space (before and after the cursor), new
    // accounts, closed ones, a few per batch, as fast as the event loop allows.
    let writing = true;
    let next = TOPICS;
    let balance = 0;
    let maxQueued = 0;
    const writer = (async () => {
      while (writing) {
        balance++;
        const updates: TopicUpdate[] = [];
        for (let i = 0; i < 20; i++) updates.push(account(Math.floor(Math.random() * TOPICS), balance));
        updates.push(account(next++, balance));
        const gone = Math.floor(Math.random() * TOPICS);
        updates.push({ path: `accounts/${gone % 100}/${gone}`, source: 'accounts', value: null });
        await pipeline.apply(updates);
        const depth = server.queueDepth();
        maxQueued = Math.max(maxQueued, depth.bytes + depth.socketBytes);
        await new Promise((r) => setTimeout(r, 2));
      }
    })();

    const started = Date.now();
    await client.connect();
    await until(() => sub.live, 'the subscription to be live');
    const loadMs = Date.now() - started;
    writing = false;
    await writer;
    // The writes after `subscribed` arrive live; then the client holds exactly the server's state.
    const expected = new Map<string, number>();
    store.forEachMatching(parseSelector('accounts/**'), (t) => expected.set(t.path, t.version));
    await until(() => sub.values.size === expected.size && [...expected].every(([p, v]) => emitted.get(p) === v), 'the client to catch up', 10_000);
    for (const [path, value] of sub.values) assert.deepEqual(value, store.get(path)!.value, path);

    assert.deepEqual(twice, [], 'no version emitted twice or out of order');
    assert.equal(server.stats.disconnects.sendQueue, 0, 'never disconnected for its send queue');
    assert.ok(maxQueued <= SEND_QUEUE, `queued ${maxQueued} bytes, limit ${SEND_QUEUE}`);
    assert.ok(progress.length >= 10, `progress reported ${progress.length} times`);
    assert.ok(progress.every(([, total]) => total === progress[0][1]) && progress[0][1] >= TOPICS - 1000, 'one total');
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i][0] > progress[i - 1][0], 'progress grows');
    assert.equal(sub.progress, null, 'no progress once live');
    assert.ok(loadMs < 30_000, `loaded in ${loadMs} ms`);
    client.close();
    await server.close();
  });
});
