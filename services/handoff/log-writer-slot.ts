/**
 * A writer of the hand-off log that the composition root builds before it can connect (the
 * KafkaHandoff and the distribution server exist from construction; Kafka is reached at start).
 * `open` connects it before the sources start, `close` lets a later `open` connect again (a
 * service started again in one process). An append with no writer open is refused: nothing is
 * published before the node started.
 */
import { HandoffError } from './handoff-error.ts';
import type { HandoffLog, HandoffLogWriter } from './handoff-log.ts';

export class LogWriterSlot implements HandoffLogWriter {
  private writer: HandoffLogWriter | null = null;

  constructor(private readonly log: HandoffLog) {}

  async open(): Promise<void> {
    this.writer ??= await this.log.openWriter();
  }

  append(values: readonly Buffer[]): Promise<string | null> {
    if (!this.writer) return Promise.reject(new HandoffError('HANDOFF_KAFKA', 'the hand-off log writer is not open: the ingest node publishes only once started'));
    return this.writer.append(values);
  }

  async close(): Promise<void> {
    const writer = this.writer;
    this.writer = null;
    await writer?.close();
  }
}
