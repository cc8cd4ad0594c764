/** The CLI refuses broken configuration with the key and the fix, never a stack trace. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type TestPostgres, startPostgres } from '../support/postgres.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
let db: TestPostgres;

before(async () => {
  db = await startPostgres();
  await db.query('CREATE TABLE nopk (a int, b text)');
});
after(() => db?.stop());

function run(...args: string[]): { code: number | null; err: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/tidewire.mjs'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, TIDEWIRE_DATABASE_URL: '' } });
  return { code: r.status, err: r.stderr };
}

function file(name: string, text: string): string {
  const p = join(tmpdir(), `tidewire-cli-${process.pid}-${name}`);
  writeFileSync(p, text);
  return p;
}

test('a misspelt key is named, with exit code 2', () => {
  const r = run('start', '--config', file('a.yaml', 'postgres:\n  url: postgres://x\n  tables:\n    - table: orders\n      path: orders/{id}\n      exlude: [a]\n'));
  assert.equal(r.code, 2);
  assert.match(r.err, /postgres\.tables\.0\.exlude: is not a known setting/);
  assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
});

test('invalid YAML and a missing file say so', () => {
  assert.match(run('start', '--config', file('b.yaml', 'server: [')).err, /is not valid YAML/);
  assert.match(run('start', '--config', '/nonexistent/tidewire.yaml').err, /cannot read the configuration file \(ENOENT\)/);
});

test('a missing table and a table without primary key are refused with what to do', () => {
  const cfg = (table: string, path: string) => file(`${table}.json`, JSON.stringify({ server: { port: 0 }, log: { level: 'silent' }, postgres: { url: db.url, tables: [{ table, path }] } }));
  const missing = run('start', '--config', cfg('public.nosuch', 'x/{id}'));
  assert.equal(missing.code, 1);
  assert.match(missing.err, /nosuch/);
  assert.doesNotMatch(missing.err, /\n\s+at /);
  const nopk = run('start', '--config', cfg('public.nopk', 'x/{a}'));
  assert.equal(nopk.code, 1);
  assert.match(nopk.err, /primary key|replica identity/i);
  assert.doesNotMatch(nopk.err, /\n\s+at /);
});

test('unknown commands print usage', () => {
  const r = run('frobnicate');
  assert.equal(r.code, 1);
  assert.match(r.err, /unknown command "frobnicate"/);
});
