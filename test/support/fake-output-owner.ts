/**
 * A session as its SessionOutput sees it (OutputOwner), and as fan-out sees it (DeliveryTarget):
 * the fake port for session-output's unit tests, in place of a Session (which needs a ws socket
 * and a server). It records what the output asks of its session; its queue is a real SessionQueue.
 */
import type { ChangeContext, DeliveryTarget, Subscription, SubscriptionGatherer } from '../../services/distribution/fan-out.ts';
import type { OutputOwner, SessionOutput } from '../../services/distribution/session-output.ts';
import { SessionQueue, type SocketBacklog } from '../../services/distribution/session-queue.ts';
import type { PermissionSet } from '../../services/security/permission-set.ts';
import type { TopicChange } from '../../core/topic.ts';

export interface FakeOwnerOptions {
  /** The send queue's limit (pending plus socket backlog). */
  readonly sendQueueBytes: number;
  readonly backlog: SocketBacklog;
  /** Pending bytes from which the queue records group boundaries; SessionQueue's default unless given (0: always). */
  readonly groupFromBytes?: number;
}

export class FakeOutputOwner implements OutputOwner, DeliveryTarget {
  readonly queue: SessionQueue;
  flushPending = false;
  groupBatch = -1;
  simple = true;
  lastChange = 0;
  gatherStamp = 0;
  readonly scope = null;
  readonly permissions: PermissionSet | null = null;
  readonly subscriptions: Subscription[] = [];
  /** scheduleFlush() calls. */
  scheduled = 0;
  /** overflow() reasons, in order. */
  readonly overflows: string[] = [];
  readonly sendFailures: Error[] = [];
  readonly deliveryFailures: unknown[] = [];
  private out: SessionOutput | null = null;

  constructor(options: FakeOwnerOptions) {
    this.queue = options.groupFromBytes === undefined
      ? new SessionQueue(options.sendQueueBytes, options.backlog)
      : new SessionQueue(options.sendQueueBytes, options.backlog, options.groupFromBytes);
  }

  /** The output this owner owns (built with the owner, so set once right after). */
  set output(output: SessionOutput) {
    this.out = output;
  }

  get output(): SessionOutput {
    if (!this.out) throw new Error('FakeOutputOwner: set output first');
    return this.out;
  }

  get gathering(): SubscriptionGatherer {
    return this.output.delivery;
  }

  liveSubscriptions(): Iterable<Subscription> {
    return this.subscriptions;
  }

  scheduleFlush(): void {
    this.scheduled++;
  }

  /** The OutputOwner contract, as Session keeps it: a new batch opens a group of its own; over the limit, overflow. */
  enqueue(wire: string, bytes: number, batch: number, seq: number): void {
    if (this.groupBatch !== batch) {
      this.groupBatch = batch;
      this.queue.group(seq);
    }
    if (!this.queue.push(wire, bytes)) {
      this.overflow('send queue full');
      return;
    }
    if (!this.flushPending) {
      this.flushPending = true;
      this.scheduleFlush();
    }
  }

  deliverGathered(change: TopicChange, segments: readonly string[], ctx: ChangeContext): void {
    this.output.delivery.deliver(change, segments, ctx);
  }

  overflow(why: string): void {
    this.overflows.push(why);
  }

  sendFailed(err: Error): void {
    this.sendFailures.push(err);
  }

  deliveryFailed(err: unknown): void {
    this.deliveryFailures.push(err);
  }
}
