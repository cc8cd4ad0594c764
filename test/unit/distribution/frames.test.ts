/**
 * Transaction groups on the wire: the server never ends a frame inside a group unless the group
 * alone is larger than a frame, and then marks every part; the client puts the parts together and
 * applies them as one.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameAssembler } from '../../../client/frame-assembler.ts';
import { FrameError } from '../../../client/frames.ts';
import type { ServerMessage } from '../../../core/messages.ts';
import { SessionQueue, UNGROUPED, forEachFrame } from '../../../services/distribution/session-queue.ts';
import { frameText } from '../../support/frame-text.ts';

const msg = (n: number, pad = 0): string => `{"type":"value","path":"t/${n}","version":1,"value":{"p":"${'x'.repeat(pad)}"}}`;

/** Frames as [first item, end item, marker] for a queue built from groups of message sizes. */
function frames(groups: Array<{ seq: number; count: number; pad?: number }>, maxChars: number): Array<[number, number, string | null]> {
  const q = new SessionQueue(1 << 30, () => 0, 0);
  let n = 0;
  for (const g of groups) {
    if (g.seq === UNGROUPED) q.ungroup();
    else q.group(g.seq);
    for (let i = 0; i < g.count; i++) q.push(msg(n++, g.pad ?? 0), 1);
  }
  const out: Array<[number, number, string | null]> = [];
  forEachFrame(q.take()!, (s, e, prefix) => out.push([s, e, prefix]), maxChars);
  return out;
}

describe('frames and transaction groups', () => {
  const size = msg(0).length + 1; // 61: one message and its separator

  it('everything in one frame when it fits', () => {
    assert.deepEqual(frames([{ seq: 1, count: 3 }, { seq: 2, count: 3 }], 100 * size), [[0, 6, null]]);
  });

  it('frames end only between groups', () => {
    // Room for 4 messages per frame: groups of 3 and 3 go into two frames, never 4 + 2.
    assert.deepEqual(frames([{ seq: 1, count: 3 }, { seq: 2, count: 3 }, { seq: 3, count: 1 }], 4 * size), [[0, 3, null], [3, 7, null]]);
  });

  it('a group larger than a frame gets frames of its own, each opened by its part marker', () => {
    const out = frames([{ seq: 1, count: 1 }, { seq: 7, count: 10, pad: 900 }, { seq: 8, count: 1 }], 2500);
    assert.deepEqual(out[0], [0, 1, null]);
    const parts = out.slice(1, -1);
    assert.ok(parts.length >= 4, JSON.stringify(out));
    parts.forEach(([, , prefix], i) => assert.deepEqual(JSON.parse(prefix!), { type: 'txn', seq: 7, part: i + 1, parts: parts.length }));
    assert.equal(parts[0][0], 1);
    assert.equal(parts.at(-1)![1], 11);
    for (let i = 1; i < parts.length; i++) assert.equal(parts[i][0], parts[i - 1][1], 'contiguous');
    assert.deepEqual(out.at(-1), [11, 12, null]);
    for (const [s, e, prefix] of parts) {
      const q: string[] = [];
      for (let i = s; i < e; i++) q.push(msg(i, 900));
      assert.ok(frameText(q, 0, q.length, prefix).length <= 2500, 'each part fits the frame with its marker');
    }
  });

  it('free-standing messages are cut anywhere, without markers', () => {
    const out = frames([{ seq: UNGROUPED, count: 6 }], 2 * size);
    assert.deepEqual(out, [[0, 2, null], [2, 4, null], [4, 6, null]]);
  });

  it('the one-frame fast path trusts the byte count', () => {
    const q = new SessionQueue(1 << 30, () => 0);
    q.group(3);
    for (let i = 0; i < 5; i++) q.push(msg(i), Buffer.byteLength(msg(i)));
    const bytes = q.bytes;
    const out: Array<[number, number]> = [];
    forEachFrame(q.take()!, (s, e) => out.push([s, e]), 10 * size, bytes);
    assert.deepEqual(out, [[0, 5]]);
  });
});

describe('FrameAssembler', () => {
  const v = (n: number): ServerMessage => ({ type: 'value', path: `t/${n}`, version: 1, value: {} });
  const txn = (seq: number, part: number, parts: number): ServerMessage => ({ type: 'txn', seq, part, parts });

  it('passes ordinary frames through, holds parts until the last one', () => {
    const a = new FrameAssembler();
    assert.deepEqual(a.accept([v(1)]), [v(1)]);
    assert.equal(a.accept([txn(5, 1, 3), v(2)]), null);
    assert.equal(a.waiting, true);
    assert.equal(a.accept([txn(5, 2, 3), v(3)]), null);
    assert.deepEqual(a.accept([txn(5, 3, 3), v(4)]), [v(2), v(3), v(4)]);
    assert.equal(a.waiting, false);
  });

  it('refuses parts out of order, a foreign frame in between, and starts clean after', () => {
    const a = new FrameAssembler();
    assert.throws(() => a.accept([txn(5, 2, 3), v(1)]), FrameError);
    a.accept([txn(6, 1, 2), v(1)]);
    assert.throws(() => a.accept([v(9)]), FrameError);
    assert.equal(a.waiting, false);
    a.accept([txn(7, 1, 2), v(1)]);
    assert.throws(() => a.accept([txn(8, 2, 2), v(2)]), FrameError, 'another group');
    a.accept([txn(9, 1, 2), v(1)]);
    assert.throws(() => a.accept([txn(10, 1, 2), v(2)]), FrameError, 'a new group while one is incomplete');
  });
});

describe('lazy group boundaries', () => {
  it('below groupFromBytes the transactions form one leading group: still never split unmarked', () => {
    const q = new SessionQueue(1 << 30, () => 0, 3000);
    let n = 0;
    for (const seq of [1, 2, 3, 4]) {
      q.group(seq);
      for (let i = 0; i < 3; i++) q.push(msg(n++, 900), 950); // 4 groups × ~2.8 KB
    }
    const out: Array<[number, number, string | null]> = [];
    forEachFrame(q.take()!, (s, e, prefix) => out.push([s, e, prefix]), 2500);
    // Groups 1-2 (~5.7 KB) were not recorded: one leading group, sent as marked parts; 3 and 4 on their own.
    const lead = out.filter(([s]) => s < 6);
    assert.ok(lead.length >= 2 && lead.every(([, , p]) => p !== null && JSON.parse(p).seq === 2), JSON.stringify(out));
    assert.equal(lead.at(-1)![1], 6);
    for (const [s, , p] of out.filter(([s]) => s >= 6)) assert.ok(p === null || JSON.parse(p).seq > 2, `${s}`);
  });
});
