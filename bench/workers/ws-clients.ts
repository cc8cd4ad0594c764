/**
 * The load generator: N WebSocket clients in one process, speaking tidewire's protocol or
 * socket.io's (engine.io v4 over a raw WebSocket, which is what socket.io-client sends on the
 * wire, without its per-message JS work), each subscribed to everything.
 *
 * Every client counts frames and TCP bytes (its socket's bytesRead, so WebSocket framing is
 * included). "Probe" clients, spread evenly over connection order (the server flushes sessions in
 * that order), also parse every message: they count messages exactly and record latency as
 * receive time − the `sent_us` the writer put in the row. Parsing on every one of thousands of
 * clients would measure the load generator instead of the server.
 */
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import { applyPatch } from '../../client/json-patch.ts';
import type { JsonObject, PatchOperation } from '../../core/messages.ts';
import { Samples, summarize } from '../lib/stats.ts';
import { serve } from '../lib/serve.ts';

export type Protocol = 'tidewire' | 'socketio';

interface ConnectParams {
  url: string;
  n: number;
  protocol: Protocol;
  /** tidewire selector (every topic: e.g. `lat/**`). */
  selector?: string;
  /** How many clients parse every message. */
  probes: number;
  /** Probe 0 keeps every topic's value and prices each delta as the full value it stands for. */
  track?: boolean;
  /** Connections opened at once. */
  concurrency?: number;
  /** Bearer tokens (security on): client i sends tokens[i % tokens.length] in the Authorization header. */
  tokens?: string[];
  /** More members of the subscribe message (e.g. `{ maxRate: 2 }`). */
  subscribe?: Record<string, unknown>;
  /** Probes also keep the version of every topic they hold (see `checkHeld`). */
  versions?: boolean;
}

interface Client {
  ws: WebSocket;
  socket: Socket | null;
  probe: boolean;
  ready: boolean;
  frames: number;
  messages: number;
  bytesAtReset: number;
  closedCode: number | null;
  /** path → version held (probes in `versions` mode, and the stalled client). */
  held: Map<string, number> | null;
}

const nowUs = () => (performance.timeOrigin + performance.now()) * 1000;

let clients: Client[] = [];
let protocol: Protocol = 'tidewire';
let latency = new Samples();
let windowStart = 0;
let deltas = 0;
let values = 0;
let removals = 0;
/** Bytes of topic messages as received, and as they would have been with full values instead of deltas (probe 0, track mode). */
let trackedDeliveredBytes = 0;
let trackedFullBytes = 0;
let trackedDeltaBytes = 0;
/** What the deltas would cost as a merge-style `{"set":{field:value}}` (top-level replaces only; others as sent). */
let trackedCompactDeltaBytes = 0;
const tracked = new Map<string, JsonObject>();
let tracking = false;
let keepVersions = false;
/** One more client outside the measured ones, whose socket is paused (see `stall`). */
let stalled: Client | null = null;

function sentOfTidewire(m: { type: string; value?: JsonObject; patch?: PatchOperation[] }): number | undefined {
  if (m.type === 'delta') {
    for (const op of m.patch!) if (op.path === '/sent_us' && op.op !== 'remove') return op.value as number;
    return undefined;
  }
  if (m.type === 'value') return m.value!.sent_us as number | undefined;
  return undefined;
}

function onProbeTidewire(c: Client, text: string, index: number): void {
  const msgs = JSON.parse(text) as Array<{ type: string; path: string; version: number; value?: JsonObject; patch?: PatchOperation[] }>;
  const now = nowUs();
  for (const m of msgs) {
    if (m.type !== 'value' && m.type !== 'delta' && m.type !== 'removal') continue;
    c.messages++;
    if (c.held) hold(c.held, m);
    const sent = sentOfTidewire(m);
    if (c === stalled) continue;
    if (sent !== undefined) latency.push((now - sent) / 1000);
    if (tracking && index === 0) track(m);
  }
}

function hold(held: Map<string, number>, m: { type: string; path: string; version: number }): void {
  if (m.type === 'removal') held.delete(m.path);
  else held.set(m.path, m.version);
}

function track(m: { type: string; path: string; version: number; value?: JsonObject; patch?: PatchOperation[] }): void {
  const wire = JSON.stringify(m);
  const bytes = Buffer.byteLength(wire);
  trackedDeliveredBytes += bytes;
  if (m.type === 'value') {
    values++;
    tracked.set(m.path, m.value!);
    trackedFullBytes += bytes;
  } else if (m.type === 'delta') {
    deltas++;
    trackedDeltaBytes += bytes;
    trackedCompactDeltaBytes += compactBytes(m, bytes);
    const next = applyPatch(tracked.get(m.path)!, m.patch!) as JsonObject;
    tracked.set(m.path, next);
    // The `value` message the server would have sent instead (same format as valueMessage()).
    trackedFullBytes += Buffer.byteLength(`{"type":"value","path":${JSON.stringify(m.path)},"version":${m.version},"value":${JSON.stringify(next)}}`);
  } else {
    removals++;
    tracked.delete(m.path);
    trackedFullBytes += bytes;
  }
}

function compactBytes(m: { path: string; version: number; patch?: PatchOperation[] }, bytes: number): number {
  const set: Record<string, unknown> = {};
  for (const op of m.patch!) {
    if (op.op === 'remove' || op.path.indexOf('/', 1) >= 0 || op.path.includes('~')) return bytes;
    set[op.path.slice(1)] = op.value;
  }
  return Buffer.byteLength(`{"type":"delta","path":${JSON.stringify(m.path)},"version":${m.version},"set":${JSON.stringify(set)}}`);
}

function onProbeSocketio(c: Client, text: string): void {
  if (!text.startsWith('42')) return;
  const [, row] = JSON.parse(text.slice(2)) as [string, { sent_us?: number }];
  c.messages++;
  if (row.sent_us !== undefined) latency.push((nowUs() - Number(row.sent_us)) / 1000);
}

function open(p: ConnectParams, i: number, probe: boolean): Promise<Client> {
  return new Promise((resolve, reject) => {
    const url = p.protocol === 'socketio' ? `${p.url.replace(/\/$/, '')}/socket.io/?EIO=4&transport=websocket` : p.url;
    const token = p.tokens && p.tokens.length > 0 ? p.tokens[i % p.tokens.length] : undefined;
    const headers = token ? { authorization: `Bearer ${token}` } : undefined;
    const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true, headers });
    const c: Client = { ws, socket: null, probe, ready: false, frames: 0, messages: 0, bytesAtReset: 0, closedCode: null, held: keepVersions ? new Map() : null };
    const fail = (e: Error) => {
      if (!c.ready) reject(new Error(`client ${i}: ${e.message}`));
    };
    ws.on('error', fail);
    ws.on('close', (code) => {
      c.closedCode = code;
      if (!c.ready) reject(new Error(`client ${i}: closed ${code} before it was subscribed`));
    });
    ws.once('open', () => {
      c.socket = (ws as unknown as { _socket: Socket })._socket;
      if (p.protocol === 'tidewire') ws.send(JSON.stringify({ ...p.subscribe, type: 'subscribe', id: 's', selector: p.selector }));
    });
    ws.on('message', (data: Buffer) => {
      c.frames++;
      if (c.ready) {
        if (!c.probe) {
          if (protocol === 'socketio' && data.length === 1 && data[0] === 0x32) ws.send('3'); // engine.io ping → pong
          return;
        }
        const text = data.toString();
        if (protocol === 'tidewire') onProbeTidewire(c, text, i);
        else if (text === '2') ws.send('3');
        else onProbeSocketio(c, text);
        return;
      }
      const text = data.toString();
      if (p.protocol === 'tidewire') {
        // Setup: the initial values, then `subscribed` (a probe tracking values keeps them).
        const msgs = JSON.parse(text) as Array<{ type: string; path: string; version: number; value?: JsonObject }>;
        for (const m of msgs) {
          if (c.held && (m.type === 'value' || m.type === 'delta' || m.type === 'removal')) hold(c.held, m);
          if (m.type === 'error') reject(new Error(`client ${i}: ${text}`));
          if (m.type === 'value' && tracking && i === 0) tracked.set(m.path, m.value!);
          if (m.type === 'subscribed') {
            c.ready = true;
            resolve(c);
          }
        }
      } else if (text.startsWith('0')) {
        ws.send('40'); // connect to the default namespace
      } else if (text.startsWith('40')) {
        c.ready = true;
        resolve(c);
      } else if (text === '2') {
        ws.send('3');
      }
    });
  });
}

async function connect(p: ConnectParams) {
  protocol = p.protocol;
  tracking = !!p.track;
  keepVersions = !!p.versions;
  const every = Math.max(1, Math.floor(p.n / Math.max(1, p.probes)));
  const t0 = performance.now();
  const conc = p.concurrency ?? 100;
  const out: Client[] = new Array(p.n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(conc, p.n) }, async () => {
      while (next < p.n) {
        const i = next++;
        out[i] = await open(p, i, i % every === 0);
      }
    }),
  );
  clients = out;
  return { clients: clients.length, probes: clients.filter((c) => c.probe).length, seconds: (performance.now() - t0) / 1000 };
}

/** Spreads `count` probes evenly over the clients again (fewer probes at higher rates keep the load generator's parsing bounded). */
function setProbes(p: { count: number }) {
  const every = Math.max(1, Math.floor(clients.length / Math.max(1, p.count)));
  for (let i = 0; i < clients.length; i++) clients[i].probe = i % every === 0;
  return { probes: clients.filter((c) => c.probe).length };
}

/** Starts a measurement window: counters to zero. */
function reset() {
  latency = new Samples();
  windowStart = performance.now();
  deltas = values = removals = 0;
  trackedDeliveredBytes = trackedFullBytes = trackedDeltaBytes = trackedCompactDeltaBytes = 0;
  for (const c of clients) {
    c.frames = 0;
    c.messages = 0;
    c.bytesAtReset = c.socket?.bytesRead ?? 0;
  }
  return { at: performance.timeOrigin + windowStart };
}

/** The window's counts so far. */
function collect() {
  const seconds = (performance.now() - windowStart) / 1000;
  const probes = clients.filter((c) => c.probe);
  const bytes = clients.map((c) => (c.socket?.bytesRead ?? 0) - c.bytesAtReset);
  const probeBytes = probes.map((c) => (c.socket?.bytesRead ?? 0) - c.bytesAtReset);
  const meanProbeBytes = probeBytes.reduce((a, b) => a + b, 0) / Math.max(1, probes.length);
  const probeMessages = probes.map((c) => c.messages);
  const meanProbeMessages = probeMessages.reduce((a, b) => a + b, 0) / Math.max(1, probes.length);
  const totalBytes = bytes.reduce((a, b) => a + b, 0);
  return {
    seconds,
    clients: clients.length,
    probes: probes.length,
    frames: clients.reduce((a, c) => a + c.frames, 0),
    bytes: totalBytes,
    /** Deliveries: messages per probe × clients (probes parse; the others' bytes are checked against the probes'). */
    deliveries: meanProbeMessages * clients.length,
    meanProbeMessages,
    minProbeMessages: Math.min(...probeMessages),
    maxProbeMessages: Math.max(...probeMessages),
    /** Least and most bytes any client received, relative to the probes' mean: ~1 when every client got the same stream. */
    bytesSpread: meanProbeBytes > 0 ? [Math.min(...bytes) / meanProbeBytes, Math.max(...bytes) / meanProbeBytes] : [0, 0],
    closed: clients.filter((c) => c.closedCode !== null).map((c) => c.closedCode),
    latencyMs: summarize(latency.values()),
    tracked: tracking ? { deltas, values, removals, deliveredBytes: trackedDeliveredBytes, fullBytes: trackedFullBytes, deltaBytes: trackedDeltaBytes, compactDeltaBytes: trackedCompactDeltaBytes } : null,
    probeBytesMean: meanProbeBytes,
  };
}

async function closeAll() {
  await Promise.all(
    clients.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.ws.readyState === WebSocket.CLOSED) return resolve();
          c.ws.once('close', () => resolve());
          c.ws.terminate();
        }),
    ),
  );
  clients = [];
  unstallNow();
}

/**
 * Opens one more client, subscribed like the others, then stops reading: its socket is paused, so
 * the server's writes pile up in the kernel's buffers and then in its session queue. It is not
 * counted in `collect`.
 */
async function stall(p: ConnectParams) {
  if (stalled) throw new Error('a stalled client is already open');
  const before = keepVersions;
  keepVersions = true;
  try {
    stalled = await open({ ...p, protocol: 'tidewire' }, -1, true);
  } finally {
    keepVersions = before;
  }
  stalled.socket!.pause();
  return { held: stalled.held!.size };
}

/** Lets the stalled client read again; resolves once its socket has been quiet for `quietMs`. */
async function unstall(p: { quietMs?: number; maxMs?: number }) {
  const c = stalled;
  if (!c) throw new Error('no stalled client');
  const queued = c.socket!.readableLength;
  const t0 = performance.now();
  c.socket!.resume();
  let last = -1;
  for (;;) {
    await new Promise((r) => setTimeout(r, p.quietMs ?? 300));
    const read = c.socket!.bytesRead;
    if (read === last || performance.now() - t0 > (p.maxMs ?? 30_000)) break;
    last = read;
  }
  return { closedCode: c.closedCode, bytesRead: c.socket!.bytesRead, messages: c.messages, held: c.held!.size, queuedInProcess: queued };
}

function unstallNow() {
  if (!stalled) return;
  stalled.ws.terminate();
  stalled = null;
}

/**
 * Compares what the probes (and the stalled client) hold with the server's versions: every topic
 * present at its current version, nothing else.
 */
function checkHeld(p: { versions: Record<string, number> }) {
  const expected = Object.entries(p.versions);
  const holders = clients.filter((c) => c.held !== null);
  if (stalled) holders.push(stalled);
  let stale = 0;
  let extra = 0;
  let example: string | null = null;
  for (const c of holders) {
    for (const [path, version] of expected) {
      const v = c.held!.get(path);
      if (v !== version) {
        stale++;
        example ??= `${path}: held ${v ?? 'nothing'}, current ${version}`;
      }
    }
    extra += [...c.held!.keys()].filter((k) => !(k in p.versions)).length;
  }
  return { holders: holders.length, topics: expected.length, stale, extra, example };
}

serve(
  { connect, size: () => ({ clients: clients.length }), probes: setProbes, reset, collect, stall, unstall, dropStalled: unstallNow, checkHeld, close: closeAll },
  closeAll,
);
