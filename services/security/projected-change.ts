/**
 * A change seen through a field projection — the one implementation, shared by the fast path
 * (PermissionSet, once per group of sessions) and by sessions with filters, throttles or merged
 * topics (fan-out's ChangeContext). Security owns it; distribution only asks.
 *
 * A delta that touches only hidden fields is not sent, so a restricted client may hold an earlier
 * version whose projection equals the current one: the next visible delta is sent as a delta only
 * when the client holds exactly `version - 1` (heldPrevious), otherwise as the projected value.
 */
import { jsonEqual } from '../../core/json.ts';
import { type Topic, type TopicChange, valueJsonOf } from '../../core/topic.ts';
import { deltaMessage, valueMessage, valueText } from '../../core/wire.ts';
import type { Projection } from './field-projection.ts';

/**
 * Does a client restricted to `p` that held the topic before this change hold exactly
 * `version - 1`? Not when the change before it showed it nothing (it was not sent).
 */
export function heldPrevious(version: number, p: Projection, previous: TopicChange | undefined): boolean {
  if (p.all || previous === undefined || previous.version !== version - 1) return true;
  if (previous.type === 'delta') return p.touches(previous.patch);
  if (previous.type === 'value' && previous.before !== null) return !jsonEqual(p.value(previous.before), p.value(previous.after));
  return true;
}

/**
 * What a client restricted to `p` that holds the topic on both sides of the change gets: null
 * when it changed only hidden fields, a text to send (the change's own wire, or the projected
 * delta when the client holds exactly the version before), or undefined when only a projected
 * value can stand for it (the caller picks which version: see PermissionSet's batch jumps).
 */
export function seeChange(change: TopicChange, p: Projection, previous: TopicChange | undefined): string | null | undefined {
  if (p.all || change.type === 'removal') return change.wire;
  if (change.type === 'delta') {
    const ops = p.patch(change.patch);
    if (ops !== null && ops.length === 0) return null;
    if (ops !== null && heldPrevious(change.version, p, previous)) return ops === change.patch ? change.wire : deltaMessage(change.topic.path, change.version, ops);
    return undefined;
  }
  // A full-value change (its delta was not smaller) that touched only hidden fields.
  if (change.before !== null && jsonEqual(p.value(change.before), p.value(change.after))) return null;
  return undefined;
}

/** As seeChange, with the projected value at the change's own version where a value is needed. */
export function projectedChange(change: TopicChange, p: Projection, previous: TopicChange | undefined): string | null {
  const seen = seeChange(change, p, previous);
  return seen !== undefined ? seen : valueMessage(change.topic.path, change.version, p.value(change.after!));
}

/** The `value` message of the topic at `version` (its current value) through `p`. */
export function projectedValueMessage(topic: Topic, version: number, p: Projection): string {
  return p.all ? valueText(topic.path, version, valueJsonOf(topic)) : valueMessage(topic.path, version, p.value(topic.value));
}
