/**
 * The WebSocket protocol end to end on a real server (127.0.0.1, port 0) fed by a real
 * TopicStore → Pipeline → InProcessHandoff: delivery order and completeness, selectors, and every
 * kind of bad input, each followed by proof that another client is unaffected.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import AjvModule from 'ajv';
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

// --- harness -------------------------------------------------------------------------------

const Ajv = (AjvModule as unknown as { default: typeof AjvModule }).default ?? AjvModule;
const schemaDir = new URL('../../schemas/protocol/', import.meta.url);
const ajv = new Ajv({ strict: true });
for (const f of readdirSync(schemaDir).filter((f) => f.endsWith('.schema.json'))) ajv.addSchema(JSON.parse(readFileSync(new URL(f, schemaDir), 'utf8')));
const validFrame = ajv.getSchema('https://tidewire.dev/schemas/protocol/server-frame.schema.json')!;

const CONFIG: ServerConfig = {
  host: '127.0.0.1',
  port: 0,
  maxPayloadBytes: 4096,
  sendQueueBytes: 8 << 20,
  flushIntervalMs: 2,
  maxSubscriptionsPerSession: 5,
  maxMessagesPerSecond: 50,
};

interface Harness {
  store: TopicStore;
  pipeline: Pipeline;
  server: DistributionServer;
  url: string;
}

async function startServer(overrides: Partial<ServerConfig> = {}): Promise<Harness> {
  const store = new TopicStore();
  const handoff = new InProcessHandoff(store);
  const pipeline = new Pipeline(store, handoff);
  const server = new DistributionServer(handoff, { ...CONFIG, ...overrides }, { logger: pino({ level: 'silent' }) });
  const { port } = await server.listen();
  return { store, pipeline, server, url: `ws://127.0.0.1:${port}/ws` };
}

/** A protocol-level client: records every message, checks every frame against the schema. */
class RawClient {
  readonly messages: ServerMessage[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];
  private pings = 0;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      assert.equal(isBinary, false, 'the server sends text frames only');
      const frame = JSON.parse(String(data));
      assert.ok(validFrame(frame), `frame does not match server-frame.schema.json: ${ajv.errorsText(validFrame.errors)}\n${String(data).slice(0, 300)}`);
      this.messages.push(...(frame as ServerMessage[]));
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
    ws.on('error', () => undefined);
  }

  static async open(url: string): Promise<RawClient> {
    const ws = new WebSocket(url);
    const c = new RawClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    await c.waitFor((m) => m.type === 'hello');
    return c;
  }

  send(message: object | string): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Resolves with the first message (from `from` on) matching `pred`. */
  async waitFor<T extends ServerMessage>(pred: (m: ServerMessage) => boolean, from = 0, timeoutMs = 5000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(from).find(pred);
      if (found) return found as T;
      if (Date.now() > deadline) throw new Error(`timed out; last messages: ${JSON.stringify(this.messages.slice(-5))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
  }

  /** Round trip: once the pong is here, everything the server queued before it is here too. */
  async sync(): Promise<void> {
    const id = `sync-${++this.pings}`;
    const from = this.messages.length;
    this.send({ type: 'ping', id });
    await this.waitFor((m) => m.type === 'pong' && m.id === id, from);
  }

  async subscribe(id: string, selector: string): Promise<ServerMessage[]> {
    const from = this.messages.length;
    this.send({ type: 'subscribe', id, selector });
    const done = await this.waitFor((m) => (m.type === 'subscribed' || m.type === 'error') && m.id === id, from);
    assert.equal(done.type, 'subscribed', JSON.stringify(done));
    return this.messages.slice(from, this.messages.indexOf(done) + 1);
  }

  since(from: number): ServerMessage[] {
    return this.messages.slice(from);
  }

  close(): void {
    this.ws.close();
  }
}

/** Applies the topic messages to a local copy, asserting version continuity (no gap, no duplicate). */
class Replica {
  readonly topics = new Map<string, { version: number; value: JsonObject }>();

  apply(m: ServerMessage): void {
    if (m.type === 'value') {
      const held = this.topics.get(m.path);
      if (held) assert.equal(m.version, held.version + 1, `value ${m.path} v${m.version} after v${held.version}`);
      this.topics.set(m.path, { version: m.version, value: m.value });
    } else if (m.type === 'delta') {
      const held = this.topics.get(m.path);
      assert.ok(held, `delta for ${m.path} v${m.version} without a value`);
      assert.equal(m.version, held.version + 1, `delta ${m.path} v${m.version} after v${held.version}`);
      this.topics.set(m.path, { version: m.version, value: applyPatch(held.value, m.patch) as JsonObject });
    } else if (m.type === 'removal') {
      const held = this.topics.get(m.path);
      assert.ok(held, `removal of ${m.path} that was never sent`);
      assert.equal(m.version, held.version + 1);
      this.topics.delete(m.path);
    }
  }
}

function storeContents(store: TopicStore, prefix: string): Map<string, { version: number; value: JsonObject }> {
  const out = new Map<string, { version: number; value: JsonObject }>();
  for (const t of store.all()) if (t.path.startsWith(prefix)) out.set(t.path, { version: t.version, value: t.value });
  return out;
}

const sorted = <T>(m: Map<string, T>): Array<[string, T]> => [...m].sort(([a], [b]) => (a < b ? -1 : 1));
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

// --- delivery ------------------------------------------------------------------------------

describe('delivery', () => {
  let h: Harness;
  before(async () => {
    h = await startServer({ maxSubscriptionsPerSession: 100, maxMessagesPerSecond: 1000 });
  });
  after(() => h.server.close());

  it('hello first, with the store epoch', async () => {
    const c = await RawClient.open(h.url);
    assert.deepEqual(c.messages[0], { type: 'hello', protocol: 1, epoch: h.store.epoch, server: 'tidewire', maxPayloadBytes: CONFIG.maxPayloadBytes });
    c.close();
  });

  it('subscribing mid-stream of 1,000 updates: current values, then every change, no gap, no duplicate', async () => {
    const paths = Array.from({ length: 25 }, (_, i) => `orders/${i % 5}/${i}`);
    const row = (i: number, n: number): JsonObject => ({ id: i, customer: i % 5, status: n % 3 === 0 ? 'open' : 'paid', total: n, note: 'x'.repeat(40) });
    await h.pipeline.apply(paths.map((path, i) => ({ path, source: 'orders', value: row(i, 0) })));
    const c = await RawClient.open(h.url);
    const replica = new Replica();
    let from = -1;
    for (let n = 1; n <= 1000; n++) {
      const i = (n * 7) % paths.length;
      // Mostly deltas, some whole values, removals and re-creations, and transactions of two.
      const updates = [{ path: paths[i], source: 'orders', value: n % 97 === 0 ? null : n % 13 === 0 ? { id: i, all: `new ${n}` } : row(i, n) }];
      if (n % 5 === 0) updates.push({ path: paths[(i + 1) % paths.length], source: 'orders', value: row(i + 1, n) });
      await h.pipeline.apply(updates);
      if (n === 300) {
        from = c.messages.length;
        c.send({ type: 'subscribe', id: 'all', selector: 'orders/**' });
      }
      if (n % 10 === 0) await nextTurn(); // lets the socket deliver the subscribe somewhere mid-stream
    }
    await c.sync();
    const received = c.since(from);
    const marker = received.findIndex((m) => m.type === 'subscribed');
    assert.ok(marker > 0);
    const initial = received.slice(0, marker);
    assert.ok(initial.every((m) => m.type === 'value'), 'only current values before `subscribed`');
    assert.equal((received[marker] as { topics: number }).topics, initial.length);
    assert.equal(new Set(initial.map((m) => (m as { path: string }).path)).size, initial.length, 'each topic once');
    for (const m of received) replica.apply(m);
    assert.ok(received.length - marker > 100, 'changes kept flowing after the subscription went live');
    assert.deepEqual(sorted(replica.topics), sorted(storeContents(h.store, 'orders/')));
    c.close();
  });

  it('wildcard, descendant and exact selectors each get exactly their topics', async () => {
    const topics = ['sel/1/1', 'sel/1/2', 'sel/2/1', 'sel/1', 'sel/3/1/9', 'sel/77/1', 'other/77/1'];
    await h.pipeline.apply(topics.map((path) => ({ path, source: 'sel', value: { path } })));
    const cases: Array<[string, string[]]> = [
      ['sel/*/1', ['sel/1/1', 'sel/2/1', 'sel/77/1']],
      ['sel/**', ['sel/1', 'sel/1/1', 'sel/1/2', 'sel/2/1', 'sel/3/1/9', 'sel/77/1']],
      ['sel/1/*', ['sel/1/1', 'sel/1/2']],
      ['sel/*', ['sel/1']],
      ['sel/1/1', ['sel/1/1']],
      ['*/77/1', ['other/77/1', 'sel/77/1']],
      ['sel/*/*/9', ['sel/3/1/9']],
      ['nothing/**', []],
    ];
    const clients = await Promise.all(cases.map(() => RawClient.open(h.url)));
    for (const [i, [selector, expected]] of cases.entries()) {
      const got = await clients[i].subscribe('s', selector);
      assert.deepEqual(got.filter((m) => m.type === 'value').map((m) => (m as { path: string }).path).sort(), expected, selector);
      assert.equal((got.at(-1) as { topics: number }).topics, expected.length);
    }
    const marks = clients.map((c) => c.messages.length);
    await h.pipeline.apply(topics.map((path) => ({ path, source: 'sel', value: { path, changed: true } })));
    for (const [i, [selector, expected]] of cases.entries()) {
      await clients[i].sync();
      const changed = clients[i].since(marks[i]).filter((m) => m.type === 'delta' || m.type === 'value').map((m) => (m as { path: string }).path);
      assert.deepEqual(changed.sort(), expected, `changes for ${selector}`);
      clients[i].close();
    }
  });

  it('a change matched by two subscriptions of one session arrives once', async () => {
    await h.pipeline.apply([{ path: 'ov/1/1', source: 'ov', value: { n: 0, pad: 'p'.repeat(50) } }]);
    const c = await RawClient.open(h.url);
    await c.subscribe('a', 'ov/**');
    const second = await c.subscribe('b', 'ov/1/*');
    assert.deepEqual(second.map((m) => m.type), ['value', 'subscribed'], 'a new subscription gets its current values');
    const mark = c.messages.length;
    await h.pipeline.apply([{ path: 'ov/1/1', source: 'ov', value: { n: 1, pad: 'p'.repeat(50) } }]);
    await c.sync();
    const changes = c.since(mark).filter((m) => m.type !== 'pong');
    assert.deepEqual(changes, [{ type: 'delta', path: 'ov/1/1', version: 2, patch: [{ op: 'replace', path: '/n', value: 1 }] }]);
    // Unsubscribing one keeps the other.
    c.send({ type: 'unsubscribe', id: 'a' });
    await c.waitFor((m) => m.type === 'unsubscribed' && m.id === 'a');
    const mark2 = c.messages.length;
    await h.pipeline.apply([{ path: 'ov/1/1', source: 'ov', value: { n: 2, pad: 'p'.repeat(50) } }, { path: 'ov/2/1', source: 'ov', value: { n: 0 } }]);
    await c.sync();
    assert.deepEqual(c.since(mark2).filter((m) => m.type !== 'pong').map((m) => [m.type, (m as { path: string }).path]), [['delta', 'ov/1/1']]);
    c.close();
  });

  it('unsubscribe stops delivery; the id can be used again', async () => {
    await h.pipeline.apply([{ path: 'un/1', source: 'un', value: { n: 0 } }]);
    const c = await RawClient.open(h.url);
    await c.subscribe('x', 'un/*');
    c.send({ type: 'unsubscribe', id: 'x' });
    await c.waitFor((m) => m.type === 'unsubscribed' && m.id === 'x');
    const mark = c.messages.length;
    await h.pipeline.apply([{ path: 'un/1', source: 'un', value: { n: 1 } }, { path: 'un/2', source: 'un', value: { n: 1 } }]);
    await c.sync();
    assert.deepEqual(c.since(mark).map((m) => m.type), ['pong']);
    const again = await c.subscribe('x', 'un/*');
    assert.equal(again.length, 3);
    c.close();
  });

  it('removal carries the next version; a topic created again continues after it (a version never names two states)', async () => {
    await h.pipeline.apply([{ path: 'rm/1', source: 'rm', value: { n: 0 } }]);
    await h.pipeline.apply([{ path: 'rm/1', source: 'rm', value: { n: 1 } }]);
    const c = await RawClient.open(h.url);
    await c.subscribe('r', 'rm/*');
    const mark = c.messages.length;
    await h.pipeline.apply([{ path: 'rm/1', source: 'rm', value: null }]);
    await h.pipeline.apply([{ path: 'rm/1', source: 'rm', value: { n: 9 } }]);
    await h.pipeline.removeSource('rm');
    await c.sync();
    assert.deepEqual(c.since(mark).filter((m) => m.type !== 'pong'), [
      { type: 'removal', path: 'rm/1', version: 3 },
      { type: 'value', path: 'rm/1', version: 4, value: { n: 9 } },
      { type: 'removal', path: 'rm/1', version: 5 },
    ]);
    c.close();
  });

  it('batches: many changes in one flush interval arrive in few frames, in order', async () => {
    const c = await RawClient.open(h.url);
    await c.subscribe('b', 'batch/**');
    let frames = 0;
    c.ws.on('message', () => frames++);
    for (let n = 0; n < 200; n++) await h.pipeline.apply([{ path: `batch/${n % 10}`, source: 'b', value: { n } }]);
    await c.sync();
    const versions = c.messages.filter((m) => m.type !== 'pong' && 'path' in m && m.path === 'batch/3').map((m) => (m as { version: number }).version);
    assert.deepEqual(versions, Array.from({ length: 20 }, (_, i) => i + 1));
    assert.ok(frames <= 3, `200 synchronous changes + pong took ${frames} frames`);
    c.close();
  });
});

// --- bad input -----------------------------------------------------------------------------

describe('bad input', () => {
  let h: Harness;
  let witness: RawClient;
  let n = 0;

  before(async () => {
    h = await startServer();
    await h.pipeline.apply([{ path: 'w/1', source: 'w', value: { n: 0 } }]);
    witness = await RawClient.open(h.url);
    await witness.subscribe('w', 'w/*');
  });
  after(async () => {
    witness.close();
    await h.server.close();
  });

  /** Another client still gets its updates and answers. */
  async function witnessStillWorks(): Promise<void> {
    const mark = witness.messages.length;
    await h.pipeline.apply([{ path: 'w/1', source: 'w', value: { n: ++n } }]);
    await witness.sync();
    assert.ok(witness.since(mark).some((m) => m.type === 'value' && m.path === 'w/1' && m.value.n === n), 'the witness got the update');
  }

  async function expectError(c: RawClient, frame: string | object, code: string, id?: string): Promise<void> {
    const mark = c.messages.length;
    c.send(frame);
    const e = await c.waitFor((m) => m.type === 'error', mark);
    assert.equal((e as { code: string }).code, code, JSON.stringify(e));
    assert.ok((e as { message: string }).message.length > 10, 'the message says what to do');
    assert.equal((e as { id?: string }).id, id);
    await c.sync(); // the connection is still usable
  }

  it('malformed JSON → BAD_JSON, connection stays open', async () => {
    const c = await RawClient.open(h.url);
    for (const t of ['{', 'hello', '{"type":"ping"', '']) await expectError(c, t, 'BAD_JSON');
    c.close();
    await witnessStillWorks();
  });

  it('unknown type → UNKNOWN_TYPE; schema violations → INVALID_MESSAGE naming the field', async () => {
    const c = await RawClient.open(h.url);
    await expectError(c, { type: 'publish', id: 'q' }, 'UNKNOWN_TYPE', 'q');
    await expectError(c, [1, 2], 'INVALID_MESSAGE');
    await expectError(c, { type: 'subscribe', id: 'q' }, 'INVALID_MESSAGE', 'q');
    await expectError(c, { type: 'subscribe', id: 'q', selector: 'a', extra: 1 }, 'INVALID_MESSAGE', 'q');
    await expectError(c, { type: 'unsubscribe', id: 42 }, 'INVALID_MESSAGE');
    c.close();
    await witnessStillWorks();
  });

  it('invalid selectors → INVALID_SELECTOR with the request id', async () => {
    const c = await RawClient.open(h.url);
    const bad = ['../x', 'a/../b', 'a//b', '**/x', 'a/**/b', '/a', 'a/', '.', 'a b', 'a/%zz', 'x'.repeat(2000), 'a/'.repeat(40) + 'b', 'a/***'];
    for (const [i, selector] of bad.entries()) await expectError(c, { type: 'subscribe', id: `bad${i}`, selector }, 'INVALID_SELECTOR', `bad${i}`);
    assert.equal(h.server.sessionCount, 2);
    c.close();
    await witnessStillWorks();
  });

  it('duplicate id, unknown subscription, too many subscriptions', async () => {
    const c = await RawClient.open(h.url);
    await c.subscribe('d', 'w/*');
    await expectError(c, { type: 'subscribe', id: 'd', selector: 'x/*' }, 'DUPLICATE_ID', 'd');
    await expectError(c, { type: 'unsubscribe', id: 'nope' }, 'UNKNOWN_SUBSCRIPTION', 'nope');
    for (let i = 1; i < CONFIG.maxSubscriptionsPerSession; i++) await c.subscribe(`m${i}`, `m/${i}`);
    await expectError(c, { type: 'subscribe', id: 'one-too-many', selector: 'm/x' }, 'TOO_MANY_SUBSCRIPTIONS', 'one-too-many');
    c.close();
    await witnessStillWorks();
  });

  it('binary frame → BINARY_NOT_SUPPORTED', async () => {
    const c = await RawClient.open(h.url);
    const mark = c.messages.length;
    c.ws.send(Buffer.from('{"type":"ping"}'), { binary: true });
    const e = await c.waitFor((m) => m.type === 'error', mark);
    assert.equal((e as { code: string }).code, 'BINARY_NOT_SUPPORTED');
    await c.sync();
    c.close();
    await witnessStillWorks();
  });

  it('a frame over maxPayloadBytes → close 1009', async () => {
    const c = await RawClient.open(h.url);
    c.send({ type: 'subscribe', id: 'big', selector: 'x'.repeat(CONFIG.maxPayloadBytes) });
    assert.equal((await c.closed).code, 1009);
    await witnessStillWorks();
    assert.equal(h.server.stats.disconnects.payloadTooBig, 1);
  });

  it('invalid UTF-8 in a text frame → close 1007', async () => {
    const c = await RawClient.open(h.url);
    c.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    assert.equal((await c.closed).code, 1007);
    await witnessStillWorks();
  });

  it('more than maxMessagesPerSecond → RATE_LIMITED per dropped message, with its id', async () => {
    const c = await RawClient.open(h.url);
    const limit = CONFIG.maxMessagesPerSecond;
    const mark = c.messages.length;
    for (let i = 0; i < limit + 5; i++) c.send({ type: 'ping', id: `r${i}` });
    await c.waitFor((m) => m.type === 'error' && m.id === `r${limit + 4}`, mark);
    const got = c.since(mark);
    assert.equal(got.filter((m) => m.type === 'pong').length, limit);
    const limited = got.filter((m) => m.type === 'error');
    assert.deepEqual(limited.map((m) => [(m as { code: string }).code, (m as { id: string }).id]), Array.from({ length: 5 }, (_, i) => ['RATE_LIMITED', `r${limit + i}`]));
    c.close();
    await witnessStillWorks();
  });

  it('sustained abuse (10× the limit in one second) → close 4029', async () => {
    const c = await RawClient.open(h.url);
    for (let i = 0; i <= CONFIG.maxMessagesPerSecond * 10; i++) c.send('{"type":"ping"}');
    assert.equal((await c.closed).code, 4029);
    assert.equal(h.server.stats.disconnects.rateAbuse, 1);
    await witnessStillWorks();
  });

  it('graceful shutdown closes clients with 1001 and refuses new connections', async () => {
    const own = await startServer();
    const c = await RawClient.open(own.url);
    await own.server.close();
    assert.equal((await c.closed).code, 1001);
    await assert.rejects(RawClient.open(own.url));
    await witnessStillWorks();
  });
});
