/**
 * Configuration errors point at the bad key and say what is wrong with it: misspelt keys (with a
 * suggestion), wrong types, enums, Kafka's topic-or-pattern, and values that came from the
 * environment (named by their variable).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type Config, ConfigErrors, loadConfigFile, parseConfig } from '../../../services/config/config.ts';
import { ConfigError } from '../../../core/errors.ts';

const pg = { url: 'postgres://u:p@db:5432/shop', tables: [{ table: 'public.orders', path: 'orders/{id}' }] };
const kafkaTopic = { format: 'json', path: 'prices/{key}' };

/** The ConfigError parseConfig throws for `input`: its key and its message. */
function refused(input: unknown, env: NodeJS.ProcessEnv = {}): { key: string; message: string } {
  try {
    parseConfig(input, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, not ${String(err)}`);
    assert.equal(err.code, 'CONFIG_INVALID');
    return { key: err.key, message: err.message };
  }
  assert.fail('the configuration was accepted');
}

test('a misspelt key is named with the setting it was probably meant to be', () => {
  assert.deepEqual(refused({ sever: { port: 1 } }), { key: 'sever', message: 'sever: is not a known setting: did you mean "server"? (see schemas/config.schema.json)' });
  assert.equal(refused({ server: { prot: 8080 } }).message, 'server.prot: is not a known setting: did you mean "port"? (see schemas/config.schema.json)');
  assert.equal(
    refused({ postgres: { ...pg, tables: [{ ...pg.tables[0], exlude: ['a'] }] } }).message,
    'postgres.tables.0.exlude: is not a known setting: did you mean "exclude"? (see schemas/config.schema.json)',
  );
  assert.equal(refused({ kafka: { brokers: ['k:9092'], topics: [{ ...kafkaTopic, topic: 't', tenantfield: 'x' }] } }).key, 'kafka.topics.0.tenantfield');
});

test('a key too far from any setting lists the settings that exist there', () => {
  assert.equal(refused({ metrics: { scrapeEvery: 5 } }).message, 'metrics.scrapeEvery: is not a known setting: the settings here are enabled, replicationLagIntervalMs (see schemas/config.schema.json)');
});

test('a wrong type says what was expected and what was given', () => {
  assert.equal(refused({ server: { port: '80a' } }).message, 'server.port: must be integer, not the string "80a"');
  assert.equal(refused({ postgres: { ...pg, tables: { table: 'orders' } } }).message, 'postgres.tables: must be array, not a mapping');
  assert.equal(refused({ metrics: { enabled: 'yes' } }).message, 'metrics.enabled: must be boolean, not the string "yes"');
  assert.equal(refused({ kafka: { brokers: 'k:9092', topics: [{ ...kafkaTopic, topic: 't' }] } }).message, 'kafka.brokers: must be array, not the string "k:9092"');
});

test('an enum lists its values', () => {
  assert.equal(refused({ log: { level: 'verbose' } }).message, 'log.level: must be one of fatal, error, warn, info, debug, trace, silent');
  assert.equal(refused({ kafka: { brokers: ['k:9092'], topics: [{ ...kafkaTopic, topic: 't', format: 'avro' }] } }).message, 'kafka.topics.0.format: must be one of json, debezium');
});

test('a Kafka mapping needs exactly one of topic or pattern', () => {
  const both = refused({ kafka: { brokers: ['k:9092'], topics: [{ ...kafkaTopic, topic: 't', pattern: '^t' }] } });
  assert.deepEqual(both, { key: 'kafka.topics.0', message: 'kafka.topics.0: set exactly one of topic or pattern' });
  const neither = refused({ kafka: { brokers: ['k:9092'], topics: [{ ...kafkaTopic, topic: 't' }, kafkaTopic] } });
  assert.deepEqual(neither, { key: 'kafka.topics.1', message: 'kafka.topics.1: set exactly one of topic or pattern' });
  assert.doesNotThrow(() => parseConfig({ kafka: { brokers: ['k:9092'], topics: [{ ...kafkaTopic, pattern: '^prices\\.' }] } }, {}));
});

test('a missing required setting is named', () => {
  assert.deepEqual(refused({ postgres: { url: 'postgres://x' } }), { key: 'postgres.tables', message: 'postgres.tables: is required' });
  assert.equal(refused({ postgres: { ...pg, tables: [{ table: 'orders' }] } }).message, 'postgres.tables.0.path: is required');
});

test('limits are checked with their bounds', () => {
  assert.equal(refused({ metrics: { replicationLagIntervalMs: 10 } }).message, 'metrics.replicationLagIntervalMs: must be >= 100');
  assert.equal(refused({ server: { port: 70000 } }).message, 'server.port: must be <= 65535');
});

test('environment variables override the file, and errors in them name the variable', () => {
  const env = { TIDEWIRE_DATABASE_URL: 'postgres://secret@db2:5432/prod', TIDEWIRE_LOG_LEVEL: 'debug', TIDEWIRE_KAFKA_BROKERS: 'a:9092, b:9092', TIDEWIRE_KAFKA_PASSWORD: 's3cret' };
  const c = parseConfig({ postgres: pg, kafka: { brokers: ['k:9092'], sasl: { mechanism: 'plain', username: 'u', password: 'file' }, topics: [{ ...kafkaTopic, topic: 't' }] } }, env);
  assert.equal(c.postgres!.url, 'postgres://secret@db2:5432/prod');
  assert.equal(c.log.level, 'debug');
  assert.deepEqual(c.kafka!.brokers, ['a:9092', 'b:9092']);
  assert.equal(c.kafka!.sasl!.password, 's3cret');

  assert.equal(
    refused({ postgres: pg }, { TIDEWIRE_LOG_LEVEL: 'loud' }).message,
    'log.level: must be one of fatal, error, warn, info, debug, trace, silent (it comes from TIDEWIRE_LOG_LEVEL)',
  );
  // An empty variable is no override: the file's url stays.
  assert.equal(parseConfig({ postgres: pg }, { TIDEWIRE_DATABASE_URL: '' }).postgres!.url, pg.url);
});

test('defaults fill what is not given: metrics on, lag read every 5 s, progress logged every 5 s', () => {
  const c: Config = parseConfig({ postgres: pg }, {});
  assert.deepEqual(c.metrics, { enabled: true, replicationLagIntervalMs: 5000 });
  assert.deepEqual(c.log, { level: 'info', format: 'auto', progressIntervalMs: 5000 });
});

test('the schema is published for editors: an $id, a $schema key allowed in files, the env variables documented', () => {
  const schema = JSON.parse(readFileSync(new URL('../../../schemas/config.schema.json', import.meta.url), 'utf8')) as { $id: string; description: string };
  assert.equal(schema.$id, 'https://tidewire.dev/schemas/config.schema.json');
  for (const v of ['TIDEWIRE_DATABASE_URL', 'TIDEWIRE_KAFKA_BROKERS', 'TIDEWIRE_KAFKA_PASSWORD', 'TIDEWIRE_LOG_LEVEL']) assert.match(schema.description, new RegExp(v));
  assert.doesNotThrow(() => parseConfig({ $schema: './schemas/config.schema.json', postgres: pg }, {}));
});

test('a table mapping with both a fixed tenant and a tenant column says which to drop', () => {
  assert.throws(
    () => parseConfig({ postgres: { url: 'postgres://x', tables: [{ table: 'a', path: 'a/{id}', tenant: 'x', tenantColumn: 'y' }] } }, {}),
    /postgres\.tables\.0: set tenant or tenantColumn, not both/,
  );
});

test('several problems are reported together, each with its key, so one run shows everything to fix', () => {
  let err: unknown;
  try {
    parseConfig({ server: { port: 70000, prot: 1 }, log: { level: 'loud' }, postgres: { ...pg, tables: [{ table: 'orders' }] } }, {});
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ConfigErrors, `ConfigErrors, not ${String(err)}`);
  assert.ok(err instanceof ConfigError && err.code === 'CONFIG_INVALID', 'still a ConfigError: exit code 2');
  assert.deepEqual(err.errors.map((e) => e.message).sort(), [
    'log.level: must be one of fatal, error, warn, info, debug, trace, silent',
    'postgres.tables.0.path: is required',
    'server.port: must be <= 65535',
    'server.prot: is not a known setting: did you mean "port"? (see schemas/config.schema.json)',
  ]);
  assert.match(err.message, /^the configuration has 4 problems:\n {2}\S/);
  for (const e of err.errors) assert.ok(err.message.includes(`\n  ${e.message}`), e.message);
});

test('log.format: auto by default, json or pretty, TIDEWIRE_LOG_FORMAT overrides it', () => {
  assert.equal(parseConfig({ log: { format: 'json' } }, {}).log.format, 'json');
  assert.equal(parseConfig({ log: { format: 'json' } }, { TIDEWIRE_LOG_FORMAT: 'pretty' }).log.format, 'pretty');
  assert.equal(refused({}, { TIDEWIRE_LOG_FORMAT: 'xml' }).message, 'log.format: must be one of auto, json, pretty (it comes from TIDEWIRE_LOG_FORMAT)');
});

const dir = mkdtempSync(join(tmpdir(), 'tidewire-config-errors-'));
function fileRefused(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  try {
    loadConfigFile(file, {});
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message.replace(dir, '<dir>');
  }
  assert.fail('the file was accepted');
}

test('a YAML error names line and column, and its caret points at the character to fix', () => {
  // A key indented one space short: the yaml library reports column 1; the bad column is 6.
  const misindented = 'postgres:\n  url: postgres://x\n  tables:\n    - table: orders\n      path: orders/{id}\n     exclude: [a]\n';
  assert.equal(
    fileRefused('a.yaml', misindented),
    [
      '<dir>/a.yaml:6:6: is not valid YAML: Sequence item without - indicator',
      '     5 |       path: orders/{id}',
      '     6 |      exclude: [a]',
      '       |      ^',
    ].join('\n'),
  );
  // An unclosed quote is reported where the file ends; the caret goes to the quote that opened it.
  assert.equal(
    fileRefused('b.yaml', 'server:\n  port: 80\n  host: "a\n'),
    ['<dir>/b.yaml:3:9: is not valid YAML: Missing closing "quote', '     2 |   port: 80', '     3 |   host: "a', '       |         ^'].join('\n'),
  );
  assert.equal(fileRefused('c.yaml', 'server: {port: 80, host: x y: z}\n').split('\n')[0], '<dir>/c.yaml:1:26: is not valid YAML: Block collections are not allowed within flow collections');
  // A tab as indentation is the error itself; a tab before the bad character stays a tab under
  // it, so the caret lines up in a terminal.
  assert.equal(fileRefused('d.yaml', 'server:\n  port: 1\n\thost: x\n').split('\n').slice(-2).join('\n'), '     3 | \thost: x\n       | ^');
  assert.equal(fileRefused('e.yaml', 'server: {port: 80,\thost: x y: z}\n').split('\n').slice(-2).join('\n'), '     1 | server: {port: 80,\thost: x y: z}\n       |                   \t      ^');
});

test('a JSON error with a position gets the same frame', () => {
  const message = fileRefused('e.json', '{\n  "server": { "port": 80 }\n  "log": {}\n}\n');
  assert.match(message, /^<dir>\/e\.json:3:3: is not valid JSON: /);
  assert.match(message, /\n {5}3 \| {3}"log": \{\}\n {7}\| {3}\^$/);
});
