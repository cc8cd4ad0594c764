/**
 * A row index on the heap (core/ingest.ts, RowIndex): a source whose state is in memory keeps
 * one, rebuilt by the read every start does (a snapshot, a Kafka topic from its earliest offset).
 * Always complete: nothing outlives the process that could be out of step with it.
 */
import type { RowIndex } from './ingest.ts';

export class HeapRowIndex implements RowIndex {
  readonly complete = true;
  private readonly paths = new Map<string, string>();

  get(key: string): string | undefined {
    return this.paths.get(key);
  }

  set(key: string, path: string | null): undefined {
    if (path === null) this.paths.delete(key);
    else this.paths.set(key, path);
  }

  clear(): void {
    this.paths.clear();
  }

  completed(): void {}
}
