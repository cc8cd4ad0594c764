/** The service builds its topic store with the configured resume history (server.historyPerTopic / historyBytes). */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import pino from 'pino';
import { parseConfig } from '../../services/config/config.ts';
import { TidewireService } from '../../services/service.ts';

function serviceWith(server: Record<string, unknown>): TidewireService {
  const config = parseConfig({ server, postgres: { url: 'postgres://nobody@127.0.0.1:1/none', tables: [{ table: 'public.t', path: 't/{id}' }] } }, {});
  return new TidewireService(config, { logger: pino({ level: 'silent' }) });
}

function historyAfterTwoChanges(service: TidewireService) {
  const { store } = service;
  for (const n of [1, 2, 3]) store.apply([{ path: 't/1', source: 's', value: { id: 1, n } }]);
  return store.changesSince(store.get('t/1')!, 1);
}

it('keeps the history server.historyPerTopic asks for, and none with 0', () => {
  assert.equal(historyAfterTwoChanges(serviceWith({ historyPerTopic: 0 })), null, 'historyPerTopic 0: a resume from version 1 cannot get deltas');
  assert.equal(historyAfterTwoChanges(serviceWith({ historyPerTopic: 1 })), null, 'one change kept: version 1 is two changes back');
  assert.equal(historyAfterTwoChanges(serviceWith({}))?.length, 2, 'the default (64) reaches back two changes');
});
