/**
 * The filter language for subscriptions with a `filter` (docs/PROTOCOL.md, "Filters"), as its own
 * entry so apps that do not filter do not ship it (it is about a third of the client):
 *
 *   import { TidewireClient } from '@tidewire/client';
 *   import { filters } from '@tidewire/client/filter';
 *   const client = new TidewireClient({ url, filters });
 *   client.subscribe('orders/**', { onValue }, { filter: "status = 'open' and total > 100" });
 *
 * The client evaluates a subscription's filter itself too: one value the server sends may belong
 * to several subscriptions of the connection, with different filters.
 */
import { FilterError, compileFilter } from '../core/filter.ts';
import type { FilterLanguage } from './subscription.ts';

export const filters: FilterLanguage = {
  compile(text) {
    try {
      return { filter: compileFilter(text) };
    } catch (err) {
      if (!(err instanceof FilterError)) throw err;
      return { error: err };
    }
  },
};
