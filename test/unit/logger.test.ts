// Logs as operators expect: JSON lines for collectors, readable lines in a terminal (log.format).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger, prettyLine, resolveLogFormat } from '../../services/logger.ts';

test('log.format auto: pretty in a terminal, json anywhere else; json and pretty as asked', () => {
  assert.equal(resolveLogFormat('auto', true), 'pretty');
  assert.equal(resolveLogFormat('auto', false), 'json');
  assert.equal(resolveLogFormat('auto', undefined), 'json');
  assert.equal(resolveLogFormat('json', true), 'json');
  assert.equal(resolveLogFormat('pretty', false), 'pretty');
});

test('a pretty line: time, level, component, message, the other fields, and an error by its message', () => {
  const record = { level: 50, time: Date.UTC(2026, 0, 2, 13, 24, 46, 404), service: 'tidewire', component: 'postgres', slot: 'tidewire', code: 'PG_UNREACHABLE', lsn: '0/16B3748', note: 'two words', err: { type: 'PostgresConnectorError', message: 'Postgres at db:5432/shop is not available', code: 'PG_UNREACHABLE', stack: 'at x' }, msg: 'postgres connector could not start' };
  assert.equal(prettyLine(JSON.stringify(record)), '13:24:46.404 ERROR postgres: postgres connector could not start slot=tidewire code=PG_UNREACHABLE lsn=0/16B3748 note="two words" — Postgres at db:5432/shop is not available [PG_UNREACHABLE]\n');
  assert.equal(prettyLine(JSON.stringify({ level: 30, time: 0, msg: 'hi' }), true), '00:00:00.000 \x1b[32mINFO \x1b[0m hi\n', 'coloured level in a terminal');
  assert.equal(prettyLine('not json'), 'not json\n');
});

test('createLogger writes JSON by default and pretty lines when asked, with the same fields', () => {
  const json: string[] = [];
  createLogger('info', { write: (l) => void json.push(l) }).child({ component: 'x' }).info({ n: 1 }, 'hello');
  const r = JSON.parse(json[0]) as Record<string, unknown>;
  assert.deepEqual([r.level, r.component, r.n, r.msg, r.service], [30, 'x', 1, 'hello', 'tidewire']);
  const pretty: string[] = [];
  createLogger('info', { write: (l) => void pretty.push(l) }, { format: 'pretty' }).child({ component: 'x' }).info({ n: 1 }, 'hello');
  assert.match(pretty[0], /^\d\d:\d\d:\d\d\.\d{3} INFO  x: hello n=1\n$/);
});
