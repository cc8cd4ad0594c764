/**
 * Batches sends: sessions with pending messages wait here and are flushed together every
 * `intervalMs` (on the next turn of the event loop when 0), each as one frame. One timer per
 * server, armed only while some session has something pending, so an idle server does not wake.
 */
import { FrameEncoder } from './frame-encoder.ts';

/** What the scheduler flushes (a session): writes its pending messages, identical frames encoded once through `encoder`. */
export interface FlushTarget {
  flush(encoder: FrameEncoder): void;
}

export class FlushScheduler {
  private pending: FlushTarget[] = [];
  private timer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  private readonly encoder = new FrameEncoder();
  private readonly run = (): void => this.flush();
  private held = false;

  constructor(readonly intervalMs: number) {}

  /** The session has pending messages (callers mark `session.flushPending` so this is called once per round). */
  schedule(session: FlushTarget): void {
    this.pending.push(session);
    if (this.timer === null && !this.held) this.arm();
  }

  /**
   * Flushes nothing until `release`: a source transaction is being applied in parts, and what is
   * pending now may hold a part of it (ChangeBatch.continues).
   */
  hold(): void {
    this.held = true;
  }

  /** Ends `hold`: every session that waited meanwhile is flushed at the next round. */
  release(): void {
    this.held = false;
    if (this.timer === null && this.pending.length > 0) this.arm();
  }

  private arm(): void {
    this.timer = this.intervalMs === 0 ? setImmediate(this.run) : setTimeout(this.run, this.intervalMs);
  }

  /** Flushes every waiting session now (unless held: then at the release). */
  flush(): void {
    this.timer = null;
    if (this.held) return;
    const sessions = this.pending;
    this.pending = [];
    try {
      for (const s of sessions) s.flush(this.encoder);
    } finally {
      this.encoder.reset();
    }
  }

  stop(): void {
    if (this.timer !== null) {
      if (this.intervalMs === 0) clearImmediate(this.timer as NodeJS.Immediate);
      else clearTimeout(this.timer as NodeJS.Timeout);
      this.timer = null;
    }
    this.pending = [];
  }
}
