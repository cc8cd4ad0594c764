/**
 * A source transaction applied in parts (ChangeBatch.continues) reaches clients whole, on a real
 * server fed by TopicStore → Pipeline → InProcessHandoff: nothing is sent while it is open, then
 * all its changes in one frame; a reply asked for meanwhile comes after them, never between; a
 * subscribe sent meanwhile is answered from the whole transaction.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import pino from 'pino';
import WebSocket from 'ws';
import type { ServerConfig } from '../../services/config/config.ts';
import { DistributionServer } from '../../services/distribution/index.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import { Pipeline } from '../../services/pipeline.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import { waitFor } from '../support/wait.ts';

const CONFIG: ServerConfig = { host: '127.0.0.1', port: 0, maxPayloadBytes: 4096, sendQueueBytes: 8 << 20, flushIntervalMs: 2, maxSubscriptionsPerSession: 5, maxMessagesPerSecond: 50 };
const SRC = 'postgres:public.acct';

type Message = { type: string; [k: string]: unknown };

/** A client recording every frame it gets, as the list of messages it carried. */
async function open(url: string): Promise<{ ws: WebSocket; frames: Message[][]; send: (m: object) => void }> {
  const ws = new WebSocket(url);
  const frames: Message[][] = [];
  ws.on('message', (data) => frames.push(JSON.parse(String(data)) as Message[]));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, frames, send: (m) => ws.send(JSON.stringify(m)) };
}

const all = (frames: Message[][]) => frames.flat();

/** A server on a fresh TopicStore → Pipeline → InProcessHandoff, closed after the file's tests. */
async function startServer(): Promise<{ pipeline: Pipeline; url: string }> {
  const store = new TopicStore();
  const handoff = new InProcessHandoff(store);
  const pipeline = new Pipeline(store, handoff);
  const server = new DistributionServer(handoff, CONFIG, { logger: pino({ level: 'silent' }) });
  const { port } = await server.listen();
  after(() => server.close());
  return { pipeline, url: `ws://127.0.0.1:${port}/ws` };
}

test('a transaction applied in parts: nothing while it is open, then every change in one frame, the pong after it, a subscribe answered from the whole', async (t) => {
  const { pipeline, url } = await startServer();
  await pipeline.apply([{ path: 'acct/1', source: SRC, value: { bal: 10 } }, { path: 'acct/2', source: SRC, value: { bal: 10 } }]);

  const a = await open(url);
  t.after(() => a.ws.close());
  a.send({ type: 'subscribe', id: 's', selector: 'acct/**' });
  await waitFor('the subscription answered', () => all(a.frames).some((m) => m.type === 'subscribed'));
  const before = a.frames.length;

  // A transfer of 5 from acct/1 to acct/2, applied in two parts.
  await pipeline.apply([{ path: 'acct/1', source: SRC, value: { bal: 5 } }], undefined, undefined, { transaction: 'postgres', last: false });
  a.send({ type: 'ping', id: 'p' });
  const b = await open(url);
  t.after(() => b.ws.close());
  b.send({ type: 'subscribe', id: 's', selector: 'acct/**' });
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(a.frames.length, before, 'nothing reaches a client while the transaction is open');
  assert.equal(all(b.frames).some((m) => m.type === 'subscribed'), false, 'a subscribe waits for the end of the transaction');

  await pipeline.apply([{ path: 'acct/2', source: SRC, value: { bal: 15 } }], undefined, undefined, { transaction: 'postgres', last: true });
  await waitFor('the pong', () => all(a.frames).some((m) => m.type === 'pong'));
  const after_ = a.frames.slice(before);
  const changes = (f: Message[]) => f.filter((m) => m.path !== undefined).map((m) => m.path);
  const withChanges = after_.filter((f) => changes(f).length > 0);
  assert.deepEqual(withChanges.map(changes), [['acct/1', 'acct/2']], 'both parts in one frame');
  const flat = all(after_);
  assert.ok(flat.findIndex((m) => m.type === 'pong') > flat.findIndex((m) => m.path === 'acct/2'), 'the pong follows the whole transaction');

  await waitFor('the second subscription answered', () => all(b.frames).some((m) => m.type === 'subscribed'));
  const values = new Map(all(b.frames).filter((m) => m.type === 'value').map((m) => [m.path, (m.value as { bal: number }).bal]));
  assert.deepEqual(Object.fromEntries(values), { 'acct/1': 5, 'acct/2': 15 }, 'answered from the whole transaction');
});

test('a transaction whose last part changes nothing still ends: what it held goes out', async (t) => {
  const { pipeline, url } = await startServer();
  await pipeline.apply([{ path: 'acct/1', source: SRC, value: { bal: 10 } }]);
  const a = await open(url);
  t.after(() => a.ws.close());
  a.send({ type: 'subscribe', id: 's', selector: 'acct/**' });
  await waitFor('the subscription answered', () => all(a.frames).some((m) => m.type === 'subscribed'));
  await pipeline.apply([{ path: 'acct/1', source: SRC, value: { bal: 7 } }], undefined, undefined, { transaction: 'postgres', last: false });
  await pipeline.apply([{ path: 'acct/1', source: SRC, value: { bal: 7 } }], undefined, undefined, { transaction: 'postgres', last: true }); // the same value: no change
  await waitFor('the first part', () => all(a.frames).some((m) => m.path === 'acct/1' && m.version === 2), 2_000);
});

test('an apply of another source while a transaction is applied in parts does not end it: it goes out with it', async (t) => {
  const { pipeline, url } = await startServer();
  await pipeline.apply([{ path: 'acct/1', source: SRC, value: { bal: 10 } }, { path: 'acct/2', source: SRC, value: { bal: 10 } }]);
  const a = await open(url);
  t.after(() => a.ws.close());
  a.send({ type: 'subscribe', id: 's', selector: '**' });
  await waitFor('the subscription answered', () => all(a.frames).some((m) => m.type === 'subscribed'));
  const before = a.frames.length;
  await pipeline.apply([{ path: 'acct/1', source: SRC, value: { bal: 5 } }], undefined, undefined, { transaction: 'postgres', last: false });
  // A Kafka record meanwhile: a whole transaction of its own, with its position.
  await pipeline.apply([{ path: 'prices/x', source: 'kafka:prices', value: { px: 1 } }], { name: 'kafka:prices/0', position: '1' });
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(a.frames.length, before, 'still held: the Postgres transaction is not whole');
  await pipeline.apply([{ path: 'acct/2', source: SRC, value: { bal: 15 } }], { name: 'postgres', position: '0/10' }, undefined, { transaction: 'postgres', last: true });
  await waitFor('the changes', () => all(a.frames.slice(before)).some((m) => m.path === 'acct/2'));
  const paths = a.frames.slice(before).map((f) => f.filter((m) => m.path !== undefined).map((m) => m.path)).filter((p) => p.length > 0);
  assert.deepEqual(paths, [['acct/1', 'prices/x', 'acct/2']], 'one frame, in the order applied');
});
