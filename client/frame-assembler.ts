/**
 * Puts together the parts of a group the server had to spread over several frames (a large
 * transaction, a subscription's answer, a slow client's catch-up), so the client applies the
 * group as a whole: a dashboard never shows half a transaction. Each part opens with
 * `{"type":"txn","seq":…,"part":k,"parts":n}` and parts arrive in consecutive frames.
 */
import type { ServerMessage, TxnMessage } from '../core/messages.ts';
import { FrameError } from './frames.ts';

export class FrameAssembler {
  private seq = -1;
  private next = 0;
  private held: ServerMessage[] = [];

  /** True while parts of a group are missing. */
  get waiting(): boolean {
    return this.next > 0;
  }

  /**
   * The messages to apply now: the frame itself, or every part of a group once its last part is
   * here; null while parts are missing. Throws FrameError when parts arrive out of order (the
   * messages held so far are dropped: the caller must fetch its state again).
   */
  accept(messages: ServerMessage[]): ServerMessage[] | null {
    const first = messages[0];
    if (first === undefined || first.type !== 'txn') {
      if (this.waiting) {
        this.reset();
        throw new FrameError('a frame arrived in the middle of a transaction\'s parts');
      }
      return messages;
    }
    const txn = first as TxnMessage;
    const rest = messages.slice(1);
    if (txn.part === 1) {
      const cut = this.waiting;
      this.reset();
      if (cut) throw new FrameError('a transaction\'s parts were cut short');
      if (txn.parts <= 1) return rest;
      this.seq = txn.seq;
      this.next = 2;
      this.held = rest;
      return null;
    }
    if (!this.waiting || txn.seq !== this.seq || txn.part !== this.next) {
      this.reset();
      throw new FrameError(`transaction ${txn.seq} part ${txn.part} arrived out of order`);
    }
    for (const m of rest) this.held.push(m);
    if (txn.part < txn.parts) {
      this.next++;
      return null;
    }
    const all = this.held;
    this.reset();
    return all;
  }

  reset(): void {
    this.seq = -1;
    this.next = 0;
    this.held = [];
  }
}
