/**
 * Checks a `subscribe` before anything is registered: the id is free, the session (and its
 * tenant) has room for another subscription, the selector, the filter and the rate are valid.
 * Returns what the subscription needs, or the error that answers the request.
 */
import { FILTER_LIMITS, type Filter, FilterError, compileFilter } from '../../core/filter.ts';
import { type Selector, SelectorError, parseSelector } from '../../core/selector.ts';
import { MAX_RATE, type SubscribeMessage } from '../../core/messages.ts';
import type { ProtocolError } from './protocol.ts';

export interface SubscribeLimits {
  /** Ids of the session's live subscriptions. */
  readonly live: ReadonlyMap<string, unknown>;
  /** server.maxSubscriptionsPerSession. */
  readonly serverMax: number;
  /** The tenant's subscriptionsPerSession (Infinity without security). */
  readonly tenantMax: number;
  /** Characters of the filters of the live subscriptions together. */
  readonly filterChars: number;
}

export type CheckedSubscribe =
  | { ok: true; selector: Selector; filter: Filter | null; /** Updates per second per topic; 0: every update. */ maxRate: number }
  | { ok: false; error: ProtocolError };

/** Bounds of `maxRate` (core/messages.ts), the same as schemas/protocol/subscribe.schema.json states (a unit test holds them together). */
export const MAX_RATE_BOUNDS = MAX_RATE;

/** Why a `maxRate` cannot be used, saying what to send instead; null when it can. */
export function maxRateProblem(rate: unknown): string | null {
  const { min, max } = MAX_RATE_BOUNDS;
  if (typeof rate === 'number' && rate >= min && rate <= max) return null;
  return `field "maxRate" must be a number of updates per second per topic from ${min} (one update per ${1 / min} s) to ${max}: raise it, or leave it out to get every update`;
}

export function checkSubscribe(msg: SubscribeMessage, limits: SubscribeLimits): CheckedSubscribe {
  const { id } = msg;
  const fail = (error: ProtocolError): CheckedSubscribe => ({ ok: false, error });
  if (limits.live.has(id)) {
    return fail({ code: 'DUPLICATE_ID', message: `subscription "${id}" is already live: choose another id or unsubscribe it first`, id });
  }
  const { serverMax, tenantMax } = limits;
  const count = limits.live.size;
  if (count >= tenantMax && tenantMax < serverMax) {
    const message = `your tenant allows ${tenantMax} subscriptions per session: unsubscribe some, or use one wildcard selector for many topics`;
    return fail({ code: 'TENANT_LIMIT', message, id, limit: 'subscriptionsPerSession' });
  }
  if (count >= serverMax) {
    return fail({ code: 'TOO_MANY_SUBSCRIPTIONS', message: `a session may hold ${serverMax} subscriptions: unsubscribe some, or use one wildcard selector for many topics`, id });
  }
  const maxRate = msg.maxRate ?? 0;
  if (msg.maxRate !== undefined) {
    const problem = maxRateProblem(msg.maxRate);
    if (problem !== null) return fail({ code: 'INVALID_MESSAGE', message: problem, id });
  }
  let selector: Selector;
  try {
    selector = parseSelector(msg.selector);
  } catch (err) {
    if (!(err instanceof SelectorError)) throw err;
    return fail({ code: 'INVALID_SELECTOR', message: err.message, id });
  }
  let filter: Filter | null = null;
  if (msg.filter !== undefined) {
    if (limits.filterChars + msg.filter.length > FILTER_LIMITS.maxTotalPerSession) {
      const message = `the filters of one session's subscriptions may total ${FILTER_LIMITS.maxTotalPerSession} characters: unsubscribe some, or combine filters with 'or'`;
      return fail({ code: 'FILTER_INVALID', message, id });
    }
    try {
      filter = compileFilter(msg.filter);
    } catch (err) {
      if (!(err instanceof FilterError)) throw err;
      return fail({ code: 'FILTER_INVALID', message: err.message, id });
    }
  }
  return { ok: true, selector, filter, maxRate };
}
