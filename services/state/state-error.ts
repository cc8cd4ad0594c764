/**
 * Errors of the state store. Each has a stable code; the ones about a store on disk name the
 * state dir and say what to do, because the operator, not the code, has to act on them.
 */
import { TidewireError } from '../../core/errors.ts';

export type StateErrorCode =
  /** The files cannot be read as a tidewire state store (not LMDB, truncated, a record that does not decode). */
  | 'STATE_CORRUPT'
  /** The dir holds files that are not a tidewire state store: it is never written into. */
  | 'STATE_NOT_A_STORE'
  /** The store was written for another source (another Postgres cluster or database, another Kafka cluster). */
  | 'STATE_FOREIGN_SOURCE'
  /** The store was written in a format this build does not read. */
  | 'STATE_FORMAT_UNSUPPORTED'
  /** Another process (or this one) has the state dir open. */
  | 'STATE_LOCKED'
  /** A durable write failed (disk full, I/O error): nothing after it is written. */
  | 'STATE_WRITE_FAILED'
  /** A commit that cannot be stored (seq going backwards, a path too long for a key, a value that is not JSON). */
  | 'STATE_INVALID_COMMIT'
  /** The store was closed. */
  | 'STATE_CLOSED';

export class StateError extends TidewireError {
  declare readonly code: StateErrorCode;
  /** The state dir concerned. */
  readonly dir: string;

  constructor(code: StateErrorCode, dir: string, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'StateError';
    this.dir = dir;
  }
}

/** What to do about a store that cannot be used as it is. */
export function rebuildAdvice(dir: string): string {
  return `delete ${dir} to rebuild the state from the sources, or point state.dir elsewhere`;
}
