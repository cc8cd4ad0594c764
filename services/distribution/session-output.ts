/**
 * The outbound side of one session: its queue, kept in groups that reach the client together (a
 * source transaction, a subscription's answer, a slow client's merged catch-up), its delivery
 * (filters, throttles, conflation) and the flush that writes the queue to the socket as frames.
 */
import type { PermissionSet } from '../security/permission-set.ts';
import type { TopicView } from '../../core/topic.ts';
import type { ChangeContext, FanOut, Subscription } from './fan-out.ts';
import type { FrameEncoder } from './frame-encoder.ts';
import { type DeliveryOptions, type DeliveryPort, SessionDelivery } from './session-delivery.ts';
import { MAX_FRAME_CHARS, type SessionQueue, forEachFrame } from './session-queue.ts';
import type { DistributionStats } from './stats.ts';

/**
 * The state fan-out touches for every delivery, kept on the session object itself: with a
 * thousand sessions, one more object per delivery measurably costs (cache misses), so the fast
 * path reads and writes the session only (and its queue).
 */
export interface OutputState {
  readonly queue: SessionQueue;
  /** True while the session waits for a flush round. */
  flushPending: boolean;
  /** Fan-out batch the queue's current group belongs to (-1: none). */
  groupBatch: number;
  /** False while fan-out must hand changes to the delivery (filters, throttles, merged topics, behind). */
  simple: boolean;
}

/** What the output needs from its session. */
export interface OutputOwner extends OutputState {
  readonly permissions: PermissionSet | null;
  liveSubscriptions(): Iterable<Subscription>;
  /** The session has messages to flush: put it in the next flush round. */
  scheduleFlush(): void;
  /** Fan-out: one change's message, in the group of batch `batch` (source transaction `seq`). */
  enqueue(wire: string, bytes: number, batch: number, seq: number): void;
  /** The client cannot be served within its limits: close it (4008). */
  overflow(why: string): void;
  /**
   * The `position` message to end a frame with (the session settled at the view's position), or
   * null when none may be announced now (see SessionDelivery.settled).
   */
  position?(heartbeat?: boolean): string | null; // heartbeat: not held back by the interval
  /** Writing to the socket failed (the connection is broken). */
  sendFailed(err: Error): void;
  /** Serving the session threw (a bug): close it alone (1011) and log it. */
  deliveryFailed(err: unknown): void;
}

/** What the output uses of its socket (ws's WebSocket is one). */
export interface OutputSocket {
  readonly readyState: number;
  readonly OPEN: number;
  /** Bytes the socket has not written yet. */
  readonly bufferedAmount: number;
  /** `written` is called once the data has been handed to the operating system (ws passes it to the socket's write). */
  send(data: string | Buffer, options: { binary: boolean }, written?: (err?: Error) => void): void;
}

export interface OutputContext {
  readonly view: TopicView;
  readonly fanOut: FanOut;
  readonly stats: DistributionStats;
  readonly sendQueueBytes: number;
  readonly delivery: DeliveryOptions;
}

export interface OutputDepth {
  messages: number;
  bytes: number;
  /** Topics with a merged or throttled update (or a client holding an older version). */
  topics: number;
  behind: boolean;
  /** Bytes the socket has not written yet. */
  socketBytes: number;
}

const TEXT = { binary: false } as const;

/**
 * What a session's delivery uses of its output, its owner and its socket: one object with its
 * methods on the prototype, where an object of arrow functions would cost every session eleven
 * closures (each with a property dictionary under tsx, esbuild's keepNames: ~3 KiB a session).
 */
class OutputPort implements DeliveryPort {
  readonly view: TopicView;
  readonly stats: DistributionStats;

  constructor(
    private readonly output: SessionOutput,
    private readonly owner: OutputOwner,
    private readonly ws: OutputSocket,
    ctx: OutputContext,
  ) {
    this.view = ctx.view;
    this.stats = ctx.stats;
  }

  permissions(): PermissionSet | null {
    return this.owner.permissions;
  }

  subscriptions(): Iterable<Subscription> {
    return this.owner.liveSubscriptions();
  }

  backlog(): number {
    return this.ws.bufferedAmount;
  }

  queuedBytes(): number {
    return this.output.queuedBytes;
  }

  enqueue(wire: string, ctx: ChangeContext): void {
    this.owner.enqueue(wire, Buffer.byteLength(wire), ctx.batch, ctx.seq);
  }

  push(wire: string): void {
    this.output.push(wire, Buffer.byteLength(wire));
  }

  group(seq: number): void {
    this.output.group(seq);
  }

  requestFlush(): void {
    this.output.requestFlush();
  }

  overflow(why: string): void {
    this.owner.overflow(why);
  }

  simple(simple: boolean): void {
    this.output.setSimple(simple);
  }

  failed(err: unknown): void {
    this.owner.deliveryFailed(err);
  }
}
const QUEUE_FULL = 'send queue full: read faster or subscribe to less';

export class SessionOutput {
  /** Set by dispose(): nothing is queued any more. */
  private closed = false;
  readonly delivery: SessionDelivery;
  private readonly queue: SessionQueue;
  /** True while a subscription's answer goes out in pages: every change needs the session's own decision. */
  private paging = false;
  /** Replies held back while a source transaction is applied in parts (see send). */
  private afterTransaction: string[] | null = null;
  /** Called once the socket's backlog is at most `drainedBytes` (see whenDrained). */
  private drained: (() => void) | null = null;
  private drainedBytes = 0;
  /** ws's callback once a frame is handed to the socket. */
  private readonly written: (err?: Error) => void;

  constructor(
    private readonly owner: OutputOwner,
    private readonly ws: OutputSocket,
    private readonly ctx: OutputContext,
  ) {
    this.queue = owner.queue;
    // Assigned, not a class field: a field's arrow function would get a name of its own, which
    // costs every session a property dictionary under tsx (esbuild's keepNames); see OutputPort.
    this.written = (err?: Error): void => {
      if (err === undefined || err === null) this.checkDrained();
    };
    this.delivery = new SessionDelivery(new OutputPort(this, owner, ws, ctx), ctx.delivery);
  }

  /** @internal OutputPort: whether fan-out's fast path may serve the session changed. */
  setSimple(simple: boolean): void {
    this.owner.simple = simple && !this.paging;
  }

  /** @internal OutputPort: bytes queued and not yet handed to the socket. */
  get queuedBytes(): number {
    return this.queue.bytes;
  }

  /**
   * A subscription's answer goes out in pages (on) or is complete (off). While on, fan-out hands
   * every change to the session (`simple` false), which skips those of topics still waiting for
   * their page.
   */
  setPaging(on: boolean): void {
    this.paging = on;
    this.owner.simple = this.delivery.simple && !on;
  }

  /**
   * Calls `then` once what is queued now has been written to the socket and its backlog is at
   * most `bytes`: the flow control of paged answers, so a page is queued only when the client
   * has read the one before (never the whole answer into the send queue).
   */
  whenDrained(bytes: number, then: () => void): void {
    this.drained = then;
    this.drainedBytes = bytes;
    if (this.queue.length > 0) this.requestFlush();
    else this.checkDrained();
  }

  private checkDrained(): void {
    const then = this.drained;
    if (then === null || this.closed) return;
    // Not yet: a later flush's frames carry the callback again (flush).
    if (this.queue.length > 0 || this.ws.bufferedAmount > this.drainedBytes) return;
    this.drained = null;
    then();
  }

  /** A message that stands on its own (a reply), after whatever merged topic updates are due (so a `pong` still follows everything before it). */
  send(wire: string): void {
    if (this.ctx.fanOut.continuing) {
      // Inside a source transaction applied in parts, a reply would cut its group in two: it
      // follows the transaction instead (nothing is flushed before the transaction ends anyway).
      (this.afterTransaction ??= []).push(wire);
      return;
    }
    this.releaseDue();
    this.queue.ungroup();
    this.owner.groupBatch = -1;
    this.push(wire, Buffer.byteLength(wire));
  }

  /** The transaction applied in parts is whole: the replies held back meanwhile go out, in order. */
  transactionEnded(): void {
    const held = this.afterTransaction;
    if (held === null) return;
    this.afterTransaction = null;
    for (const wire of held) this.send(wire);
  }

  /** A message of the group opened by group(). */
  push(wire: string, bytes: number): void {
    if (this.closed) return;
    if (!this.queue.push(wire, bytes)) {
      this.owner.overflow(QUEUE_FULL);
      return;
    }
    this.requestFlush();
  }

  /** Opens a group of messages that must arrive together (a subscribe answer, a permission change's values). */
  group(seq = this.ctx.view.position): void {
    this.releaseDue();
    this.queue.group(seq);
    this.owner.groupBatch = this.ctx.fanOut.batch;
  }

  /** Writes everything pending as one frame (several past MAX_FRAME_CHARS, never inside a group unless it alone is larger). */
  flush(encoder: FrameEncoder): void {
    this.owner.flushPending = false;
    if (this.closed) return;
    // Not while the client is behind: its topics keep merging until it reads (conflate policy).
    if (!this.delivery.gate()) return;
    this.delivery.release();
    if (this.closed) return;
    if (this.queue.length > 0) this.announce();
    const bytes = this.queue.bytes;
    const batch = this.queue.take();
    if (batch === null) {
      this.owner.overflow(QUEUE_FULL);
      return;
    }
    if (batch.items.length === 0) return;
    // The client started closing: what was pending is for a connection that is going away.
    if (this.ws.readyState !== this.ws.OPEN) return;
    let frames = 0;
    const { items } = batch;
    try {
      const waiting = this.drained !== null;
      const held: { frame: string | Buffer | null } = { frame: null };
      forEachFrame(batch, (start, end, prefix) => {
        if (held.frame !== null) this.ws.send(held.frame, TEXT);
        held.frame = encoder.encode(items, start, end, prefix);
        frames++;
      }, MAX_FRAME_CHARS, bytes);
      // Only the last frame tells when it was written: the ones before it were written first.
      if (held.frame !== null) {
        if (waiting) this.ws.send(held.frame, TEXT, this.written);
        else this.ws.send(held.frame, TEXT);
      }
    } catch (err) {
      this.owner.sendFailed(err as Error);
      return;
    }
    const stats = this.ctx.stats;
    stats.framesOut += frames;
    stats.messagesOut += items.length;
    stats.bytesOut += bytes + items.length + frames;
    this.delivery.afterFlush();
  }

  depth(): OutputDepth {
    const d = this.delivery;
    return { messages: this.queue.length, bytes: this.queue.bytes, topics: d.pending.size, behind: d.behind, socketBytes: this.ws.bufferedAmount };
  }

  /** Drops everything pending (the session is closing). */
  dispose(): void {
    this.closed = true;
    this.drained = null;
    this.queue.clear();
    this.delivery.dispose();
  }

  /**
   * Ends what is queued with the position the client will hold once it applied it, when the
   * session is settled there (and it moved since the last one announced).
   */
  announce(heartbeat = false): boolean {
    // Not inside a transaction applied in parts: the position is announced once it is whole.
    if (this.ctx.fanOut.continuing) return false;
    const wire = this.owner.position?.(heartbeat) ?? null;
    if (wire === null) return false;
    this.queue.ungroup();
    this.owner.groupBatch = -1;
    this.push(wire, wire.length);
    return true;
  }

  /** Puts the session in the next flush round (once). */
  requestFlush(): void {
    if (!this.owner.flushPending && !this.closed) {
      this.owner.flushPending = true;
      this.owner.scheduleFlush();
    }
  }

  private releaseDue(): void {
    if (this.delivery.pending.readyCount > 0) this.delivery.release();
  }
}
