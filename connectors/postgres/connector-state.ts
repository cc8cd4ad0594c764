/**
 * The connector's lifecycle as an explicit state machine. An illegal transition is a bug in the
 * connector, so it throws rather than being ignored.
 *
 *   stopped → starting → snapshotting → streaming ⇄ degraded
 *   starting → streaming (resumed from durable state, nothing to read)
 *   starting | snapshotting → degraded → snapshotting (a snapshot interrupted, started over)
 *   any running state → failed | stopped;  failed → starting (a new start())
 */
import type { SourceState } from '../../core/ingest.ts';

const ALLOWED: Readonly<Record<SourceState, readonly SourceState[]>> = {
  stopped: ['starting'],
  starting: ['snapshotting', 'streaming', 'degraded', 'failed', 'stopped'],
  // degraded: the replication connection dropped before streaming got going
  snapshotting: ['streaming', 'degraded', 'failed', 'stopped'],
  streaming: ['degraded', 'failed', 'stopped'],
  degraded: ['streaming', 'snapshotting', 'degraded', 'failed', 'stopped'],
  failed: ['starting', 'stopped'],
};

export function canTransition(from: SourceState, to: SourceState): boolean {
  return ALLOWED[from].includes(to);
}

export class ConnectorState {
  state: SourceState = 'stopped';
  detail: string | undefined = 'not started';
  /** Date.now() of the last transition. */
  since = Date.now();

  transition(to: SourceState, detail?: string): void {
    if (!canTransition(this.state, to)) throw new Error(`postgres connector: illegal state transition ${this.state} → ${to}`);
    this.state = to;
    this.detail = detail;
    this.since = Date.now();
  }
}
