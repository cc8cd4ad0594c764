/**
 * pgbench's own TPC-B workload through tidewire into one SDK client (issue #12): every
 * transaction moves the same amount into an account, its teller and its branch, so in every state
 * the database ever held sum(abalance) = sum(tbalance) = sum(bbalance). The client subscribes to
 * all 100,011 topics (a paged answer, default limits) while pgbench runs, and from the moment the
 * subscription is first answered the three sums must be equal after every frame it applies —
 * through the pages of the answer and the changes during loading, a kill -9 of tidewire, the
 * restart and the resume. At the end the client holds exactly the tables.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { TidewireClient } from '../../client/index.ts';
import type { JsonObject } from '../../core/json.ts';
import { jsonEqual } from '../../core/json.ts';
import { type TestPostgres, freePort, startPostgres } from '../support/postgres.ts';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.ts';
import { perFrame } from '../support/per-frame.ts';
import { waitFor } from '../support/wait.ts';

let db: TestPostgres;
let svc: ServiceProcess | undefined;
let bench: ChildProcess | undefined;

function pgbench(args: string[]): ChildProcess {
  const child = spawn('pgbench', [...args, db.url], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  child.once('exit', (code) => {
    if (code !== 0 && code !== null) process.stderr.write(`pgbench exited with ${code}: ${out.slice(-2000)}\n`);
  });
  (child as ChildProcess & { output: () => string }).output = () => out;
  return child;
}

const exited = (child: ChildProcess) => new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));

before(async () => {
  db = await startPostgres();
  const init = pgbench(['-i', '-s', '1', '-q', '-I', 'dtgvp']);
  assert.equal(await exited(init), 0, 'pgbench -i');
});

after(async () => {
  bench?.kill('SIGKILL');
  await svc?.kill();
  await db?.stop();
});

test('TPC-B under pgbench: the three sums agree after every frame the client applies, through a paged load, a kill -9 and the resume', { timeout: 240_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tidewire-state-tpcb-'));
  const port = await freePort();
  const config = {
    log: { level: 'info' },
    state: { dir },
    postgres: {
      url: db.url,
      slot: 'tpcb',
      publication: 'tpcb',
      tables: [
        { table: 'public.pgbench_accounts', path: 'accounts/{bid}/{aid}', include: ['aid', 'bid', 'abalance'] },
        { table: 'public.pgbench_tellers', path: 'tellers/{bid}/{tid}', include: ['tid', 'bid', 'tbalance'] },
        { table: 'public.pgbench_branches', path: 'branches/{bid}', include: ['bid', 'bbalance'] },
      ],
    },
  };
  svc = await startServiceProcess(config, port);
  // Writes go on through everything below.
  bench = pgbench(['-n', '-c', '2', '-j', '1', '-T', '25', '-R', '150']);

  const balances = new Map<string, number>();
  const sums = { a: 0, t: 0, b: 0 };
  const kind = (path: string) => (path.startsWith('accounts/') ? 'a' : path.startsWith('tellers/') ? 't' : 'b');
  const balanceOf = (path: string, v: JsonObject) => (v.abalance ?? v.tbalance ?? v.bbalance) as number;
  const last = new Map<string, JsonObject>();
  const violations: string[] = [];
  let frames = 0;
  let duplicates = 0;
  const removals: string[] = [];
  let answered = false;
  let phase = 'load';
  const afterFrame = perFrame(() => {
    if (!answered) return;
    frames++;
    if (sums.a !== sums.t || sums.t !== sums.b) violations.push(`${phase} (${sub.state}): accounts ${sums.a}, tellers ${sums.t}, branches ${sums.b} over ${balances.size} topics`);
  });
  const client = new TidewireClient({ url: `ws://127.0.0.1:${port}/ws`, reconnect: { initialMs: 100, maxMs: 400 } });
  t.after(() => client.close());
  const resumes: Array<{ resumed: string; epochChanged: boolean }> = [];
  const sub = client.subscribe('**', {
    onValue: (path, value) => {
      const prev = last.get(path);
      if (prev !== undefined && jsonEqual(prev, value)) duplicates++;
      last.set(path, value);
      const k = kind(path);
      sums[k] += balanceOf(path, value) - (balances.get(path) ?? 0);
      balances.set(path, balanceOf(path, value));
      afterFrame();
    },
    onRemoval: (path) => {
      removals.push(path);
      afterFrame();
    },
    onLive: () => {
      answered = true;
      afterFrame();
    },
    onResume: (info) => (resumes.push({ resumed: info.resumed, epochChanged: info.epochChanged }), (phase = `resume ${info.resumed}`)),
  });
  await client.connect();
  await waitFor('the paged answer of 100,011 topics', () => sub.live && sub.values.size === 100_011, 60_000);
  const epoch = client.epoch;
  await new Promise((r) => setTimeout(r, 2000));

  phase = 'killed';
  assert.equal(await svc.kill('SIGKILL'), null, 'killed, not stopped');
  await new Promise((r) => setTimeout(r, 500)); // pgbench goes on while tidewire is down
  svc = await startServiceProcess(config, port);
  await waitFor('the resume', () => resumes.length > 0 && sub.live, 60_000);
  phase = 'resumed';
  assert.equal(await exited(bench), 0, 'pgbench ran to its end');
  const done = (bench as ChildProcess & { output: () => string }).output();
  const tx = Number(/number of transactions actually processed: (\d+)/.exec(done)?.[1] ?? 0);
  assert.ok(tx > 500, `pgbench committed transactions (${tx})`);

  const { rows } = await db.query<{ path: string; balance: number }>(`
    SELECT 'accounts/' || bid || '/' || aid AS path, abalance AS balance FROM pgbench_accounts
    UNION ALL SELECT 'tellers/' || bid || '/' || tid, tbalance FROM pgbench_tellers
    UNION ALL SELECT 'branches/' || bid, bbalance FROM pgbench_branches`);
  await waitFor('the client to hold exactly the tables', () => rows.every((r) => balances.get(r.path) === r.balance) && sub.values.size === rows.length, 30_000);
  assert.equal(client.epoch, epoch, 'the same epoch after the restart');
  for (const r of resumes) assert.notEqual(r.resumed, 'fresh');
  assert.ok(frames > 50, `frames were checked (${frames})`);
  assert.deepEqual(violations.slice(0, 8), [], `the three sums agreed after every one of ${frames} frames (${violations.length} did not)`);
  assert.deepEqual(removals, [], 'no removal');
  assert.equal(duplicates, 0, 'no value emitted twice');
  client.close();
  await svc.kill('SIGTERM');
  svc = undefined;
});
