/**
 * The CLI keeps the conventions users expect (issue 18, items 4 and 5): --help and --version,
 * `watch --token` that never prints the token and stops at a 401 with what to do, logs in JSON
 * lines or readable lines (log.format), and a start against an unreachable database that retries
 * as postgres.connectRetries says, logs each attempt, and says that it exits.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SignJWT } from 'jose';
import type { TidewireService } from '../../services/service.ts';
import { type TestPostgres, freePort, startPostgres } from '../support/postgres.ts';
import { startService } from '../support/service.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const SECRET = 'a-test-secret-that-is-at-least-32-characters';
let service: TidewireService;
let url: string;

let db: TestPostgres;

before(async () => {
  db = await startPostgres();
  await db.query('CREATE TABLE orders (id int PRIMARY KEY)');
  ({ service, url } = await startService({
    server: { port: 0 },
    postgres: { url: db.url, slot: 'conventions', publication: 'conventions', tables: [{ table: 'public.orders', path: 'orders/{id}' }] },
    security: { jwt: { algorithms: ['HS256'], secret: SECRET }, roles: { reader: { read: ['orders/**'] } } },
  }));
});
after(async () => {
  await service?.stop();
  await db?.stop();
});

/** Runs the CLI in a folder of its own (a start may create its state folder there). */
function tidewire(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const cwd = mkdtempSync(join(tmpdir(), 'tidewire-conventions-cwd-'));
    const child = spawn(process.execPath, [join(ROOT, 'bin/tidewire.mjs'), ...args], { cwd, env: { ...process.env, TIDEWIRE_DATABASE_URL: '', TIDEWIRE_TOKEN: '', TIDEWIRE_LOG_FORMAT: '', ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      rmSync(cwd, { recursive: true, force: true });
      resolve({ code, out, err });
    });
  });
}

/** Runs `watch` until its output matches `until`, then stops it with SIGINT. */
function watchUntil(args: string[], until: RegExp, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/tidewire.mjs'), 'watch', ...args], { cwd: ROOT, env: { ...process.env, TIDEWIRE_TOKEN: '', ...env } });
    let out = '';
    let err = '';
    const stopIfDone = () => {
      if (until.test(out)) child.kill('SIGINT');
    };
    child.stdout.on('data', (d) => ((out += d), stopIfDone()));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

const token = () => new SignJWT({ roles: ['reader'], tenant: 'default' }).setProtectedHeader({ alg: 'HS256' }).setSubject('u1').setExpirationTime('10m').sign(new TextEncoder().encode(SECRET));

test('--help, help and <command> --help print usage and exit 0; --version prints the version', async () => {
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  for (const args of [['--help'], ['-h'], ['help']]) {
    const r = await tidewire(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.err}`);
    assert.match(r.out, /^usage: tidewire <command> \[options\]\n/);
    for (const c of ['start', 'watch', 'check', 'slots']) assert.match(r.out, new RegExp(`\\n  ${c} `));
    assert.ok(r.out.split('\n').every((l) => l.length <= 80), 'fits 80 columns');
  }
  for (const c of ['start', 'watch', 'check', 'slots']) {
    for (const args of [[c, '--help'], [c, '-h'], ['help', c]]) {
      const r = await tidewire(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.err}`);
      assert.match(r.out, new RegExp(`^usage: tidewire ${c} `), args.join(' '));
      assert.match(r.out, /\noptions:\n/);
      assert.ok(r.out.split('\n').every((l) => l.length <= 80), `${c} --help fits 80 columns`);
    }
  }
  for (const args of [['--version'], ['-v'], ['version']]) {
    const r = await tidewire(args);
    assert.equal(r.code, 0);
    assert.equal(r.out, `tidewire ${version}\n`);
  }
  const none = await tidewire([]);
  assert.equal(none.code, 2, 'no command is a usage error');
  assert.match(none.err, /^usage: tidewire/);
  const unknownOption = await tidewire(['watch', '--bogus']);
  assert.equal(unknownOption.code, 1);
  assert.match(unknownOption.err, /Unknown option '--bogus'[\s\S]*usage: tidewire watch /);
});

test('watch without a token against a server that needs one: says so and exits 1, instead of retrying forever', async () => {
  const r = await tidewire(['watch', 'orders/**', '--url', url], {}, 20_000);
  assert.equal(r.code, 1, `exit code; stderr: ${r.err}`);
  assert.equal(r.err, 'tidewire watch: this server needs a token: --token <jwt> (or set TIDEWIRE_TOKEN)\n');
  assert.doesNotMatch(r.out, /reconnecting/);
  const bad = await tidewire(['watch', 'orders/**', '--url', url, '--token', 'not.a.token'], {}, 20_000);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /^tidewire watch: the server refused the token \(401: .*\); pass a valid, unexpired token for this server with --token <jwt> or TIDEWIRE_TOKEN/);
  assert.doesNotMatch(bad.err + bad.out, /not\.a\.token/, 'the token is never printed');
});

test('watch --token and TIDEWIRE_TOKEN connect, and no line shows the token, not even one given in the URL', async () => {
  const jwt = await token();
  const viaFlag = await watchUntil(['orders/**', '--url', url, '--token', jwt], /live: 0 topics match orders\/\*\*/);
  assert.match(viaFlag.out, new RegExp(`^connected to ${url.replace(/[/.]/g, '\\$&')} \\(epoch [^)]+\\)\\nlive: 0 topics match orders/\\*\\*\\n`));
  const viaEnv = await watchUntil(['orders/**', '--url', url], /live: 0 topics/, { TIDEWIRE_TOKEN: jwt });
  assert.match(viaEnv.out, /^connected to /);
  const inUrl = await watchUntil(['orders/**', '--url', `${url}?access_token=${jwt}`], /live: 0 topics/);
  assert.match(inUrl.out, /^connected to ws:\/\/127\.0\.0\.1:\d+\/ws\?access_token=\*\*\* \(epoch/);
  for (const r of [viaFlag, viaEnv, inUrl]) {
    assert.ok(!r.out.includes(jwt) && !r.err.includes(jwt), 'the token is never printed');
    assert.ok(!r.out.includes(jwt.split('.')[2]), 'not even its signature');
  }
});

let n = 0;
function configFile(config: object): string {
  const file = join(tmpdir(), `tidewire-conventions-${process.pid}-${++n}.json`);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

test('start against an unreachable database: retries postgres.connectRetries times, logging each, then says it exits (code 1)', async () => {
  const closed = await freePort();
  const file = configFile({
    server: { port: 0 },
    log: { level: 'info' },
    postgres: { url: `postgres://u:p@127.0.0.1:${closed}/db`, connectRetries: 2, tables: [{ table: 'public.orders', path: 'orders/{id}' }] },
  });
  const started = Date.now();
  const r = await tidewire(['start', '--config', file]);
  assert.equal(r.code, 1, r.err);
  const records = r.out.trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string; attempt?: number; attempts?: number; delayMs?: number });
  const retries = records.filter((x) => /is not reachable: attempt \d of 3 failed, retrying in \d+ ms \(postgres\.connectRetries\)$/.test(x.msg));
  assert.deepEqual(retries.map((x) => [x.level, x.attempt, x.attempts]), [[40, 1, 3], [40, 2, 3]], 'two retries, each a warning with its attempt');
  assert.ok(retries.every((x) => typeof x.delayMs === 'number' && x.delayMs >= 0 && x.delayMs <= 1000), 'full-jitter delays of 500 ms doubling');
  assert.match(r.err, new RegExp(`^tidewire: lost or could not open the connection to Postgres at 127\\.0\\.0\\.1:${closed}/db while connecting \\(ECONNREFUSED\\): check that the server is running and postgres.url is right; gave up after 3 attempts in \\d+ s \\(postgres\\.connectRetries: 2\\)\\ntidewire start: could not start; exiting with code 1\\n$`));
  assert.doesNotMatch(r.err, /tidewire retries/, 'nothing promises a retry that does not come');
  assert.ok(Date.now() - started < 30_000);
});

test('log.format: json lines when stdout is not a terminal (auto), readable lines with pretty, TIDEWIRE_LOG_FORMAT overrides', async () => {
  const closed = await freePort();
  const postgres = { url: `postgres://u:p@127.0.0.1:${closed}/db`, connectRetries: 0, tables: [{ table: 'public.orders', path: 'orders/{id}' }] };
  const auto = await tidewire(['start', '--config', configFile({ server: { port: 0 }, postgres })]);
  assert.equal(auto.code, 1);
  const lines = auto.out.trim().split('\n');
  assert.ok(lines.length >= 2);
  for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), `a JSON line: ${l}`);

  const prettyFile = configFile({ server: { port: 0 }, log: { format: 'pretty' }, postgres });
  for (const r of [await tidewire(['start', '--config', prettyFile]), await tidewire(['start', '--config', configFile({ server: { port: 0 }, postgres })], { TIDEWIRE_LOG_FORMAT: 'pretty' })]) {
    assert.equal(r.code, 1);
    const pretty = r.out.trim().split('\n');
    for (const l of pretty) assert.match(l, /^\d\d:\d\d:\d\d\.\d{3} (TRACE|DEBUG|INFO |WARN |ERROR|FATAL) /, l);
    assert.ok(pretty.some((l) => /^\S+ INFO  distribution: distribution listening host=127\.0\.0\.1 port=\d+$/.test(l)), pretty.join('\n'));
    assert.ok(pretty.some((l) => /^\S+ ERROR postgres: postgres connector could not start slot=tidewire code=PG_UNREACHABLE — lost or could not open the connection/.test(l)), pretty.join('\n'));
    assert.doesNotMatch(r.out, /\x1b\[/, 'no colours when stdout is not a terminal');
  }
});
