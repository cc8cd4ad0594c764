/**
 * Applies one fetched batch of one partition: maps each record, copies bad records to the
 * dead-letter topic, hands the updates to the sink, and only then moves the partition's position
 * (and the client's resolved offset) past them. Records below the position are skipped: they are
 * in topic state already, and applying them again could move a value back in time.
 *
 * Each apply carries the partition's position after it (`kafka:<topic>/<partition>` → the next
 * offset): with durable state it is stored in the same state transaction as the updates, so a
 * restart resumes exactly after what the state holds. A partition being re-read hands its updates
 * to the re-read instead (topic-reread.ts), without a position: the re-read stores it at its end.
 */
import type { Logger } from 'pino';
import { errorMessage } from '../../core/errors.ts';
import type { TopicUpdate } from '../../core/topic.ts';
import type { IngestSink, SourcePosition } from '../../core/ingest.ts';
import { type BadRecord, DeadLetterTopic } from './dead-letter.ts';
import { KafkaConnectorError } from './errors.ts';
import type { BatchControl, KafkaBatch } from './kafka-client.ts';
import type { PartitionPositions } from './partition-positions.ts';
import { BAD_RECORD_REASONS, type BadRecordReason, type IgnoredReason, type TopicMappings } from './record-mapper.ts';
import type { TopicReread } from './topic-reread.ts';

/** Updates per sink.apply() call at most, so a huge fetch does not become one huge change batch. */
const MAX_UPDATES_PER_APPLY = 1000;
/** Bad-record log lines per reason: at most one per this interval, with a count of the ones left out. */
const BAD_LOG_INTERVAL_MS = 5_000;

export interface RecordCounts {
  /** Records read (not counting redeliveries of records already applied). */
  records: number;
  /** Records whose updates were applied to topic state. */
  applied: number;
  /** Records with a null value. */
  tombstones: number;
  ignored: Record<IgnoredReason, number>;
  bad: Record<BadRecordReason, number>;
  deadLettered: number;
  /** Records fetched again after a rebalance or restart and skipped: they were applied already. */
  redelivered: number;
}

export function newRecordCounts(): RecordCounts {
  return {
    records: 0,
    applied: 0,
    tombstones: 0,
    ignored: { tombstone: 0, 'unmappable-tombstone': 0, message: 0 },
    bad: Object.fromEntries(BAD_RECORD_REASONS.map((r) => [r, 0])) as Record<BadRecordReason, number>,
    deadLettered: 0,
    redelivered: 0,
  };
}

export class BatchApplier {
  readonly counts = newRecordCounts();
  /** Set once the dead-letter producer is connected; without it bad records are counted and logged only. */
  deadLetter: DeadLetterTopic | null = null;
  /** Set while some topics are re-read at start: their updates are held there, not applied. */
  reread: TopicReread | null = null;
  private readonly badLog = new Map<BadRecordReason, { at: number; suppressed: number }>();

  constructor(
    private readonly mappings: TopicMappings,
    private readonly sink: IngestSink,
    private readonly log: Logger,
  ) {}

  /**
   * Applies the batch. Returns true when it was handled to its end (the caller then commits the
   * position), false when the client said to stop part-way (stopping, revoked or sought).
   * Throws when the dead-letter topic or the sink fails: nothing past the failure is resolved.
   */
  async apply(batch: KafkaBatch, control: BatchControl, positions: PartitionPositions): Promise<boolean> {
    const { topic, partition } = batch;
    const p = positions.get(topic, partition);
    p.high = Math.max(p.high, Number(batch.highWatermark));
    const mapper = this.mappings.forTopic(topic)!; // subscribed topics all come from the mappings
    const counts = this.counts;
    const reread = this.reread?.covers(topic) ? this.reread : null;
    const at = (next: number): SourcePosition => ({ name: p.name, position: String(next) });
    let updates: TopicUpdate[] = [];
    let bad: BadRecord[] = [];
    let records = 0;
    let last = -1;

    const flush = async () => {
      if (bad.length > 0) {
        if (this.deadLetter) await this.deadLetter.send(bad);
        for (const b of bad) {
          counts.bad[b.reason]++;
          this.logBadRecord(b);
        }
        if (this.deadLetter) counts.deadLettered += bad.length;
      }
      // The row index writes of these records go with their updates: stored in the same state
      // transaction, so the stored index never points ahead of (or behind) the stored topics.
      const rows = mapper.takeRowWrites();
      if (updates.length > 0 || rows !== undefined) {
        if (reread) reread.take(updates, rows);
        else await this.toSink(() => this.sink.apply(updates, at(last + 1), rows));
      }
      counts.applied += records;
      if (last >= 0) {
        positions.advance(p, last + 1);
        control.resolveOffset(String(last));
      }
      updates = [];
      bad = [];
      records = 0;
      last = -1;
    };

    for (const m of batch.messages) {
      const offset = Number(m.offset);
      if (p.next !== undefined && offset < p.next) {
        counts.redelivered++;
        continue;
      }
      counts.records++;
      if (m.value === null) counts.tombstones++;
      const r = mapper.map(topic, partition, m);
      switch (r.kind) {
        case 'updates':
          for (const u of r.updates) updates.push(u);
          records++;
          break;
        case 'bad':
          bad.push({ topic, partition, message: m, reason: r.reason, detail: r.detail });
          break;
        case 'ignored':
          counts.ignored[r.why]++;
          break;
        case 'truncate':
          await flush();
          if (reread) reread.truncate(r.source);
          else await this.toSink(() => this.sink.removeSource(r.source, at(offset + 1)));
          mapper.truncated(topic);
          records++;
          break;
      }
      last = offset;
      if (updates.length >= MAX_UPDATES_PER_APPLY || bad.length >= MAX_UPDATES_PER_APPLY) {
        await flush();
        await control.heartbeat();
        if (!control.isActive()) return false;
      }
    }
    await flush();
    if (!control.isActive()) return false;
    // Records the client filtered out at the end of the fetch (transaction markers) are done too.
    const end = Number(batch.lastOffset) + 1;
    if (p.next === undefined || end > p.next) {
      positions.advance(p, end);
      control.resolveOffset(batch.lastOffset);
    }
    return true;
  }

  private async toSink(apply: () => Promise<void>): Promise<void> {
    try {
      await apply();
    } catch (err) {
      // Not retriable: the sink is in-process; retrying the same updates would fail the same way.
      throw new KafkaConnectorError('KAFKA_SINK_FAILED', `applying Kafka records to topic state failed: ${errorMessage(err)}`, { cause: err });
    }
  }

  private logBadRecord(b: BadRecord): void {
    const now = Date.now();
    const seen = this.badLog.get(b.reason);
    if (seen && now - seen.at < BAD_LOG_INTERVAL_MS) {
      seen.suppressed++;
      return;
    }
    this.badLog.set(b.reason, { at: now, suppressed: 0 });
    this.log.warn(
      { topic: b.topic, partition: b.partition, offset: b.message.offset, reason: b.reason, suppressed: seen?.suppressed ?? 0, deadLetterTopic: this.deadLetter?.topic },
      `bad record skipped: ${b.detail}`,
    );
  }
}
