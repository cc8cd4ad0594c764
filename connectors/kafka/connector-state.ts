/**
 * The Kafka connector's lifecycle as small immutable states with a `kind`, and the transitions
 * between them as pure functions. A transition that does not apply to a state returns that same
 * state, so the caller can tell (by identity) whether anything changed and log only real changes.
 *
 *   idle → starting → running(catching-up) → running(streaming)
 *   running(any phase) ⇄ running(same phase, with trouble)     [health: degraded]
 *   any → failed (not after stopped);  any → stopped;  stopped | failed → starting (a new start())
 */
import type { SourceHealth } from '../../core/ingest.ts';

export type Phase = 'catching-up' | 'streaming';

export interface Trouble {
  /** What is wrong, in words an operator can act on. */
  readonly reason: string;
  /** Date.now() when the trouble began (it keeps its first time while it lasts). */
  readonly since: number;
}

export type ConnectorState =
  | { readonly kind: 'idle' }
  | { readonly kind: 'starting'; readonly detail: string }
  | { readonly kind: 'running'; readonly phase: Phase; readonly trouble: Trouble | null }
  | { readonly kind: 'stopped' }
  | { readonly kind: 'failed'; readonly error: string };

export const IDLE: ConnectorState = { kind: 'idle' };

export function starting(s: ConnectorState, detail: string): ConnectorState {
  if (s.kind === 'running') return s;
  if (s.kind === 'starting' && s.detail === detail) return s;
  return { kind: 'starting', detail };
}

/** The consumer runs; the initial catch-up begins. */
export function running(s: ConnectorState): ConnectorState {
  return s.kind === 'starting' ? { kind: 'running', phase: 'catching-up', trouble: null } : s;
}

/** Every assigned partition reached its end offset at start. */
export function caughtUp(s: ConnectorState): ConnectorState {
  return s.kind === 'running' && s.phase === 'catching-up' ? { ...s, phase: 'streaming' } : s;
}

export function troubled(s: ConnectorState, reason: string, now: number): ConnectorState {
  if (s.kind === 'starting') return starting(s, reason);
  if (s.kind !== 'running') return s;
  if (s.trouble?.reason === reason) return s;
  return { ...s, trouble: { reason, since: s.trouble?.since ?? now } };
}

/** The consumer showed it works again (joined its group, heartbeat, fetched). */
export function recovered(s: ConnectorState): ConnectorState {
  return s.kind === 'running' && s.trouble !== null ? { ...s, trouble: null } : s;
}

export function failed(s: ConnectorState, error: string): ConnectorState {
  return s.kind === 'stopped' || s.kind === 'idle' ? s : { kind: 'failed', error };
}

export function stopped(s: ConnectorState): ConnectorState {
  return s.kind === 'stopped' ? s : { kind: 'stopped' };
}

/** `behind` is null while the consumer has not joined its group yet. */
export function toHealth(name: string, s: ConnectorState, behind: { partitions: number; records: number } | null): SourceHealth {
  switch (s.kind) {
    case 'idle':
      return { name, state: 'stopped', detail: 'not started' };
    case 'starting':
      return { name, state: 'starting', detail: s.detail };
    case 'stopped':
      return { name, state: 'stopped' };
    case 'failed':
      return { name, state: 'failed', detail: s.error };
    case 'running': {
      const catchingUp = behind
        ? `catching up: ${behind.partitions} partition(s), ${behind.records} record(s) behind the end offsets at start`
        : 'joining the consumer group';
      if (s.trouble) {
        const since = new Date(s.trouble.since).toISOString();
        return { name, state: 'degraded', detail: `${s.trouble.reason} (since ${since})${s.phase === 'catching-up' ? `; ${catchingUp}` : ''}` };
      }
      return s.phase === 'catching-up' ? { name, state: 'snapshotting', detail: catchingUp } : { name, state: 'streaming' };
    }
  }
}
