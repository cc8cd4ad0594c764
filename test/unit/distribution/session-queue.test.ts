import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameEncoder } from '../../../services/distribution/frame-encoder.ts';
import { SessionQueue, UNGROUPED, forEachFrame, frameBuffer } from '../../../services/distribution/session-queue.ts';
import { frameText } from '../../support/frame-text.ts';

const msg = (n: number): string => `{"type":"value","path":"t/${n}","version":1,"value":{}}`;
const bytes = (s: string): number => Buffer.byteLength(s);

describe('SessionQueue', () => {
  it('batches everything pending into one JSON array frame and starts empty again', () => {
    const q = new SessionQueue(1 << 20, () => 0);
    const items = [msg(1), msg(2), msg(3)];
    for (const m of items) assert.equal(q.push(m, bytes(m)), true);
    assert.equal(q.length, 3);
    assert.equal(q.bytes, items.reduce((n, m) => n + bytes(m), 0));
    const taken = q.take()!;
    assert.deepEqual(JSON.parse(frameText(taken.items)), items.map((m) => JSON.parse(m)));
    assert.equal(q.length, 0);
    assert.equal(q.bytes, 0);
    assert.deepEqual(q.take()!.items, []);
  });

  it('counts UTF-8 bytes as given, not characters', () => {
    const q = new SessionQueue(100, () => 0);
    const m = `{"v":"${'é'.repeat(30)}"}`; // 38 chars, 68 bytes
    assert.equal(q.push(m, bytes(m)), true);
    assert.equal(q.push(m, bytes(m)), false, '136 bytes pending is over a 100-byte limit');
  });

  it('refuses a push once pending + socket backlog passes the limit', () => {
    let backlog = 0;
    const q = new SessionQueue(1000, () => backlog);
    assert.equal(q.push('x'.repeat(400), 400), true);
    backlog = 700;
    // The estimate (0 backlog) says 800 ≤ 1000: the socket is not asked, the push passes.
    assert.equal(q.push('x'.repeat(400), 400), true);
    // 1200 pending is over the limit even with an empty socket.
    backlog = 0;
    assert.equal(q.push('x'.repeat(400), 400), false);
  });

  it('asks the socket only when its estimate is over the limit, and accepts if the client has read', () => {
    // A fake socket: flushed frames add to the backlog, the client reading drains it.
    let backlog = 0;
    let asked = 0;
    const q = new SessionQueue(1000, () => (asked++, backlog));
    const flush = (): void => {
      const n = q.bytes;
      const taken = q.take();
      assert.ok(taken);
      backlog += n + taken.items.length + 1;
    };
    q.push('x'.repeat(600), 600);
    flush();
    assert.equal(backlog, 602);
    asked = 0;
    assert.equal(q.push('y'.repeat(300), 300), true, 'within the estimate: 300 + 602 ≤ 1000');
    assert.equal(asked, 0, 'the socket is not asked while the estimate is within the limit');
    backlog = 0; // the client read everything
    assert.equal(q.push('y'.repeat(300), 300), true, 'over the estimate, but the real backlog is empty');
    assert.equal(asked, 1);
    flush(); // 600 bytes into the socket, and the client stops reading
    assert.equal(q.push('z'.repeat(300), 300), true);
    assert.equal(q.push('z'.repeat(300), 300), false, '600 pending + 602 unread is over 1000');
  });

  it('take() returns null when the socket backlog plus pending is over the limit', () => {
    let backlog = 0;
    const q = new SessionQueue(1000, () => backlog);
    q.push('x'.repeat(300), 300);
    backlog = 800;
    assert.equal(q.take(), null);
    backlog = 700;
    assert.equal(q.take()?.items.length, 1);
  });

  it('a message sent before a large group goes out before the group\'s parts, never after its txn marker (hello is first)', () => {
    const q = new SessionQueue(1 << 20, () => 0);
    const hello = '{"type":"hello","epoch":"e1"}';
    q.push(hello, bytes(hello));
    q.group(7);
    for (let i = 0; i < 40; i++) q.push(msg(i), bytes(msg(i)));
    const frames: string[] = [];
    const taken = q.take()!;
    forEachFrame(taken, (s, e, prefix) => frames.push(frameText(taken.items, s, e, prefix)), 400);
    const parsed = frames.map((f) => JSON.parse(f) as Array<{ type: string; part?: number }>);
    assert.equal(parsed[0][0].type, 'hello', 'the first message of the first frame');
    assert.ok(parsed.length > 2, 'the group spans several frames');
    for (const f of parsed.slice(1)) assert.equal(f[0].type, 'txn', 'every part opens with its marker');
    assert.ok(!parsed.slice(1).some((f) => f.some((m) => m.type === 'hello')), 'hello is in no part of the group');
  });

  it('clear() drops everything', () => {
    const q = new SessionQueue(1000, () => 0);
    q.push('abc', 3);
    q.clear();
    assert.equal(q.length, 0);
    assert.equal(q.bytes, 0);
  });
});

describe('forEachFrame', () => {
  const loose = (items: string[]) => ({ items, starts: [0], seqs: [UNGROUPED] });

  it('splits large batches of free-standing messages into frames of at most maxChars, in order', () => {
    const items = Array.from({ length: 10 }, (_, i) => String(i).repeat(9)); // 9 chars + 1 separator each
    const frames: Array<[number, number]> = [];
    forEachFrame(loose(items), (s, e) => frames.push([s, e]), 30);
    assert.deepEqual(frames, [[0, 3], [3, 6], [6, 9], [9, 10]]);
  });

  it('gives an oversized message a frame of its own', () => {
    const frames: Array<[number, number]> = [];
    forEachFrame(loose(['a', 'b'.repeat(100), 'c']), (s, e) => frames.push([s, e]), 10);
    assert.deepEqual(frames, [[0, 1], [1, 2], [2, 3]]);
  });

  it('one frame for a small batch', () => {
    const frames: Array<[number, number]> = [];
    forEachFrame(loose([msg(1), msg(2)]), (s, e) => frames.push([s, e]));
    assert.deepEqual(frames, [[0, 2]]);
    assert.equal(frameText([msg(1), msg(2)], 1, 2), `[${msg(2)}]`);
  });
});

describe('frameBuffer', () => {
  it('is the frame text in UTF-8, byte for byte, for any range and prefix', () => {
    const items = [
      msg(1),
      '{"type":"value","path":"t/é","version":1,"value":{"s":"ünïcödé ✓"}}', // 2- and 3-byte characters
      '{"type":"value","path":"t/3","version":1,"value":{"s":"🚢 \\ud83d"}}', // a surrogate pair; an escaped lone one
      msg(4),
    ];
    const prefix = '{"type":"txn","seq":7,"part":1,"parts":2}';
    for (let start = 0; start < items.length; start++) {
      for (let end = start + 1; end <= items.length; end++) {
        for (const p of [null, prefix]) {
          const buf = frameBuffer(items, start, end, p);
          assert.deepEqual(buf, Buffer.from(frameText(items, start, end, p), 'utf8'), `[${start}, ${end}) ${p ? 'with' : 'without'} a prefix`);
          assert.deepEqual(JSON.parse(buf.toString('utf8')), [...(p ? [JSON.parse(p)] : []), ...items.slice(start, end).map((m) => JSON.parse(m))]);
        }
      }
    }
  });
});

describe('FrameEncoder', () => {
  it('encodes a frame shared by several sessions once, as one Buffer', () => {
    const enc = new FrameEncoder();
    const a = [msg(1), msg(2)];
    const b = [msg(1), msg(2)]; // same strings, another session's array
    const first = enc.encode(a, 0, 2);
    assert.ok(Buffer.isBuffer(first));
    const second = enc.encode(b, 0, 2);
    const third = enc.encode(b.slice(), 0, 2);
    assert.equal(second, first, 'the same Buffer object is reused');
    assert.equal(third, first);
    assert.equal(first.toString(), frameText(a));
  });

  it('different batches starting with the same message get their own frames', () => {
    const enc = new FrameEncoder();
    assert.equal(enc.encode([msg(1), msg(2)], 0, 2).toString(), `[${msg(1)},${msg(2)}]`);
    assert.equal(enc.encode([msg(1), msg(3)], 0, 2).toString(), `[${msg(1)},${msg(3)}]`);
    assert.equal(enc.encode([msg(1)], 0, 1).toString(), `[${msg(1)}]`);
  });

  it('forgets frames on reset', () => {
    const enc = new FrameEncoder();
    const before = enc.encode([msg(1)], 0, 1);
    enc.reset();
    const after = enc.encode([msg(1)], 0, 1);
    assert.notEqual(after, before, 'encoded again, not the frame of the round before');
    assert.deepEqual(after, before);
  });
});
