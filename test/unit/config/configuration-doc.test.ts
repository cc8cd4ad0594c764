// docs/CONFIGURATION.md stays true to the schema: every setting its tables name exists, with the default they state.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseConfig } from '../../../services/config/config.ts';

const doc = readFileSync(new URL('../../../docs/CONFIGURATION.md', import.meta.url), 'utf8');

test('each setting in docs/CONFIGURATION.md has the default the page states, and each variable it lists is applied', () => {
  const rows = [...doc.matchAll(/^\| `([a-z]+\.[A-Za-z.]+)` \| `([^`]*)` \|/gm)].map((m) => [m[1], m[2]] as const);
  assert.ok(rows.length >= 4, 'the page has its tables');
  const defaults = parseConfig({ postgres: { url: 'postgres://x', tables: [{ table: 't', path: 't/{id}' }] } }, {}) as unknown as Record<string, Record<string, unknown>>;
  for (const [setting, stated] of rows) {
    const [section, key] = setting.split('.');
    const actual = defaults[section]?.[key];
    assert.notEqual(actual, undefined, `${setting} is a setting with a default`);
    assert.equal(String(actual), stated, setting);
  }
  const env = { TIDEWIRE_DATABASE_URL: 'postgres://env', TIDEWIRE_LOG_LEVEL: 'warn', TIDEWIRE_LOG_FORMAT: 'json', TIDEWIRE_KAFKA_BROKERS: 'k1:9092,k2:9092' };
  for (const v of Object.keys(env)) assert.ok(doc.includes(`\`${v}\``), `${v} is listed`);
  const c = parseConfig({ postgres: { url: 'postgres://file', tables: [{ table: 't', path: 't/{id}' }] }, kafka: { brokers: ['k:9092'], topics: [{ topic: 't', format: 'json', path: 't/{key}' }] } }, env);
  assert.deepEqual([c.postgres!.url, c.log.level, c.log.format, c.kafka!.brokers], ['postgres://env', 'warn', 'json', ['k1:9092', 'k2:9092']]);
});
