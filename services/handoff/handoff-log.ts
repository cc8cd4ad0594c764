/**
 * The hand-off log as the hand-off sees it: an append-only sequence of records, totally ordered,
 * written by one ingest node and read by any number of edges from an offset of their choosing.
 * Our own interface, so kafkajs (unmaintained since 2023, issue #15 item 5) stays in one file
 * (kafkajs-handoff-log.ts) and unit tests put an array behind it.
 */

/** One record as read. Offsets are int64 decimal strings, as Kafka clients give them. */
export interface HandoffLogRecord {
  readonly offset: string;
  /** Null: a record without a value, which tidewire never writes. */
  readonly value: Buffer | null;
  /**
   * When the log took it: ms since the Unix epoch, a decimal string as Kafka clients give it (read
   * only for the lag, so no record is copied to convert it); absent when unknown.
   */
  readonly timestamp?: string;
}

export interface HandoffLogWriter {
  /**
   * Appends `values` after everything appended before, in order; resolves once the log holds
   * them durably (Kafka: acknowledged by every in-sync replica). Calls must not overlap: the next
   * waits for this one, so the order of the log is the order of the calls. Resolves with the
   * offset of the first record appended (null: the log did not say, e.g. a retried append Kafka
   * recognised as a duplicate).
   */
  append(values: readonly Buffer[]): Promise<string | null>;
  close(): Promise<void>;
}

/** Where a reader stands: the next offset it reads and the log's end when it last fetched. */
export interface HandoffLogPosition {
  readonly next: string;
  readonly end: string;
}

export interface HandoffLogReadHandler {
  /** The records of one fetch, in offset order; the reader fetches again only after it returns. */
  records(records: readonly HandoffLogRecord[], end: string): void;
  /** The reader stopped on an error and reads no more. */
  failed(err: Error): void;
}

export interface HandoffLogReader {
  readonly position: HandoffLogPosition;
  close(): Promise<void>;
}

export interface HandoffLog {
  /** Connects a writer (Kafka: an idempotent producer). */
  openWriter(): Promise<HandoffLogWriter>;
  /** Starts reading at `offset` ("0": the oldest record the log holds). */
  openReader(offset: string, handler: HandoffLogReadHandler): Promise<HandoffLogReader>;
  /** The offset after the last record the log holds now (Kafka: the high watermark): what an edge catches up to at start. */
  end(): Promise<string>;
}
