/**
 * `role` and `handoff.kafka` (issue #15): the default is today's node; ingest and edge need the
 * hand-off topic; an edge refuses sources and durable state, each with what to do.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigErrors, parseConfig } from '../../../services/config/config.ts';
import { ConfigError } from '../../../core/errors.ts';
import { withDefaultStateDir } from '../../../services/cli/start.ts';

const pg = { url: 'postgres://u:p@db:5432/shop', tables: [{ table: 'public.orders', path: 'orders/{id}' }] };
const handoff = { kafka: { brokers: ['k:9092'], topic: 'tidewire-handoff' } };

function refused(input: unknown): ConfigError[] {
  try {
    parseConfig(input, {});
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err instanceof ConfigErrors ? [...err.errors] : [err];
  }
  assert.fail('the configuration was accepted');
}

test('role defaults to all; handoff.kafka gets its defaults', () => {
  assert.equal(parseConfig({ postgres: pg }, {}).role, 'all');
  const ingest = parseConfig({ role: 'ingest', postgres: pg, handoff }, {});
  assert.deepEqual(ingest.handoff?.kafka, { brokers: ['k:9092'], topic: 'tidewire-handoff', clientId: 'tidewire-handoff', retentionMs: 604_800_000 });
  const edge = parseConfig({ role: 'edge', handoff }, {});
  assert.equal(edge.role, 'edge');
  assert.equal(withDefaultStateDir(edge).state?.dir, undefined, 'an edge gets no default state dir');
  assert.equal(withDefaultStateDir(ingest).state?.dir, '.tidewire/state');
});

test('ingest and edge without handoff.kafka are refused, naming the key and what it is for', () => {
  const [ingest] = refused({ role: 'ingest', postgres: pg });
  assert.equal(ingest.key, 'handoff.kafka');
  assert.match(ingest.message, /is required with role: ingest: the brokers and topic of the hand-off log the ingest node publishes every batch to/);
  const [edge] = refused({ role: 'edge' });
  assert.equal(edge.key, 'handoff.kafka');
  assert.match(edge.message, /is required with role: edge.*the edge replicates its topics from/);
});

test('an edge with sources or a state dir is refused, every problem at once', () => {
  const errors = refused({ role: 'edge', handoff, postgres: pg, kafka: { brokers: ['k:9092'], topics: [{ topic: 't', format: 'json', path: 't/{key}' }] }, state: { dir: '/var/lib/tidewire' } });
  assert.deepEqual(errors.map((e) => e.key), ['postgres', 'kafka', 'state.dir']);
  assert.match(errors[0].message, /role: edge reads no source.*remove the postgres section \(the ingest node reads it\), or set role: ingest/);
  assert.match(errors[2].message, /keeps its topic state in memory.*remove state.dir/);
  assert.doesNotThrow(() => parseConfig({ role: 'edge', handoff, state: { memory: true } }, {}));
});

test('handoff without a role, an unknown role and a bad topic name are refused', () => {
  assert.match(refused({ postgres: pg, handoff })[0].message, /^handoff: is used only by role: ingest or role: edge/);
  assert.match(refused({ role: 'replica', handoff })[0].message, /^role: must be one of all, ingest, edge/);
  const [topic] = refused({ role: 'edge', handoff: { kafka: { brokers: ['k:9092'], topic: 'no spaces' } } });
  assert.equal(topic.key, 'handoff.kafka.topic');
  assert.deepEqual(refused({ role: 'edge', handoff: { kafka: { topic: 't' } } }).map((e) => e.key), ['handoff.kafka.brokers']);
});
