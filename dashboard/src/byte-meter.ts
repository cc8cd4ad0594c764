/**
 * Counts what deltas save on the wire. The SDK has no hook for raw frames, so the meter wraps the
 * WebSocket constructor handed to TidewireClient: every text frame is counted as delivered (UTF-8
 * bytes), then — after the SDK has applied it — each `delta` in it is also priced as the `value`
 * message that would have carried the whole new value instead. The difference between the two
 * totals is the live bandwidth saving.
 */
import type { WebSocketConstructor, WebSocketLike } from '../../client/index.ts';

export interface ByteTotals {
  /** UTF-8 bytes of every frame received, as delivered. */
  delivered: number;
  /** What the same frames would have cost had every delta been sent as a full value. */
  full: number;
  frames: number;
  deltas: number;
}

/** The current full value of a topic, as the SDK holds it once it has applied a frame. */
export type ValueLookup = (path: string) => unknown;

export class ByteMeter {
  private readonly t: ByteTotals = { delivered: 0, full: 0, frames: 0, deltas: 0 };

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
        this.ws.onclose = (ev) => this.onclose?.(ev);
        this.ws.onerror = (ev) => this.onerror?.(ev);
        this.ws.onmessage = (ev) => {
          this.onmessage?.(ev);
          meter.frame(ev.data);
        };
      }

      get readyState(): number {
        return this.ws.readyState;
      }

      send(data: string): void {
        this.ws.send(data);
      }

      close(code?: number, reason?: string): void {
        this.ws.close(code, reason);
      }
    };
  }

  /** Accounts one received frame; call after the SDK has applied it. */
  frame(data: unknown): void {
    if (typeof data !== 'string') return;
    const bytes = utf8Length(data);
    this.t.frames++;
    this.t.delivered += bytes;
    let full = bytes;
    if (data.includes('"delta"')) {
      let batch: unknown;
      try {
        batch = JSON.parse(data);
      } catch {
        batch = null; // the SDK reports malformed frames; here they simply cost what they cost
      }
      if (Array.isArray(batch)) {
        for (const m of batch as Array<Record<string, unknown>>) {
          if (m?.type !== 'delta' || typeof m.path !== 'string') continue;
          const value = this.valueOf(m.path);
          if (value === undefined) continue;
          this.t.deltas++;
          full += utf8Length(JSON.stringify({ type: 'value', path: m.path, version: m.version, value })) - utf8Length(JSON.stringify(m));
        }
      }
    }
    this.t.full += full;
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
