/**
 * Counts what deltas save on the wire, over live changes apart from the initial load. The SDK has
 * no hook for raw frames, so the meter wraps the WebSocket constructor handed to TidewireClient.
 *
 * From a `subscribe` the client sends until the server answers it (`subscribed`, or an `error` or
 * `unsubscribed` for its id), the subscription is loading: the `value`s of its answer (and its
 * pages' `loading` messages) are its initial values, counted apart — they cost the same with or
 * without deltas, and 200,000 of them would drown the saving of any number of changes. Every
 * other message is a live change (deltas and removals arriving while a large answer loads, and
 * everything once no subscription loads): counted as delivered (UTF-8 bytes), and each `delta` is
 * also priced as the `value` message that would have carried the whole new value instead, once
 * the SDK has applied it. The difference between those two is the bandwidth the deltas saved.
 * A resume after a reconnect is a `subscribe` too: its catch-up values count as initial.
 */
import type { WebSocketConstructor, WebSocketLike } from '../../client/index.ts';

export interface ByteTotals {
  /** UTF-8 bytes of the subscriptions' initial values (their answers up to `subscribed`). */
  initial: number;
  /** Initial values received. */
  initialValues: number;
  /** UTF-8 bytes of live changes (and anything else received while no subscription loads), as delivered. */
  delivered: number;
  /** What those live changes would have cost had every delta been sent as a full value. */
  full: number;
  frames: number;
  /** Live changes sent as deltas. */
  deltas: number;
}

/** The current full value of a topic, as the SDK holds it once it has applied a frame. */
export type ValueLookup = (path: string) => unknown;

type Message = Record<string, unknown>;

export class ByteMeter {
  private readonly t: ByteTotals = { initial: 0, initialValues: 0, delivered: 0, full: 0, frames: 0, deltas: 0 };
  /** Ids of subscribes sent and not answered yet. */
  private readonly loading = new Set<string>();

  constructor(private readonly valueOf: ValueLookup) {}

  get totals(): Readonly<ByteTotals> {
    return this.t;
  }

  /** A constructor for TidewireClient's `WebSocket` option that reports every frame to this meter. */
  wrap(Inner: WebSocketConstructor): WebSocketConstructor {
    const meter = this;
    return class MeteredWebSocket implements WebSocketLike {
      onopen: WebSocketLike['onopen'] = null;
      onmessage: WebSocketLike['onmessage'] = null;
      onclose: WebSocketLike['onclose'] = null;
      onerror: WebSocketLike['onerror'] = null;
      private readonly ws: WebSocketLike;

      constructor(url: string) {
        this.ws = new Inner(url);
        this.ws.onopen = (ev) => this.onopen?.(ev);
        this.ws.onclose = (ev) => {
          // Nothing in flight survives the connection: the SDK subscribes again after a reconnect.
          meter.loading.clear();
          this.onclose?.(ev);
        };
        this.ws.onerror = (ev) => this.onerror?.(ev);
        this.ws.onmessage = (ev) => {
          // Read before the SDK applies the frame; priced after, when the new values are held.
          const classified = meter.classify(ev.data);
          this.onmessage?.(ev);
          meter.account(classified);
        };
      }

      get readyState(): number {
        return this.ws.readyState;
      }

      send(data: string): void {
        meter.sent(data);
        this.ws.send(data);
      }

      close(code?: number, reason?: string): void {
        this.ws.close(code, reason);
      }
    };
  }

  /** A client message: a `subscribe` starts a load. */
  sent(data: string): void {
    if (!data.includes('"subscribe"')) return;
    try {
      const m = JSON.parse(data) as Message;
      if (m?.type === 'subscribe' && typeof m.id === 'string') this.loading.add(m.id);
    } catch {
      // not JSON: the server will say so
    }
  }

  /** Accounts one received frame; call after the SDK has applied it. */
  frame(data: unknown): void {
    this.account(this.classify(data));
  }

  /** Splits a frame into initial bytes and live messages (read before the SDK applies it). */
  private classify(data: unknown): Classified | null {
    if (typeof data !== 'string') return null;
    const bytes = utf8Length(data);
    const answering = data.includes('"subscribed"') || data.includes('"unsubscribed"') || data.includes('"error"');
    if (this.loading.size === 0 && !answering) return { bytes, initial: 0, initialValues: 0, live: data.includes('"delta"') ? parseBatch(data) : [] };
    const batch = parseBatch(data);
    if (batch.length === 0) return { bytes, initial: this.loading.size > 0 ? bytes : 0, initialValues: 0, live: [] };
    let initial = 0;
    let initialValues = 0;
    let counted = 0;
    const live: Message[] = [];
    const startedLoading = this.loading.size > 0;
    for (const m of batch) {
      const size = utf8Length(JSON.stringify(m)) + 1; // and its comma (or bracket)
      counted += size;
      if (this.loading.size > 0 && m.type !== 'delta' && m.type !== 'removal') {
        initial += size;
        if (m.type === 'value') initialValues++;
      } else live.push(m);
      if ((m.type === 'subscribed' || m.type === 'unsubscribed' || m.type === 'error') && typeof m.id === 'string') this.loading.delete(m.id);
    }
    // What re-encoding does not reproduce exactly (escapes, number forms) goes with the frame's start.
    const rest = bytes - counted;
    if (startedLoading) initial += rest;
    return { bytes, initial: Math.max(0, initial), initialValues, live };
  }

  private account(c: Classified | null): void {
    if (!c) return;
    this.t.frames++;
    this.t.initial += c.initial;
    this.t.initialValues += c.initialValues;
    const delivered = c.bytes - c.initial;
    this.t.delivered += delivered;
    let full = delivered;
    for (const m of c.live) {
      if (m?.type !== 'delta' || typeof m.path !== 'string') continue;
      const value = this.valueOf(m.path);
      if (value === undefined) continue;
      this.t.deltas++;
      full += utf8Length(JSON.stringify({ type: 'value', path: m.path, version: m.version, value })) - utf8Length(JSON.stringify(m));
    }
    this.t.full += full;
  }
}

interface Classified {
  bytes: number;
  /** Bytes of initial values and of the answers' control messages. */
  initial: number;
  initialValues: number;
  /** The frame's live messages (only those that matter for pricing need be here: deltas). */
  live: Message[];
}

function parseBatch(data: string): Message[] {
  try {
    const batch = JSON.parse(data) as unknown;
    return Array.isArray(batch) ? (batch as Message[]) : [];
  } catch {
    return []; // the SDK reports malformed frames; here they simply cost what they cost
  }
}

/** UTF-8 length of a string without encoding it. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      // a surrogate pair is one 4-byte code point
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
