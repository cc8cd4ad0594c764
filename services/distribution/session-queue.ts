/**
 * One session's pending messages: pre-serialized wire strings (shared between every session that
 * receives the same change) and their UTF-8 byte count, flushed as one JSON-array frame. The byte
 * limit covers what is pending here plus what the socket has not written yet, so a client that
 * stops reading is detected before it can make the server hold more than `limitBytes` for it.
 */

/** Returns the bytes the socket still has to write (ws's `bufferedAmount`). */
export type SocketBacklog = () => number;

/** Frames carry at most this many characters of messages; larger batches span several frames. */
export const MAX_FRAME_CHARS = 1 << 20;

export class SessionQueue {
  private items: string[] = [];
  private pendingBytes = 0;
  /**
   * The socket backlog as last measured plus what was flushed since. Between flushes the backlog
   * can only shrink (nothing else writes to the socket), so this is an upper bound: the socket is
   * asked again only when the bound says the limit may be passed.
   */
  private socketEstimate = 0;

  constructor(
    readonly limitBytes: number,
    private readonly socketBacklog: SocketBacklog,
  ) {}

  /** UTF-8 bytes pending (not yet handed to the socket). */
  get bytes(): number {
    return this.pendingBytes;
  }

  get length(): number {
    return this.items.length;
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
   * over the limit (the client is not reading: drop the session). Returns an empty array when
   * nothing is pending.
   */
  take(): string[] | null {
    const backlog = this.socketBacklog();
    if (backlog + this.pendingBytes > this.limitBytes) return null;
    const items = this.items;
    // The frame adds '[', ']' and one ',' between messages.
    this.socketEstimate = backlog + this.pendingBytes + items.length + 1;
    this.items = [];
    this.pendingBytes = 0;
    return items;
  }

  /** Drops everything pending (the session is closing). */
  clear(): void {
    this.items = [];
    this.pendingBytes = 0;
  }
}

/** The text of one frame: a JSON array of the messages items[start, end). */
export function frameText(items: readonly string[], start = 0, end = items.length): string {
  if (start === 0 && end === items.length) return `[${items.join(',')}]`;
  return `[${items.slice(start, end).join(',')}]`;
}

/**
 * Splits items into frame ranges of at most MAX_FRAME_CHARS characters each (a single larger
 * message gets a frame of its own). Calls `emit(start, end)` per frame, in order.
 */
export function forEachFrame(items: readonly string[], emit: (start: number, end: number) => void, maxChars = MAX_FRAME_CHARS): void {
  let start = 0;
  let chars = 0;
  for (let i = 0; i < items.length; i++) {
    const n = items[i].length + 1;
    if (chars + n > maxChars && i > start) {
      emit(start, i);
      start = i;
      chars = 0;
    }
    chars += n;
  }
  if (start < items.length) emit(start, items.length);
}
