/**
 * Routes hand-off batches to sessions. One SelectorIndex holds every subscription of every
 * session, so the sessions interested in a change are found by walking its path once. The change's
 * wire text was serialized once by the topic store; each session gets a reference to the same
 * string, and a change matched by several subscriptions of one session is queued once.
 */
import { SelectorIndex } from '../topics/selector-index.ts';
import type { ChangeBatch } from '../topics/topic-store.ts';
import type { Subscription } from './session.ts';

export class FanOut {
  readonly index = new SelectorIndex<Subscription>();
  /** Grows by one per change; a session remembers the last stamp it was given. */
  private stamp = 0;
  private wire = '';
  private bytes = -1;
  // Bound once, so matching allocates no closure per change.
  private readonly visit = (sub: Subscription): void => {
    const session = sub.session;
    if (session.lastChange === this.stamp) return;
    session.lastChange = this.stamp;
    if (this.bytes < 0) this.bytes = Buffer.byteLength(this.wire);
    session.enqueue(this.wire, this.bytes);
  };

  /** Queues every change of the batch for every session subscribed to its path, in order. */
  deliver(batch: ChangeBatch): void {
    if (this.index.size === 0) return;
    for (const change of batch.changes) {
      this.stamp++;
      this.wire = change.wire;
      this.bytes = -1;
      this.index.match(change.topic.path.split('/'), this.visit);
    }
    this.wire = '';
  }
}
