/**
 * A Postgres transaction too large to apply at once (over 10,000 row changes: applied in chunks)
 * still reaches every client whole: after every frame a client applies it holds the table either
 * before the transaction or after it, never a part of it — a client subscribed before it, and
 * clients that subscribe while it is being applied (their answers wait for its end), with a real
 * Postgres and a real `tidewire start` process.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { TidewireClient } from '../../client/index.ts';
import { type TestPostgres, freePort, startPostgres } from '../support/postgres.ts';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.ts';
import { perFrame } from '../support/per-frame.ts';
import { waitFor } from '../support/wait.ts';

const ROWS = 30_000; // three chunks of 10,000
const START = 100;

let db: TestPostgres;
let svc: ServiceProcess | undefined;
const clients: TidewireClient[] = [];

before(async () => {
  db = await startPostgres();
  await db.query(`CREATE TABLE acct (id int PRIMARY KEY, bal int NOT NULL)`);
  await db.query(`INSERT INTO acct SELECT g, ${START} FROM generate_series(1, ${ROWS}) g`);
});

after(async () => {
  for (const c of clients) c.close();
  await svc?.kill();
  await db?.stop();
});

/**
 * A client of `acct/**` checking, after every frame it applies once answered, that the balances
 * it holds are one state of the table: every row moved by the same number of transactions
 * (each transaction below moves every row), and their sum unchanged.
 */
function watcher(port: number, name: string, selector = 'acct/**', rows = ROWS) {
  const client = new TidewireClient({ url: `ws://127.0.0.1:${port}/ws`, reconnect: { initialMs: 100, maxMs: 400 } });
  clients.push(client);
  const balances = new Map<string, number>();
  const w = { client, name, frames: 0, violations: [] as string[], answered: false, sub: undefined as never as ReturnType<TidewireClient['subscribe']> };
  const afterFrame = perFrame(() => {
    if (!w.answered) return;
    w.frames++;
    let sum = 0;
    const steps = new Set<number>();
    for (const [path, bal] of balances) {
      sum += bal;
      const id = Number(path.slice(path.lastIndexOf('/') + 1));
      steps.add((id % 2 === 0 ? bal - START : START - bal) / 7);
    }
    if (balances.size !== rows || sum !== rows * START || steps.size !== 1) {
      w.violations.push(`${name}: ${balances.size} rows, sum ${sum}, rows at ${steps.size} different transaction counts`);
    }
  });
  w.sub = client.subscribe(selector, {
    onValue: (path, value) => {
      balances.set(path, value.bal as number);
      afterFrame();
    },
    onRemoval: (path) => {
      balances.delete(path);
      afterFrame();
    },
    onLive: () => {
      w.answered = true;
      afterFrame();
    },
  });
  return w;
}

test('a transaction of 30,000 row changes reaches every client whole, subscribed before it or while it is applied', { timeout: 180_000 }, async () => {
  const port = await freePort();
  svc = await startServiceProcess(
    {
      log: { level: 'info' },
      state: { dir: mkdtempSync(join(tmpdir(), 'tidewire-large-txn-')) },
      postgres: { url: db.url, slot: 'large_txn', publication: 'large_txn', tables: [{ table: 'public.acct', path: 'acct/{id}' }] },
    },
    port,
  );
  const first = watcher(port, 'subscribed before');
  await first.client.connect();
  await waitFor('the first client to hold the table', () => first.sub.live && first.sub.values.size === ROWS, 60_000);

  // Each transaction moves every row by 7: even ids up, odd ids down (the sum stays).
  const late: ReturnType<typeof watcher>[] = [];
  for (let t = 0; t < 3; t++) {
    const update = db.query(`UPDATE acct SET bal = bal + CASE WHEN id % 2 = 0 THEN 7 ELSE -7 END`);
    // Clients that subscribe while the transaction is decoded and applied in chunks.
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 60));
      const w = watcher(port, `subscribed during transaction ${t + 1} (+${(i + 1) * 60} ms)`);
      late.push(w);
      void w.client.connect();
    }
    await update;
    const moved = (t + 1) * 7;
    await waitFor(`transaction ${t + 1} to reach the first client`, () => first.sub.values.get('acct/2')?.bal === START + moved && first.sub.values.get(`acct/${ROWS - 1}`)?.bal === START - moved, 60_000);
  }
  for (const w of late) {
    await waitFor(`${w.name} to hold the table`, () => w.sub.live && w.sub.values.size === ROWS && w.sub.values.get('acct/2')?.bal === START + 21, 60_000);
  }
  const all = [first, ...late];
  assert.ok(first.frames >= 3, `the first client applied frames (${first.frames})`);
  assert.deepEqual(all.flatMap((w) => w.violations).slice(0, 6), [], 'every client held one state of the table after every frame');
});

test('kill -9 inside a transaction applied in parts: after the restart a resumed client still holds one state of the table after every frame', { timeout: 240_000 }, async () => {
  const rows = 200_000; // twenty chunks: a kill lands inside the transaction
  await db.query(`CREATE TABLE big (id int PRIMARY KEY, bal int NOT NULL)`);
  await db.query(`INSERT INTO big SELECT g, ${START} FROM generate_series(1, ${rows}) g`);
  const port = await freePort();
  const config = {
    log: { level: 'info' },
    state: { dir: mkdtempSync(join(tmpdir(), 'tidewire-large-txn-kill-')) },
    postgres: { url: db.url, slot: 'large_kill', publication: 'large_kill', tables: [{ table: 'public.big', path: 'big/{id}' }] },
  };
  await svc?.kill();
  svc = await startServiceProcess(config, port);
  const w = watcher(port, 'resumed across the kill', 'big/**', rows);
  await w.client.connect();
  await waitFor('the client to hold the table', () => w.sub.live && w.sub.values.size === rows, 120_000);

  /** Row changes the service has applied (GET /metrics), so the kill comes while the transaction's chunks are being applied, whatever the machine's load. */
  const applied = async () => Number(/^tidewire_updates_applied_total ([0-9]+)$/m.exec(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())?.[1] ?? 0);
  let cut = false;
  let moved = 0;
  for (const chunks of [3, 6, 2, 10]) {
    const before = await applied();
    await db.query(`UPDATE big SET bal = bal + CASE WHEN id % 2 = 0 THEN 7 ELSE -7 END`);
    moved += 7;
    await waitFor(`${chunks} chunks of the transaction to be applied`, async () => (await applied()) - before >= chunks * 10_000, 60_000, 5);
    assert.equal(await svc.kill('SIGKILL'), null, 'killed');
    svc = await startServiceProcess(config, port);
    cut = /"openTransaction":true/.test(svc.output());
    if (cut) {
      // Not ready while the state holds a part of the transaction; ready once it is whole again.
      const r = await fetch(`http://127.0.0.1:${port}/ready`);
      const body = await r.text();
      if (r.status === 200) {
        await new Promise((done) => setTimeout(done, 300)); // the log line is written just after
        assert.match(svc.output(), /the transaction a crash cut is applied to its end/, 'ready only once the transaction is whole');
      } else assert.match(body, /a part of a transaction a crash cut/);
    }
    await waitFor('the client to hold the table after the transaction', () => w.sub.live && w.sub.values.get('big/2')?.bal === START + moved && w.sub.values.get(`big/${rows - 1}`)?.bal === START - moved, 120_000);
    if (cut) break;
  }
  assert.ok(cut, 'one of the kills came inside the transaction (the restart found a part of it stored)');
  assert.ok(w.frames > 0, 'frames were checked');
  assert.deepEqual(w.violations.slice(0, 6), [], 'the client held one state of the table after every frame');
  assert.match(svc!.output(), /the transaction a crash cut is applied to its end/);
});
