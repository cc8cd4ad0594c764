/**
 * Commits the consumer group's offsets (`offset + 1` of the last record handled, per partition).
 * They serve monitoring (the group's lag) and, without durable state, `startFrom: committed`.
 *
 * Without durable state a partition is committed right after its batch. With it, a committed
 * offset never passes what the state holds durably: each commit first waits for
 * `checkpoint(position)`. That wait runs beside the fetch loop, one chain per partition, so ingest
 * never waits for the disk; a batch that lands while its partition's commit waits is committed
 * when that one returns.
 */
import type { Logger } from 'pino';
import type { SourceCheckpoints } from '../../core/ingest.ts';
import type { KafkaConsumer } from './kafka-client.ts';
import type { PartitionPosition } from './partition-positions.ts';

/**
 * How a partition's offset is committed: `state` after its checkpoint (at once without durable
 * state), `direct` at once (a heartbeat topic: nothing of it is in the state), `hold` not yet (a
 * partition being re-read: its position is stored when the re-read is applied).
 */
export type CommitKind = 'state' | 'direct' | 'hold';

export class OffsetCommitter {
  /** Commits the broker refused (each is retried after the partition's next batch). */
  failures = 0;
  private readonly running = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  /** The consumer of the latest request: a chain that goes round again commits through it. */
  private consumer: KafkaConsumer | null = null;

  constructor(
    private readonly checkpoints: SourceCheckpoints | null,
    private readonly log: Logger,
  ) {}

  /**
   * After a batch of `p` was handled. Resolves once committed without durable state; with it at
   * once, the commit following its checkpoint.
   */
  afterBatch(consumer: KafkaConsumer, p: PartitionPosition, kind: CommitKind): Promise<void> {
    this.consumer = consumer;
    if (kind === 'hold') return Promise.resolve();
    if (kind === 'direct' || this.checkpoints === null) return this.commit(consumer, p, p.next);
    void this.chain(p);
    return Promise.resolve();
  }

  /** Waits for the commits under way, then commits every partition's position (at stop). */
  async flush(consumer: KafkaConsumer, partitions: Iterable<PartitionPosition>, kind: (p: PartitionPosition) => CommitKind): Promise<void> {
    this.consumer = consumer;
    await Promise.allSettled([...this.running.values()]);
    for (const p of partitions) {
      const k = kind(p);
      if (k === 'hold') continue;
      await (k === 'direct' || this.checkpoints === null ? this.commit(consumer, p, p.next) : this.chain(p));
    }
  }

  private chain(p: PartitionPosition): Promise<void> {
    const running = this.running.get(p.key);
    if (running) {
      this.again.add(p.key);
      return running;
    }
    const run = (async () => {
      try {
        do {
          this.again.delete(p.key);
          const offset = p.next;
          if (offset === undefined || offset === p.committed) continue;
          try {
            await this.checkpoints!.checkpoint({ name: p.name, position: String(offset) });
          } catch (err) {
            // Not committed past what is durable; ingest fails on its next write to the state.
            this.log.error({ err, topic: p.topic, partition: p.partition, offset }, 'the state could not be made durable: the offset is not committed');
            return;
          }
          if (this.consumer) await this.commit(this.consumer, p, offset);
        } while (this.again.has(p.key));
      } finally {
        this.running.delete(p.key);
      }
    })();
    this.running.set(p.key, run);
    return run;
  }

  private async commit(consumer: KafkaConsumer, p: PartitionPosition, offset: number | undefined): Promise<void> {
    if (offset === undefined || offset === p.committed) return;
    try {
      await consumer.commitOffsets([{ topic: p.topic, partition: p.partition, offset: String(offset) }]);
      if (p.committed === undefined || offset > p.committed) p.committed = offset;
    } catch (err) {
      // Committed offsets serve monitoring and resumption in another process; this process
      // resumes from its own position (and, with durable state, from the stored one). The next
      // batch commits again.
      this.failures++;
      this.log.warn({ err, topic: p.topic, partition: p.partition, offset }, 'committing the offset failed; it is retried after the next batch');
    }
  }
}
