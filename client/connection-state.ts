/**
 * The client's connection state machine, kept pure so every transition is tested on its own.
 *
 *   closed ──connect──▶ connecting ──opened──▶ open
 *                          │                    │
 *                         lost                 lost
 *                          ▼                    ▼
 *                       reconnecting ◀─────────┘ ──opened──▶ open
 *   any ──close──▶ closed
 */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';
export type ConnectionEvent = 'connect' | 'opened' | 'lost' | 'close';

const TRANSITIONS: Record<ConnectionState, Partial<Record<ConnectionEvent, ConnectionState>>> = {
  closed: { connect: 'connecting' },
  connecting: { opened: 'open', lost: 'reconnecting', close: 'closed' },
  open: { lost: 'reconnecting', close: 'closed' },
  reconnecting: { opened: 'open', lost: 'reconnecting', close: 'closed' },
};

/** The state after `event`, or the same state when the event does not apply to it. */
export function nextState(state: ConnectionState, event: ConnectionEvent): ConnectionState {
  return TRANSITIONS[state][event] ?? state;
}
