/**
 * An ingest node's restart with durable state (issue #15): the batches the hand-off log holds past
 * the position the state stored with its last batch. The state stores a batch only once the log
 * holds it (services/state/state-journal.ts), so after a crash the log may hold a few batches the
 * state does not, never the other way round. They are read back whole here, with the source
 * positions and row index writes their records carry, for the composition root to store
 * (TopicStore.recover, then the state journal) before the sources start: the sources then resume
 * after them, and the log goes on with no gap and no batch twice — edges never notice the restart.
 */
import type { HandoffLog } from './handoff-log.ts';
import { HandoffError } from './handoff-error.ts';
import { BatchAssembler, type LoggedBatch, decodeRecord } from './log-record.ts';

export interface LogTail {
  /** Batches read past the stored seq (handed to `take`). */
  readonly batches: number;
  /** The log's end when reading started: where the log stands once the tail is stored. */
  readonly end: string;
}

/**
 * Reads `log` from offset `from` up to its end now and hands `take` each whole batch whose seq is
 * past `seq` (batches at or before it, which an older stored offset would reach again, are
 * skipped), with the offset after its last record. Throws HandoffError when the log ends before
 * `from` (HANDOFF_LOG_BEHIND: the topic was deleted or recreated) or holds a record that is not
 * a hand-off record; what `take` throws stops the reading and is thrown.
 */
export async function readLogTail(log: HandoffLog, from: string, seq: number, take: (batch: LoggedBatch, after: string) => void): Promise<LogTail> {
  const end = await log.end();
  if (BigInt(end) < BigInt(from)) {
    throw new HandoffError(
      'HANDOFF_LOG_BEHIND',
      `the hand-off log ends at offset ${end}, but this node's state was published up to offset ${from}: the hand-off topic was deleted or recreated since. ` +
        'Its edges cannot follow this state: delete the state folder (a new epoch, read from the sources) or restore the topic, then restart the edges',
    );
  }
  if (BigInt(end) === BigInt(from)) return { batches: 0, end };
  const last = BigInt(end) - 1n;
  const assembler = new BatchAssembler();
  let batches = 0;
  let done = false;
  let finish!: (err?: unknown) => void;
  const finished = new Promise<void>((resolve, reject) => {
    finish = (err) => {
      done = true;
      if (err === undefined) resolve();
      else reject(err);
    };
  });
  const opening = log.openReader(from, {
    records(records) {
      if (done) return;
      try {
        for (const r of records) {
          const offset = BigInt(r.offset);
          const batch = assembler.add(decodeRecord(r.value));
          if (batch !== null && batch.seq > seq) {
            take(batch, String(offset + 1n));
            batches++;
          }
          if (offset >= last) return finish();
        }
      } catch (err) {
        finish(err);
      }
    },
    failed: (err) => finish(err),
  });
  try {
    await opening;
    await finished;
  } finally {
    await (await opening.catch(() => null))?.close();
  }
  return { batches, end };
}
