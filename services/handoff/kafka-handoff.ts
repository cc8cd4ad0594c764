/**
 * The hand-off through a log (issue #15): the ingest node's `KafkaHandoff` writes every batch to
 * the hand-off log and hands it to its own listeners as the in-process hand-off does; an edge's
 * `KafkaReplica` reads the log from an offset, joins each batch's parts, applies the batch to a
 * replica TopicStore with the versions it carries, and hands the resulting batch — the same seq,
 * versions and wire text as on the ingest node — to its listeners. Distribution reads either as
 * a `Handoff` and cannot tell them from the in-process one.
 *
 * Guarantees: batches reach the log, and an edge's listeners, in the order they were published;
 * publish() resolves once the log holds every part of the batch; a batch is applied on an edge
 * only whole, and a record that is not a hand-off record, or a batch that does not fit the state
 * the edge holds (a gap), stops the edge at the last batch it applied — never a guessed state.
 */
import type { ChangeBatch, TopicView } from '../../core/topic.ts';
import type { TopicStore } from '../topics/topic-store.ts';
import { type BatchOrigin, type Handoff, type HandoffReceipt, InProcessHandoff, type InProcessHandoffOptions } from './handoff.ts';
import { HandoffError } from './handoff-error.ts';
import type { HandoffLog, HandoffLogPosition, HandoffLogReader, HandoffLogRecord, HandoffLogWriter } from './handoff-log.ts';
import { BatchAssembler, DEFAULT_MAX_RECORD_BYTES, decodeRecord, encodeBatch } from './log-record.ts';

export interface KafkaHandoffOptions extends InProcessHandoffOptions {
  /** Largest record value written; a larger batch is split into parts. Default 512 KiB (log-record.ts). */
  readonly maxRecordBytes?: number;
  /** The name of the receipts' position (logPositionName of the topic). Default `handoff`. */
  readonly positionName?: string;
  /** Backoff between retries of an append that failed retriably. Default 250 ms doubling to 2 s. */
  readonly retry?: { readonly initialMs?: number; readonly maxMs?: number };
  /** The log stopped taking appends and they are being retried (called once per outage). */
  readonly onRetrying?: (err: HandoffError) => void;
  /** The log takes appends again after an outage. */
  readonly onRecovered?: () => void;
}

/** The name under which an ingest node's durable state stores how far the hand-off log on `topic` holds its batches. */
export function logPositionName(topic: string): string {
  return `handoff:${topic}`;
}

interface Queued {
  readonly value: Buffer;
  /** On the last record of a batch: when it was published (performance.now()), for the publish latency. */
  readonly at?: number;
  /** On the last record of a batch: settles that batch's publish(). */
  readonly settle?: { readonly resolve: (receipt: HandoffReceipt) => void; readonly reject: (err: Error) => void };
}

/**
 * The ingest side. Listeners on this node get each batch at once, as with the in-process hand-off
 * (its view has applied the batch already, so they must not wait for Kafka); the log gets it as
 * soon as the previous append is acknowledged. Batches published while an append is in flight go
 * out together in the next one (up to `maxRecordBytes` of values per append), so the log keeps up
 * with many small transactions at one round trip per append, not per batch.
 *
 * publish() resolves with the offset after the batch's last record (`positionName`), which the
 * ingest node's durable state stores with the batch: its restart reads the log from there
 * (log-recovery.ts). Each record carries the batch's source position and row index writes.
 *
 * An append that fails retriably (the broker restarting, a leader moving) is retried, in order,
 * with backoff, until the log takes it: publishes wait meanwhile (the pipeline holds its sources
 * back once too much is not in the log). One that fails otherwise leaves a hole no later batch may
 * be written after: it fails that batch's publish() and every one after it
 * (HANDOFF_PUBLISH_FAILED), and the ingest node has to start again from what the log holds.
 */
export class KafkaHandoff implements Handoff {
  readonly keepsLog = true;
  private readonly local: InProcessHandoff;
  private readonly maxRecordBytes: number;
  private readonly positionName: string;
  private queue: Queued[] = [];
  private appending = false;
  private failure: HandoffError | null = null;
  private _retrying: HandoffError | null = null;
  private closing = false;
  private readonly retry: { readonly initialMs: number; readonly maxMs: number };
  private readonly onRetrying: (err: HandoffError) => void;
  private readonly onRecovered: () => void;
  /** Called with each batch's publish latency in seconds (publish() to the log's acknowledgement); set by the composition root's metrics. */
  onPublished: ((seconds: number) => void) | null = null;

  constructor(
    readonly view: TopicView,
    private readonly writer: HandoffLogWriter,
    options: KafkaHandoffOptions = {},
  ) {
    this.local = new InProcessHandoff(view, options);
    this.maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
    this.positionName = options.positionName ?? 'handoff';
    this.retry = { initialMs: options.retry?.initialMs ?? 250, maxMs: options.retry?.maxMs ?? 2_000 };
    this.onRetrying = options.onRetrying ?? (() => {});
    this.onRecovered = options.onRecovered ?? (() => {});
  }

  /** Opens a writer on `log` for a publishing hand-off. */
  static async open(view: TopicView, log: HandoffLog, options: KafkaHandoffOptions = {}): Promise<KafkaHandoff> {
    return new KafkaHandoff(view, await log.openWriter(), options);
  }

  publish(batch: ChangeBatch, origin?: BatchOrigin): Promise<HandoffReceipt> {
    void this.local.publish(batch);
    if (this.failure) return Promise.reject(this.failure);
    let values: Buffer[];
    try {
      values = encodeBatch(batch, this.maxRecordBytes, origin);
    } catch (err) {
      this.fail(err, batch.seq);
      return Promise.reject(this.failure);
    }
    return new Promise<HandoffReceipt>((resolve, reject) => {
      for (let i = 0; i < values.length - 1; i++) this.queue.push({ value: values[i] });
      this.queue.push({ value: values[values.length - 1], at: performance.now(), settle: { resolve, reject } });
      void this.drain();
    });
  }

  subscribe(listener: (batch: ChangeBatch) => void): () => void {
    return this.local.subscribe(listener);
  }

  /** Why the log takes no more batches (HANDOFF_PUBLISH_FAILED); null while it takes them. */
  get failed(): HandoffError | null {
    return this.failure;
  }

  /** Why appends are being retried (the log does not take them now); null while they are taken. */
  get retrying(): HandoffError | null {
    return this._retrying;
  }

  /**
   * Resolves once everything published was appended (or failed), then closes the writer. An
   * append being retried is tried once more, and fails for good if that fails too.
   */
  async close(): Promise<void> {
    this.closing = true;
    while (this.appending || this.queue.length > 0) await new Promise((r) => setImmediate(r));
    await this.writer.close();
  }

  private async drain(): Promise<void> {
    if (this.appending) return;
    this.appending = true;
    try {
      while (this.queue.length > 0 && this.failure === null) {
        let bytes = this.queue[0].value.length;
        let n = 1;
        while (n < this.queue.length && bytes + this.queue[n].value.length <= this.maxRecordBytes) bytes += this.queue[n++].value.length;
        const sending = this.queue.slice(0, n);
        this.queue = this.queue.slice(n);
        const base = await this.appendRetrying(sending.map((q) => q.value));
        if (base === undefined) {
          for (const q of sending) q.settle?.reject(this.failure!);
          break;
        }
        const now = performance.now();
        for (let i = 0; i < sending.length; i++) {
          const q = sending[i];
          if (q.settle === undefined) continue;
          // The offset after the record: where the log continues past this batch.
          q.settle.resolve(base === null ? null : { name: this.positionName, position: String(BigInt(base) + BigInt(i) + 1n) });
          this.onPublished?.((now - q.at!) / 1000);
        }
      }
      for (const q of this.queue) q.settle?.reject(this.failure!);
      this.queue = [];
    } finally {
      this.appending = false;
    }
  }

  /**
   * Appends `values`; a retriable failure (the broker restarting, a leader moving) is retried with
   * the same producer, whose idempotence keeps an append that did land from landing twice, with
   * backoff, until it is taken or the hand-off closes. Resolves with the first record's offset,
   * or undefined once it failed for good (`failure` says why).
   */
  private async appendRetrying(values: readonly Buffer[]): Promise<string | null | undefined> {
    for (let delay = this.retry.initialMs; ; delay = Math.min(delay * 2, this.retry.maxMs)) {
      try {
        const base = await this.writer.append(values);
        if (this._retrying !== null) this.onRecovered();
        this._retrying = null;
        return base;
      } catch (err) {
        if (this.closing || !(err instanceof HandoffError) || !err.retriable) {
          this.fail(err);
          return undefined;
        }
        if (this._retrying === null) this.onRetrying(err);
        this._retrying = err;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private fail(err: unknown, seq?: number): void {
    if (this.failure) return;
    const what = seq === undefined ? 'a batch' : `batch ${seq}`;
    const why = err instanceof Error ? err.message : String(err);
    this.failure = new HandoffError(
      'HANDOFF_PUBLISH_FAILED',
      `the hand-off log did not take ${what} (${why}); no later batch is published after it: restart the ingest node`,
      { cause: err },
    );
  }
}

export interface KafkaReplicaOptions extends InProcessHandoffOptions {
  /**
   * The replica stopped: a record that is not a hand-off record, parts out of order, a batch that
   * does not fit the state held, or the log's reader failing. The view stays at the last batch
   * applied. `err` keeps its code (HandoffError's HANDOFF_*, ReplicaError's REPLICA_*); `offset` is
   * the record's that stopped it (absent: the reader failed). Default: a process warning (code TIDEWIRE_HANDOFF_REPLICA_STOPPED).
   */
  readonly onStopped?: (err: Error, offset: string | undefined) => void;
}

function warnStopped(err: Error, offset: string | undefined): void {
  const at = offset === undefined ? '' : ` at offset ${offset} of the hand-off log`;
  process.emitWarning(`the hand-off replica stopped${at}: ${err.stack ?? err.message}`, { code: 'TIDEWIRE_HANDOFF_REPLICA_STOPPED' });
}

/**
 * The edge side: topic state materialised from the log into `store` (a TopicStore that numbers
 * nothing itself, see TopicStore.replicate). Feed it records with `take` (what `start` wires to
 * a log reader); listeners get each batch once it is applied, synchronously, like the in-process
 * hand-off's.
 */
export class KafkaReplica implements Handoff {
  readonly keepsLog = false;
  private readonly local: InProcessHandoff;
  private readonly assembler = new BatchAssembler();
  private readonly onStopped: (err: Error, offset: string | undefined) => void;
  private reader: HandoffLogReader | null = null;
  private _stopped: Error | null = null;
  /** The offset after the last record taken. */
  private next = '0';
  /** When the log took the last record of the last batch applied (ms since the Unix epoch); null before one, or when the log does not say. */
  private takenAt: string | null = null;

  constructor(
    private readonly store: TopicStore,
    options: KafkaReplicaOptions = {},
  ) {
    this.local = new InProcessHandoff(store, options);
    this.onStopped = options.onStopped ?? warnStopped;
  }

  get view(): TopicView {
    return this.store;
  }

  /** Why the replica stopped taking records (see KafkaReplicaOptions.onStopped); null while it takes them. */
  get stopped(): Error | null {
    return this._stopped;
  }

  /** The reader's position: the next offset it reads and the log's end when it last fetched (absent before start). */
  get position(): HandoffLogPosition | null {
    return this.reader?.position ?? null;
  }

  /** Starts reading `log` at `offset` (the start of a batch; "0" for the whole log). */
  async start(log: HandoffLog, offset = '0'): Promise<void> {
    if (this.reader) throw new Error('KafkaReplica.start: already reading');
    this.next = offset;
    this.reader = await log.openReader(offset, { records: (records) => this.take(records), failed: (err) => this.stop(err) });
  }

  /** Stops reading. */
  async close(): Promise<void> {
    const reader = this.reader;
    this.reader = null;
    await reader?.close();
  }

  publish(batch: ChangeBatch): Promise<HandoffReceipt> {
    return Promise.reject(new HandoffError('HANDOFF_READ_ONLY', `an edge does not publish (batch ${batch.seq}): its batches come from the hand-off log; publish on the ingest node`));
  }

  subscribe(listener: (batch: ChangeBatch) => void): () => void {
    return this.local.subscribe(listener);
  }

  /** Applies records read from the log, in offset order. Ignored once the replica stopped. */
  take(records: readonly HandoffLogRecord[]): void {
    for (const r of records) {
      if (this._stopped) return;
      let applied: ChangeBatch | null = null;
      try {
        const batch = this.assembler.add(decodeRecord(r.value));
        if (batch) applied = this.store.replicate(batch);
      } catch (err) {
        this.stop(err instanceof Error ? err : new Error(String(err)), r.offset);
        return;
      }
      if (applied) {
        this.next = String(BigInt(r.offset) + 1n);
        this.takenAt = r.timestamp ?? null;
        void this.local.publish(applied);
      }
    }
  }

  /** The offset after the last batch applied: where reading this log again continues this state. */
  get offset(): string {
    return this.next;
  }

  /** When the log took the last batch applied (ms since the Unix epoch), or null (none yet, or the log does not say). */
  get appliedTimestamp(): number | null {
    return this.takenAt === null ? null : Number(this.takenAt);
  }

  private stop(err: Error, offset?: string): void {
    if (this._stopped) return;
    this._stopped = err;
    this.onStopped(err, offset);
  }
}
