#!/usr/bin/env node
// Runs every test file (unit, then integration) with Node's built-in test runner through tsx.
// Usage: npm test [-- <path filter>...]  e.g. `npm test -- unit` or `npm test -- postgres`.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return find(p);
    return /\.test\.ts$/.test(name) ? [relative(root, p)] : [];
  });
}

const files = ['test/unit', 'test/integration', 'test/browser']
  .flatMap((d) => {
    try {
      return find(join(root, d)).sort();
    } catch {
      return [];
    }
  })
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));

if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}

const env = { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: '1' };
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=300000', ...files], {
  cwd: root,
  stdio: 'inherit',
  env,
});
process.exit(r.status ?? 1);
