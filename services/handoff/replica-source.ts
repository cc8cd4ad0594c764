/**
 * An edge node's one source: its KafkaReplica reading the hand-off log, seen by the composition
 * root as a Source (core/ingest.ts), so readiness, /health and the source-state metric treat it
 * as they treat Postgres or Kafka. `start` resolves once the replica has applied the log up to the
 * end offset it had at start and holds at least one batch (what `/ready` waits for; subscribes
 * wait too, for the first complete state). Not before a first batch: the epoch clients resume in
 * comes with the batches, and a replica that served its own would change it under its clients at
 * the first one (an empty log: the ingest node has read nothing yet). A replica that stopped (`KafkaReplica.stopped`) is `failed` and never recovers by itself.
 */
import type { Source, SourceHealth } from '../../core/ingest.ts';
import type { TopicStore } from '../topics/topic-store.ts';
import type { InProcessHandoffOptions } from './handoff.ts';
import type { HandoffLog } from './handoff-log.ts';
import { KafkaReplica } from './kafka-handoff.ts';

export interface ReplicaSourceOptions extends InProcessHandoffOptions {
  /** The hand-off topic's name, for health's words. */
  readonly topic: string;
  /** The replica stopped (KafkaReplicaOptions.onStopped); it is `failed` from then on. */
  readonly onStopped: (err: Error, offset: string | undefined) => void;
}

/** How far an edge is behind the hand-off log, in records. */
export interface ReplicaLag {
  /** The offset after the last batch applied. */
  readonly offset: string;
  /** The log's end as last known: at start, then at each fetch. */
  readonly end: string;
  /** Records between the two (0 when caught up). */
  readonly behind: number;
  /**
   * While records wait (behind > 0): how old the last batch applied is, in seconds since the log
   * took it — how far behind the ingest node the state clients get is. 0 when caught up.
   */
  readonly seconds: number;
}

type Phase = 'idle' | 'starting' | 'catching-up' | 'streaming' | 'stopped';

export class ReplicaSource implements Source {
  readonly name = 'handoff';
  /** The edge's hand-off: the distribution server subscribes to it. */
  readonly replica: KafkaReplica;
  private readonly topic: string;
  private phase: Phase = 'idle';
  private endAtStart = 0n;
  private waiting: { resolve: () => void; reject: (err: Error) => void } | null = null;

  constructor(
    store: TopicStore,
    private readonly log: HandoffLog,
    options: ReplicaSourceOptions,
  ) {
    this.topic = options.topic;
    this.replica = new KafkaReplica(store, {
      onListenerError: options.onListenerError,
      onStopped: (err, offset) => {
        options.onStopped(err, offset);
        this.settle();
      },
    });
    this.replica.subscribe(() => this.settle());
  }

  /** Reads the log from where this replica stands (its start, the first time) and resolves once caught up with the end at start. */
  async start(): Promise<void> {
    this.phase = 'starting';
    this.endAtStart = BigInt(await this.log.end());
    this.phase = 'catching-up';
    const caughtUp = new Promise<void>((resolve, reject) => (this.waiting = { resolve, reject }));
    try {
      await this.replica.start(this.log, this.replica.offset);
    } catch (err) {
      this.waiting = null;
      throw err;
    }
    this.settle();
    await caughtUp;
  }

  async stop(): Promise<void> {
    this.phase = 'stopped';
    this.waiting?.reject(new Error('the edge was stopped before it caught up with the hand-off log'));
    this.waiting = null;
    await this.replica.close();
  }

  lag(): ReplicaLag {
    const offset = this.replica.offset;
    const fetched = BigInt(this.replica.position?.end ?? '0');
    const end = fetched > this.endAtStart ? fetched : this.endAtStart;
    const behind = end - BigInt(offset);
    if (behind <= 0n) return { offset, end: String(end), behind: 0, seconds: 0 };
    const at = this.replica.appliedTimestamp;
    const seconds = at === null ? 0 : Math.max(0, (Date.now() - at) / 1000);
    return { offset, end: String(end), behind: Number(behind), seconds };
  }

  health(): SourceHealth {
    const stopped = this.replica.stopped;
    if (stopped) {
      return { name: this.name, state: 'failed', detail: `stopped applying the hand-off topic ${this.topic} at offset ${this.replica.offset} (${stopped.message}): restart this edge to rebuild its state from the log` };
    }
    switch (this.phase) {
      case 'idle':
      case 'starting':
        return { name: this.name, state: 'starting', detail: `reading the end offset of the hand-off topic ${this.topic}` };
      case 'catching-up':
        if (this.endAtStart === 0n) return { name: this.name, state: 'snapshotting', detail: `waiting for the ingest node's first batch on the hand-off topic ${this.topic} (the epoch comes with it)` };
        return { name: this.name, state: 'snapshotting', detail: `catching up: ${this.lag().behind} record(s) behind the end offset at start (${this.endAtStart}) of the hand-off topic ${this.topic}` };
      case 'streaming':
        return { name: this.name, state: 'streaming' };
      case 'stopped':
        return { name: this.name, state: 'stopped' };
    }
  }

  /** Ends the wait of `start` once the replica caught up with the end at start, or stopped. */
  private settle(): void {
    const waiting = this.waiting;
    if (!waiting) return;
    const stopped = this.replica.stopped;
    if (stopped) {
      this.waiting = null;
      waiting.reject(stopped);
    } else if (this.phase === 'catching-up' && BigInt(this.replica.offset) >= this.endAtStart && this.replica.view.position > 0) {
      this.waiting = null;
      this.phase = 'streaming';
      waiting.resolve();
    }
  }
}
