/**
 * A child process for the crash tests in state-store.test.ts: commits to a state store and prints
 * one line per commit that resolved, until the parent kills it with SIGKILL.
 *
 *   node --import tsx state-writer.fixture.ts <dir> serial <filler>      one commit at a time
 *   node --import tsx state-writer.fixture.ts <dir> transfers <filler>   many commits in flight at once
 *
 * Every commit k moves one unit from account a to account b (a = 1000 - k, b = k: the sum stays
 * 1000) and rewrites `<filler>` other topics with version k, so one commit spans many pages; its
 * position is `k` and its seq k. A commit that is half there breaks one of those equalities.
 */
import { LmdbStateStore } from '../../../services/state/index.ts';
import type { StateChange } from '../../../services/state/index.ts';

const [dir, mode, fillerArg] = process.argv.slice(2);
const FILLER = Number(fillerArg);

function changes(k: number): StateChange[] {
  const out: StateChange[] = [
    { type: 'upsert', path: 'accounts/a', tenant: 'default', source: 'test', version: k, value: { balance: 1000 - k } },
    { type: 'upsert', path: 'accounts/b', tenant: 'default', source: 'test', version: k, value: { balance: k } },
  ];
  for (let i = 0; i < FILLER; i++) out.push({ type: 'upsert', path: `filler/${i}`, tenant: 'default', source: 'test', version: k, value: { k, pad: 'p'.repeat(100 + (k % 50)) } });
  return out;
}

const store = await LmdbStateStore.open(dir, { identity: { test: 'crash-fixture' } });
let k = store.seq;
const commit = (n: number) => store.commit({ changes: changes(n), positions: { test: String(n) }, seq: n }).then(() => process.stdout.write(`durable ${n}\n`));
if (mode === 'serial') {
  for (;;) await commit(++k);
} else {
  // Keep up to 50 commits in flight, so a kill finds several queued and one being written.
  let inFlight = 0;
  for (;;) {
    while (inFlight < 50) {
      inFlight++;
      void commit(++k).then(() => inFlight--);
    }
    await new Promise<void>((r) => setImmediate(r));
  }
}
