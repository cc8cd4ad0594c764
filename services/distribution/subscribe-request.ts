/**
 * Checks a `subscribe` before anything is registered: the id is free, the session (and its
 * tenant) has room for another subscription, the selector and the filter are valid. Returns what
 * the subscription needs, or the error that answers the request.
 */
import { FILTER_LIMITS, type Filter, FilterError, compileFilter } from '../topics/filter.ts';
import { type Selector, SelectorError, parseSelector } from '../topics/selector.ts';
import type { SubscribeMessage } from './messages.ts';
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

export type CheckedSubscribe = { ok: true; selector: Selector; filter: Filter | null } | { ok: false; error: ProtocolError };

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
  return { ok: true, selector, filter };
}
