// The Debezium bench peer's pure parts; running it needs java + Maven (see bench/debezium/smoke.ts).
import assert from 'node:assert/strict';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { JAVA_OPTS, debeziumCacheDir, debeziumVersion, javaOptions } from '../../../bench/peers/debezium.ts';

test('the Debezium version comes from the pom', () => {
  assert.equal(debeziumVersion(), '3.6.1.Final');
});

test('the build cache lives outside the repo unless TIDEWIRE_DEBEZIUM_CACHE says otherwise', () => {
  const saved = process.env.TIDEWIRE_DEBEZIUM_CACHE;
  try {
    delete process.env.TIDEWIRE_DEBEZIUM_CACHE;
    assert.equal(debeziumCacheDir(), join(homedir(), '.cache', 'tidewire', 'debezium-3.6.1.Final'));
    process.env.TIDEWIRE_DEBEZIUM_CACHE = '/tmp/x';
    assert.equal(debeziumCacheDir(), '/tmp/x');
  } finally {
    if (saved === undefined) delete process.env.TIDEWIRE_DEBEZIUM_CACHE;
    else process.env.TIDEWIRE_DEBEZIUM_CACHE = saved;
  }
});

test('extra JVM options replace the default collector and heap limit instead of clashing', () => {
  const saved = process.env.TIDEWIRE_DEBEZIUM_JAVA_OPTS;
  try {
    delete process.env.TIDEWIRE_DEBEZIUM_JAVA_OPTS;
    assert.deepEqual(javaOptions(), JAVA_OPTS);
    assert.deepEqual(javaOptions(['-XX:+UseG1GC']), ['-Xmx2g', '-XX:+UseG1GC']);
    process.env.TIDEWIRE_DEBEZIUM_JAVA_OPTS = '-Xmx512m  -XX:TieredStopAtLevel=1';
    assert.deepEqual(javaOptions(['-XX:+UseParallelGC']), ['-Xmx512m', '-XX:TieredStopAtLevel=1', '-XX:+UseParallelGC']);
  } finally {
    if (saved === undefined) delete process.env.TIDEWIRE_DEBEZIUM_JAVA_OPTS;
    else process.env.TIDEWIRE_DEBEZIUM_JAVA_OPTS = saved;
  }
});
