/**
 * The ingest seam: what every connector (Postgres, Kafka) offers the service that runs it, and
 * where it hands its updates. Owned by the pipeline side; connectors implement Source and call
 * IngestSink, and know nothing above it.
 */
import type { TopicUpdate } from './topic.ts';

export type SourceState = 'starting' | 'snapshotting' | 'streaming' | 'degraded' | 'stopped' | 'failed';

export interface SourceHealth {
  readonly name: string;
  readonly state: SourceState;
  /** What is wrong, or what the source is doing, in words an operator can act on. */
  readonly detail?: string;
  /**
   * Feeds this source follows that have gone quiet past their threshold (a Kafka topic with no
   * record or heartbeat for `kafka.staleAfterMs`): the topics built from them may be old. Absent
   * or empty: none. A source with stale feeds reports `degraded`.
   */
  readonly stale?: readonly StaleFeed[];
}

export interface StaleFeed {
  /** The feed's own name, e.g. the Kafka topic. */
  readonly feed: string;
  /** The source name its topics carry (Topic.source). */
  readonly source: string;
  /** Milliseconds since it was last heard from. */
  readonly ageMs: number;
}

/**
 * Where a connector hands its updates. Resolves once the updates are applied and handed off;
 * only then may the connector acknowledge the source position (LSN, offset) covering them.
 */
export interface IngestSink {
  apply(updates: readonly TopicUpdate[]): Promise<void>;
  /** Removes every topic produced by `source` (TRUNCATE). */
  removeSource(source: string): Promise<void>;
}

export interface Source {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  health(): SourceHealth;
}
