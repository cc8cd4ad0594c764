/**
 * One session's pending messages: pre-serialized wire strings (shared between every session that
 * receives the same change) and their UTF-8 byte count, flushed as one JSON-array frame. The byte
 * limit covers what is pending here plus what the socket has not written yet, so a client that
 * stops reading is detected before it can make the server hold more than `limitBytes` for it.
 *
 * Messages are kept in groups that must reach the client together: the changes of one source
 * transaction, one subscription's answer, one slow client's merged catch-up. A frame only ever
 * ends between groups; a group too large for one frame is sent as consecutive frames that each
 * start with a `txn` message naming its part (docs/PROTOCOL.md, "Transactions").
 *
 * Group boundaries only matter once the queue nears a frame's size, so they are recorded only past
 * `groupFromBytes`: what comes before is one leading group (several transactions applied together
 * are still never half applied). Recording every transaction's boundary cost the fan-out fast path
 * measurably; this costs it one comparison.
 */
import { txnMessage } from './protocol.ts';

/** Returns the bytes the socket still has to write (ws's `bufferedAmount`). */
export type SocketBacklog = () => number;

/** Frames carry at most this many characters of messages; larger groups span several frames. */
export const MAX_FRAME_CHARS = 1 << 20;

/** Sequence number of a run of free-standing messages (replies, errors), which may be split anywhere. */
export const UNGROUPED = -1;

/** What take() hands over: the messages and where each group starts. */
export interface TakenBatch {
  readonly items: string[];
  /** Index of the first message of each group, ascending; messages before the first form a leading group. */
  readonly starts: readonly number[];
  /** Sequence number of each group (UNGROUPED for free-standing messages). */
  readonly seqs: readonly number[];
  /** Sequence number of the leading group (UNGROUPED when it holds free-standing messages only). */
  readonly lead?: number;
}

const NONE: readonly number[] = [];

export class SessionQueue {
  private items: string[] = [];
  private pendingBytes = 0;
  private starts: number[] = [];
  private seqs: number[] = [];
  /** Sequence number of the group(s) opened before boundaries were recorded. */
  private lead = UNGROUPED;
  /**
   * The socket backlog as last measured plus what was flushed since. Between flushes the backlog
   * can only shrink (nothing else writes to the socket), so this is an upper bound: the socket is
   * asked again only when the bound says the limit may be passed.
   */
  private socketEstimate = 0;

  constructor(
    readonly limitBytes: number,
    private readonly socketBacklog: SocketBacklog,
    /** Pending bytes from which group boundaries are recorded (0: always). */
    private readonly groupFromBytes = MAX_FRAME_CHARS / 2,
  ) {}

  /** UTF-8 bytes pending (not yet handed to the socket). */
  get bytes(): number {
    return this.pendingBytes;
  }

  get length(): number {
    return this.items.length;
  }

  /** Starts a group: the messages pushed until the next group() or ungroup() reach the client together. */
  group(seq: number): void {
    // Below groupFromBytes the groups pending are merged into one leading group: cheap, and
    // harmless between groups. Not after free-standing messages (`hello` first of all): merged,
    // they would be sent inside the group's parts, after its `txn` marker.
    if (this.pendingBytes < this.groupFromBytes && (this.lead !== UNGROUPED || this.items.length === 0)) {
      this.lead = seq;
      return;
    }
    const at = this.items.length;
    const last = this.starts.length - 1;
    if (last >= 0 && this.starts[last] === at) this.seqs[last] = seq;
    else {
      this.starts.push(at);
      this.seqs.push(seq);
    }
  }

  /** The current group (opened by group()) ends at batch `seq`: a later part of the same transaction joined it. */
  retag(seq: number): void {
    if (this.starts.length > 0) this.seqs[this.seqs.length - 1] = seq;
    else this.lead = seq;
  }

  /** Ends the current group: what is pushed next stands on its own. */
  ungroup(): void {
    if (this.pendingBytes < this.groupFromBytes) return;
    const last = this.seqs.length - 1;
    if (last < 0 || this.seqs[last] !== UNGROUPED) this.group(UNGROUPED);
  }

  /**
   * Queues one message of `bytes` UTF-8 bytes. Returns false when pending plus socket backlog is
   * over the limit: the caller must drop the session. The socket is only asked for its backlog
   * when the cheap estimate says the limit may be passed.
   */
  push(wire: string, bytes: number): boolean {
    this.items.push(wire);
    this.pendingBytes += bytes;
    if (this.pendingBytes + this.socketEstimate <= this.limitBytes) return true;
    this.socketEstimate = this.socketBacklog();
    return this.pendingBytes + this.socketEstimate <= this.limitBytes;
  }

  /**
   * Takes every pending message for sending, or returns null when pending plus socket backlog is
   * over the limit (the client is not reading: drop the session). Returns an empty batch when
   * nothing is pending.
   */
  take(): TakenBatch | null {
    const backlog = this.socketBacklog();
    if (backlog + this.pendingBytes > this.limitBytes) return null;
    const items = this.items;
    const taken: TakenBatch = this.starts.length === 0
      ? { items, starts: NONE, seqs: NONE, lead: this.lead }
      : { items, starts: this.starts, seqs: this.seqs, lead: this.lead };
    // The frame adds '[', ']' and one ',' between messages.
    this.socketEstimate = backlog + this.pendingBytes + items.length + 1;
    this.items = [];
    if (taken.starts !== NONE) {
      this.starts = [];
      this.seqs = [];
    }
    this.lead = UNGROUPED;
    this.pendingBytes = 0;
    return taken;
  }

  /** Drops everything pending (the session is closing). */
  clear(): void {
    this.items = [];
    this.starts = [];
    this.seqs = [];
    this.lead = UNGROUPED;
    this.pendingBytes = 0;
  }
}

const OPEN = 0x5b; // [
const COMMA = 0x2c;
const CLOSE = 0x5d; // ]

/**
 * One frame, a JSON array of `prefix` (if any) and the messages items[start, end), as UTF-8: each
 * message written straight into one Buffer of the exact size.
 * Handing ws the text instead cost three passes over every character (the join, ws's byteLength
 * of the joined text, the socket's own encoding): a fifth of the server's CPU in a 1M-topic
 * subscription load (bench/subscription-profile.ts), against one here.
 */
export function frameBuffer(items: readonly string[], start = 0, end = items.length, prefix: string | null = null): Buffer {
  // '[' and ']', and a ',' between messages.
  let size = end - start + 1;
  if (prefix !== null) size += Buffer.byteLength(prefix) + 1;
  for (let i = start; i < end; i++) size += Buffer.byteLength(items[i]);
  const buf = Buffer.allocUnsafe(size);
  buf[0] = OPEN;
  let at = 1;
  if (prefix !== null) {
    at += buf.write(prefix, at);
    buf[at++] = COMMA;
  }
  for (let i = start; i < end; i++) {
    if (i > start) buf[at++] = COMMA;
    at += buf.write(items[i], at);
  }
  buf[at] = CLOSE;
  return buf;
}

export type FrameEmitter = (start: number, end: number, prefix: string | null) => void;

/**
 * Splits a batch into frames of at most maxChars characters each, in order, never inside a group
 * unless the group alone is larger than a frame: then the group gets frames of its own, each
 * opened by a `txn` part marker (prefix). A single message larger than a frame gets a frame of
 * its own. `bytes` (UTF-8, never fewer than characters) lets the common case skip the count.
 */
export function forEachFrame(batch: TakenBatch, emit: FrameEmitter, maxChars = MAX_FRAME_CHARS, bytes = Infinity): void {
  const { items } = batch;
  const n = items.length;
  if (n === 0) return;
  if (bytes + n + 1 <= maxChars) {
    emit(0, n, null);
    return;
  }
  let { starts, seqs } = batch;
  if (starts.length === 0 || starts[0] !== 0) {
    starts = [0, ...starts];
    seqs = [batch.lead ?? UNGROUPED, ...seqs];
  }
  let frameStart = 0;
  let chars = 0;
  for (let g = 0; g < starts.length; g++) {
    const s = starts[g];
    const e = g + 1 < starts.length ? starts[g + 1] : n;
    if (s === e) continue;
    let groupChars = 0;
    for (let i = s; i < e; i++) groupChars += items[i].length + 1;
    if (chars + groupChars <= maxChars) {
      chars += groupChars;
      continue;
    }
    if (s > frameStart) emit(frameStart, s, null);
    frameStart = s;
    chars = 0;
    if (groupChars <= maxChars) {
      chars = groupChars;
      continue;
    }
    if (seqs[g] === UNGROUPED) splitFree(items, s, e, maxChars, emit);
    else splitParts(items, s, e, seqs[g], maxChars, emit);
    frameStart = e;
  }
  if (frameStart < n) emit(frameStart, n, null);
}

/** Free-standing messages: cut wherever the frame is full. */
function splitFree(items: readonly string[], s: number, e: number, maxChars: number, emit: FrameEmitter): void {
  let start = s;
  let chars = 0;
  for (let i = s; i < e; i++) {
    const len = items[i].length + 1;
    if (chars + len > maxChars && i > start) {
      emit(start, i, null);
      start = i;
      chars = 0;
    }
    chars += len;
  }
  if (start < e) emit(start, e, null);
}

/** One group over several frames, each opened by its part marker. */
function splitParts(items: readonly string[], s: number, e: number, seq: number, maxChars: number, emit: FrameEmitter): void {
  // Room for the marker itself (its text grows with the numbers; 64 characters is plenty).
  const room = maxChars - 64;
  const cuts: number[] = [s];
  let chars = 0;
  for (let i = s; i < e; i++) {
    const len = items[i].length + 1;
    if (chars + len > room && i > cuts[cuts.length - 1]) {
      cuts.push(i);
      chars = 0;
    }
    chars += len;
  }
  cuts.push(e);
  const parts = cuts.length - 1;
  if (parts === 1) {
    emit(s, e, null);
    return;
  }
  for (let p = 0; p < parts; p++) emit(cuts[p], cuts[p + 1], txnMessage(seq, p + 1, parts));
}
