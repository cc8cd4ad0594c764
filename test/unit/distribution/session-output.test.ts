/**
 * A session's outbound side: how its messages are grouped (a reply stands alone, after the merged
 * updates that are due; a subscription's answer is one group; fan-out's changes are grouped by
 * batch), how a flush writes the queue (one frame, several only past MAX_FRAME_CHARS and never
 * inside a group unless it alone is larger), and what happens when the socket is closing, the
 * queue is full, a write throws or the session is disposed.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { compileFilter } from '../../../core/filter.ts';
import type { JsonObject } from '../../../core/json.ts';
import { parseSelector } from '../../../core/selector.ts';
import { valueMessage } from '../../../core/wire.ts';
import { FanOut, type Subscription } from '../../../services/distribution/fan-out.ts';
import { FrameEncoder } from '../../../services/distribution/frame-encoder.ts';
import { pongMessage } from '../../../services/distribution/protocol.ts';
import type { DeliveryOptions } from '../../../services/distribution/session-delivery.ts';
import { SessionOutput } from '../../../services/distribution/session-output.ts';
import { MAX_FRAME_CHARS, UNGROUPED } from '../../../services/distribution/session-queue.ts';
import { newStats } from '../../../services/distribution/stats.ts';
import { TopicStore } from '../../../services/topics/topic-store.ts';
import { FakeOutputOwner } from '../../support/fake-output-owner.ts';
import { FakeServerSocket } from '../../support/fake-server-socket.ts';

const QUEUE_FULL = 'send queue full: read faster or subscribe to less';
const CONFLATE: DeliveryOptions = { slowClientPolicy: 'conflate', slowClientBytes: 1000, slowClientGraceMs: 60_000, maxConflatedTopics: 100 };

const outputs: SessionOutput[] = [];
afterEach(() => {
  // Clears the delivery's timers (a client that fell behind is polled).
  for (const o of outputs.splice(0)) o.dispose();
});

function setup(over: { sendQueueBytes?: number; groupFromBytes?: number; delivery?: Partial<DeliveryOptions> } = {}) {
  const store = new TopicStore();
  const fan = new FanOut();
  const socket = new FakeServerSocket();
  const stats = newStats();
  const sendQueueBytes = over.sendQueueBytes ?? 16 * 1024 * 1024;
  const owner = new FakeOutputOwner({ sendQueueBytes, backlog: () => socket.bufferedAmount, groupFromBytes: over.groupFromBytes });
  const output = new SessionOutput(owner, socket, { view: store, fanOut: fan, stats, sendQueueBytes, delivery: { ...CONFLATE, ...over.delivery } });
  owner.output = output;
  outputs.push(output);
  const subscribe = (selector: string, extra: Partial<Subscription> = {}): Subscription => {
    const sub: Subscription = { id: selector, selector: parseSelector(selector), target: owner, ...extra };
    fan.add(sub);
    owner.subscriptions.push(sub);
    output.delivery.count(sub, 1);
    return sub;
  };
  const publish = (path: string, value: JsonObject) => {
    const batch = store.apply([{ path, source: 't', value }])!;
    fan.deliver(batch);
    return batch;
  };
  return { store, fan, socket, stats, owner, output, subscribe, publish };
}

/** The queue's messages (parsed) and its groups, taken as a flush would take them. */
function taken(owner: FakeOutputOwner) {
  const batch = owner.queue.take()!;
  return {
    messages: batch.items.map((w) => JSON.parse(w) as Record<string, unknown>),
    starts: [...batch.starts],
    seqs: [...batch.seqs],
  };
}

/** A free-standing message of about `chars` characters. */
function big(tag: string, chars: number): string {
  return valueMessage(`big/${tag}`, 1, { pad: 'x'.repeat(chars) });
}

/** Puts the session behind (conflate): its socket backlog passes slowClientBytes at a flush. */
function fallBehind(s: ReturnType<typeof setup>): void {
  s.socket.bufferedAmount = 5_000;
  s.output.flush(new FrameEncoder());
  assert.equal(s.output.depth().behind, true);
}

describe('SessionOutput: groups', () => {
  it('fan-out enqueues land in their batch\'s group, on the filtered path too, counted in UTF-8 bytes', () => {
    const s = setup({ groupFromBytes: 0 });
    s.subscribe('a/*', { filter: compileFilter('n > 0') });
    assert.equal(s.owner.simple, false, 'a filter takes the session off fan-out\'s fast path');
    const b1 = s.publish('a/1', { n: 1, s: 'é' });
    s.publish('a/2', { n: 0 }); // filtered out: nothing queued, no group
    const b3 = s.publish('a/1', { n: 2, s: 'é' });
    const bytes = s.owner.queue.bytes;
    const { messages, starts, seqs } = taken(s.owner);
    assert.deepEqual(messages.map((m) => [m.type, m.path, m.version]), [['value', 'a/1', 1], ['value', 'a/1', 2]]);
    assert.deepEqual(starts, [0, 1]);
    assert.deepEqual(seqs, [b1.seq, b3.seq]);
    assert.equal(bytes, Buffer.byteLength(b1.changes[0].wire) + Buffer.byteLength(b3.changes[0].wire), 'UTF-8 bytes, not characters');
    assert.equal(s.owner.scheduled, 1, 'one flush requested for the round');
  });

  it('a reply stands alone: a later message of the same batch opens its group again', () => {
    const s = setup({ groupFromBytes: 0 });
    s.subscribe('a/*');
    const b1 = s.publish('a/1', { n: 1 });
    s.output.send(pongMessage('p1'));
    assert.equal(s.owner.groupBatch, -1, 'the queue\'s current group belongs to no batch');
    const wire = b1.changes[0].wire;
    s.owner.enqueue(wire, Buffer.byteLength(wire), s.fan.batch, b1.seq);
    const { messages, starts, seqs } = taken(s.owner);
    assert.deepEqual(messages.map((m) => m.type), ['value', 'pong', 'value']);
    assert.deepEqual(starts, [0, 1, 2]);
    assert.deepEqual(seqs, [b1.seq, UNGROUPED, b1.seq]);
  });

  it('a reply goes out after the merged updates that are due, which form a group of their own', () => {
    const s = setup({ groupFromBytes: 0 });
    s.subscribe('a/*');
    const b1 = s.publish('a/1', { n: 1 });
    fallBehind(s);
    s.publish('a/1', { n: 2 });
    s.publish('a/1', { n: 3 });
    assert.equal(s.stats.conflations, 1, 'the two updates merged into one');
    s.socket.bufferedAmount = 0; // the client read its backlog
    s.output.send(pongMessage('p1'));
    const { messages, starts, seqs } = taken(s.owner);
    assert.deepEqual(messages.map((m) => [m.type, m.version ?? m.id]), [['value', 1], ['value', 3], ['pong', 'p1']]);
    assert.deepEqual((messages[1].value as { n: number }).n, 3, 'the merged update carries the current value');
    assert.deepEqual(starts, [0, 1, 2]);
    assert.deepEqual(seqs, [b1.seq, s.store.position, UNGROUPED]);
  });

  it('group() keeps a subscription answer together; the next fan-out batch opens its own group', () => {
    const s = setup({ groupFromBytes: 0 });
    s.subscribe('a/*');
    const b1 = s.publish('a/1', { n: 1 });
    s.output.send(pongMessage('p1')); // a reply: the queue's group belongs to no batch
    const position = s.store.position;
    s.output.group();
    assert.equal(s.owner.groupBatch, s.fan.batch, 'the answer\'s group belongs to the batch fan-out is at');
    s.output.push('{"type":"value","path":"a/1","version":1,"value":{"n":1}}', 57);
    s.output.push('{"type":"subscribed","id":"s1","topics":1}', 44);
    const b2 = s.publish('a/1', { n: 2 });
    const { messages, starts, seqs } = taken(s.owner);
    assert.deepEqual(messages.map((m) => m.type), ['value', 'pong', 'value', 'subscribed', 'value']);
    assert.deepEqual(starts, [0, 1, 2, 4]);
    assert.deepEqual(seqs, [b1.seq, UNGROUPED, position, b2.seq], 'group() defaults to the view\'s position');
  });

  it('group() first releases the merged updates that are due, so they never join the answer', () => {
    const s = setup({ groupFromBytes: 0 });
    s.subscribe('a/*');
    s.publish('a/1', { n: 1 });
    fallBehind(s);
    s.publish('a/2', { n: 1 });
    s.socket.bufferedAmount = 0;
    s.output.group(42);
    s.output.push('{"type":"subscribed","id":"s1","topics":0}', 44);
    const { messages, starts, seqs } = taken(s.owner);
    assert.deepEqual(messages.map((m) => [m.type, m.path]), [['value', 'a/1'], ['value', 'a/2'], ['subscribed', undefined]]);
    assert.deepEqual(starts, [0, 1, 2]);
    assert.deepEqual(seqs.slice(1), [s.store.position, 42]);
  });
});

describe('SessionOutput: flush', () => {
  it('writes everything pending as one text frame, once, and counts it', () => {
    const s = setup();
    const wires = [pongMessage('1'), valueMessage('a/1', 1, { s: 'é' }), pongMessage('2')];
    for (const w of wires) s.output.send(w);
    assert.equal(s.owner.scheduled, 1, 'one flush requested until the flush');
    s.output.flush(new FrameEncoder());
    assert.deepEqual(s.socket.messages(), [wires.map((w) => JSON.parse(w))]);
    assert.deepEqual(s.socket.binary, [false]);
    assert.equal(s.owner.flushPending, false);
    assert.equal(s.stats.framesOut, 1);
    assert.equal(s.stats.messagesOut, 3);
    assert.equal(s.stats.bytesOut, Buffer.byteLength(s.socket.frames[0]), 'payload bytes of the frame written');
    s.output.flush(new FrameEncoder());
    assert.equal(s.socket.frames.length, 1, 'nothing pending: nothing written');
    s.output.send(pongMessage('3'));
    assert.equal(s.owner.scheduled, 2, 'the next message asks for the next round');
  });

  it('past MAX_FRAME_CHARS: several frames, the boundary between groups, never inside one', () => {
    const s = setup();
    const third = Math.floor(MAX_FRAME_CHARS * 0.3);
    const reply = big('r', 2 * third);
    const answer = [big('a', third), big('b', third)];
    s.output.send(reply);
    s.output.group(9);
    for (const w of answer) s.output.push(w, w.length);
    s.output.flush(new FrameEncoder());
    const paths = s.socket.messages().map((f) => f.map((m) => m.path));
    assert.deepEqual(paths, [['big/r'], ['big/a', 'big/b']], 'the answer is not split to fill the first frame');
    for (const f of s.socket.frames) assert.ok(f.length <= MAX_FRAME_CHARS, `frame of ${f.length} characters`);
    assert.equal(s.stats.framesOut, 2);
    assert.equal(s.stats.bytesOut, s.socket.frames.reduce((n, f) => n + f.length, 0));
  });

  it('a group alone larger than a frame is written as parts, each opened by its txn marker', () => {
    const s = setup();
    const wires = ['a', 'b', 'c'].map((t) => big(t, Math.floor(MAX_FRAME_CHARS * 0.4)));
    s.output.group(4);
    for (const w of wires) s.output.push(w, w.length);
    s.output.flush(new FrameEncoder());
    const frames = s.socket.messages();
    assert.ok(frames.length >= 2, `${frames.length} frames`);
    frames.forEach((f, i) => assert.deepEqual(f[0], { type: 'txn', seq: 4, part: i + 1, parts: frames.length }));
    assert.deepEqual(frames.flatMap((f) => f.slice(1).map((m) => m.path)), ['big/a', 'big/b', 'big/c'], 'every message once, in order');
    for (const f of s.socket.frames) assert.ok(f.length <= MAX_FRAME_CHARS, `frame of ${f.length} characters`);
  });

  it('writes nothing when the socket is no longer OPEN, and drops what was pending', () => {
    const s = setup();
    s.output.send(pongMessage('1'));
    s.socket.readyState = 2; // closing
    s.output.flush(new FrameEncoder());
    assert.deepEqual(s.socket.frames, []);
    assert.equal(s.output.depth().messages, 0, 'pending messages were for a connection that is going away');
    assert.equal(s.stats.framesOut, 0);
    assert.deepEqual(s.owner.sendFailures, []);
    assert.deepEqual(s.owner.overflows, []);
  });

  it('a send that throws calls sendFailed and counts nothing', () => {
    const s = setup();
    s.output.send(pongMessage('1'));
    const err = new Error('WebSocket is not open');
    s.socket.failWith = err;
    s.output.flush(new FrameEncoder());
    assert.deepEqual(s.owner.sendFailures, [err]);
    assert.equal(s.stats.framesOut, 0);
    assert.equal(s.stats.messagesOut, 0);
    assert.equal(s.stats.bytesOut, 0);
  });

  it('holds the queue back while the client is behind (conflate), then sends the merged state once it has read', () => {
    const s = setup();
    s.subscribe('a/*');
    s.publish('a/1', { n: 1 });
    fallBehind(s);
    assert.deepEqual(s.socket.frames, [], 'not written while behind');
    s.publish('a/1', { n: 2 });
    s.publish('a/1', { n: 3 });
    s.socket.bufferedAmount = 0;
    s.output.flush(new FrameEncoder());
    assert.deepEqual(s.socket.messages().map((f) => f.map((m) => [m.path, m.version])), [[['a/1', 1], ['a/1', 3]]]);
    assert.equal(s.output.depth().behind, false);
  });
});

describe('SessionOutput: limits and closing', () => {
  it('a message past the queue limit calls overflow and asks for no flush', () => {
    const s = setup({ sendQueueBytes: 100 });
    s.output.send(pongMessage('1'));
    assert.equal(s.owner.scheduled, 1);
    s.owner.flushPending = false;
    const wire = big('x', 200);
    s.output.push(wire, wire.length);
    assert.deepEqual(s.owner.overflows, [QUEUE_FULL]);
    assert.equal(s.owner.scheduled, 1, 'no flush for a session that overflowed');
  });

  it('a flush whose queue plus socket backlog passed the limit calls overflow and writes nothing', () => {
    const s = setup({ sendQueueBytes: 1000, delivery: { slowClientPolicy: 'disconnect' } });
    s.output.send(pongMessage('1'));
    s.socket.bufferedAmount = 5_000; // the client stopped reading
    s.output.flush(new FrameEncoder());
    assert.deepEqual(s.owner.overflows, [QUEUE_FULL]);
    assert.deepEqual(s.socket.frames, []);
  });

  it('dispose drops everything pending, merged topics included, and queues nothing after', () => {
    const s = setup();
    s.subscribe('a/*');
    s.publish('a/1', { n: 1 });
    fallBehind(s);
    s.output.send(pongMessage('1'));
    s.publish('a/1', { n: 2 });
    assert.equal(s.output.depth().messages, 2, 'a value and a reply pending');
    assert.equal(s.output.depth().topics, 1, 'an update merged, waiting for the client to read');
    s.output.dispose();
    const { messages, bytes, topics } = s.output.depth();
    assert.deepEqual({ messages, bytes, topics }, { messages: 0, bytes: 0, topics: 0 });
    s.socket.bufferedAmount = 0;
    const scheduled = s.owner.scheduled;
    s.owner.flushPending = false;
    s.output.send(pongMessage('2'));
    s.output.group(1);
    s.output.push(pongMessage('3'), 16);
    s.output.flush(new FrameEncoder());
    assert.deepEqual(s.socket.frames, [], 'nothing written after dispose');
    assert.equal(s.output.depth().messages, 0);
    assert.equal(s.owner.scheduled, scheduled, 'no flush requested after dispose');
    assert.deepEqual(s.owner.overflows, []);
  });
});
