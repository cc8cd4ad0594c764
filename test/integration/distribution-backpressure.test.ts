/**
 * A client that stops reading must cost the server a bounded amount of memory and must not slow
 * anyone else down: with the `disconnect` policy it is closed with 4008 once its queue passes
 * sendQueueBytes. (The default `conflate` policy is tested in delivery-slow-client.test.ts.)
 */
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import WebSocket from 'ws';
import { applyPatch } from '../../client/json-patch.ts';
import type { ServerConfig } from '../../services/config/config.ts';
import { DistributionServer } from '../../services/distribution/index.ts';
import type { ServerMessage } from '../../core/messages.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import type { JsonObject } from '../../core/json.ts';
import { Pipeline } from '../../services/pipeline.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const SEND_QUEUE = 256 * 1024;
const CONFIG: ServerConfig = {
  host: '127.0.0.1',
  port: 0,
  maxPayloadBytes: 65536,
  sendQueueBytes: SEND_QUEUE,
  flushIntervalMs: 2,
  maxSubscriptionsPerSession: 10,
  maxMessagesPerSecond: 100,
  slowClientPolicy: 'disconnect',
};

function memory(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Subscribes to `selector` and keeps a replica of what arrives. */
async function subscriber(url: string, selector: string) {
  const ws = new WebSocket(url);
  const topics = new Map<string, { version: number; value: JsonObject }>();
  let received = 0;
  let live = false;
  ws.on('message', (data) => {
    for (const m of JSON.parse(String(data)) as ServerMessage[]) {
      received++;
      if (m.type === 'subscribed') live = true;
      else if (m.type === 'value') topics.set(m.path, { version: m.version, value: m.value });
      else if (m.type === 'delta') {
        const held = topics.get(m.path)!;
        assert.equal(m.version, held.version + 1);
        topics.set(m.path, { version: m.version, value: applyPatch(held.value, m.patch) as JsonObject });
      }
    }
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('error', () => undefined);
  await new Promise((resolve) => ws.once('open', resolve));
  ws.send(JSON.stringify({ type: 'subscribe', id: 'load', selector }));
  while (!live) await new Promise((r) => setTimeout(r, 5));
  return { ws, topics, closed, received: () => received };
}

describe('a client that stops reading', () => {
  let store: TopicStore;
  let pipeline: Pipeline;
  let server: DistributionServer;
  let url: string;

  before(async () => {
    // The change history for resuming clients is bounded on its own (historyBytes); kept small
    // here so the heap growth measured is the sessions'.
    store = new TopicStore({ history: { maxBytes: 1 << 20 } });
    const handoff = new InProcessHandoff(store);
    pipeline = new Pipeline(store, handoff);
    server = new DistributionServer(handoff, CONFIG, { logger: pino({ level: 'silent' }) });
    url = `ws://127.0.0.1:${(await server.listen()).port}/ws`;
  });
  after(() => server.close());

  it('is closed with 4008 while the server heap stays bounded and another client keeps up', async () => {
    const TOPICS = 200;
    const big = (n: number): JsonObject => ({ n, blob: `${n}:`.padEnd(1000, 'x') });
    await pipeline.apply(Array.from({ length: TOPICS }, (_, i) => ({ path: `load/${i}`, source: 'load', value: big(0) })));

    const healthy = await subscriber(url, 'load/**');
    const stalled = await subscriber(url, 'load/**');
    (stalled.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const baseline = memory();

    // ~40 MB per subscriber, one ~200 KB transaction at a time, letting sockets drain in between.
    const ROUNDS = 200;
    let closedAt = -1;
    for (let round = 1; round <= ROUNDS; round++) {
      await pipeline.apply(Array.from({ length: TOPICS }, (_, i) => ({ path: `load/${i}`, source: 'load', value: big(round) })));
      await new Promise((r) => setTimeout(r, 3));
      if (closedAt < 0 && server.stats.disconnects.sendQueue > 0) closedAt = round;
    }
    const grown = memory() - baseline;

    assert.ok(closedAt > 0, 'the stalled client was dropped');
    assert.equal(server.sessionCount, 1, 'only the healthy session is left');
    // Unbounded, the server would hold tens of MB for the stalled client (40 MB pushed, minus the
    // few MB the kernel's socket buffers absorb). Bounded: sendQueueBytes plus a frame.
    assert.ok(grown < 12 * 1024 * 1024, `server memory grew by ${(grown / 1048576).toFixed(1)} MB`);

    // The healthy client kept up: it holds exactly the store's final state.
    while (healthy.topics.get(`load/${TOPICS - 1}`)?.value.n !== ROUNDS) await new Promise((r) => setTimeout(r, 10));
    for (const t of store.all()) assert.deepEqual(healthy.topics.get(t.path), { version: t.version, value: t.value });

    // Once it reads again, the stalled client finds the 4008 close after what was already sent.
    (stalled.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    assert.equal(await stalled.closed, 4008);
    assert.ok(stalled.received() < ROUNDS * TOPICS, 'it did not get everything');
    healthy.ws.close();
  });
});

describe('a client that stops answering pings', () => {
  it('is dropped by the heartbeat; others are not', async () => {
    const store = new TopicStore();
    const server = new DistributionServer(new InProcessHandoff(store), CONFIG, { logger: pino({ level: 'silent' }), heartbeatIntervalMs: 200 });
    const url = `ws://127.0.0.1:${(await server.listen()).port}/ws`;
    try {
      const silent = await subscriber(url, '**');
      const alive = await subscriber(url, '**');
      (silent.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      const deadline = Date.now() + 5000;
      while (server.stats.disconnects.heartbeat === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(server.stats.disconnects.heartbeat, 1);
      await new Promise((r) => setTimeout(r, 500)); // two more heartbeats
      assert.equal(server.sessionCount, 1, 'the answering client stays');
      alive.ws.close();
      silent.ws.terminate();
    } finally {
      await server.close();
    }
  });
});
