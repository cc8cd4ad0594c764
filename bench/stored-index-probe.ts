/**
 * Probe (not part of `npm run bench`): topic state on the heap vs in the store for N order-like
 * topics: load/restore time, heap after GC, a full `**` walk and N random gets.
 *   node --expose-gc --import tsx bench/stored-index-probe.ts [N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSelector } from '../core/selector.ts';
import type { TopicUpdate } from '../core/topic.ts';
import { LmdbStateStore } from '../services/state/lmdb-state-store.ts';
import { journalFor, keepTopicsIn } from '../services/service.ts';
import { TopicStore } from '../services/topics/topic-store.ts';

const N = Number(process.argv[2] ?? 1_000_000);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const heap = () => (gc(), gc(), process.memoryUsage().heapUsed);
const row = (i: number) => ({ id: i, customer: i % 97, status: 'open', qty: i % 10, price: (i % 1000) / 10, currency: 'EUR', ship_to: `${i % 500} Harbour Street, Flat ${i % 40}, Portsmouth`, note: `leave with the neighbour (order ${i})`, flag: i % 2 === 0, v: 0 });
const updates = (from: number, to: number): TopicUpdate[] => Array.from({ length: to - from }, (_, k) => ({ path: `orders/${(from + k) % 97}/${from + k}`, source: 's', value: row(from + k) }));

async function fill(store: TopicStore, journal?: { flushed(): Promise<void> }, write?: (b: ReturnType<TopicStore['apply']>) => Promise<void> | null) {
  for (let i = 0; i < N; i += 1000) {
    const b = store.apply(updates(i, Math.min(N, i + 1000)));
    const w = write?.(b);
    if (w) await w;
  }
  await journal?.flushed();
}

function probe(label: string, store: TopicStore) {
  let t = performance.now();
  let n = 0;
  store.forEachMatching(parseSelector('**'), () => n++);
  const walk = performance.now() - t;
  t = performance.now();
  let m = 0;
  store.forEachMatching(parseSelector('orders/7/**'), () => m++);
  const sub = performance.now() - t;
  t = performance.now();
  for (let i = 0; i < 100_000; i++) {
    const k = (i * 7919) % N;
    if (!store.get(`orders/${k % 97}/${k}`)) throw new Error('missing');
  }
  const gets = performance.now() - t;
  console.log(`${label}: walk ** ${n} in ${walk.toFixed(0)} ms; orders/7/** ${m} in ${sub.toFixed(0)} ms; 100k gets ${gets.toFixed(0)} ms`);
}

const h0 = heap();
const mem = new TopicStore();
let t = performance.now();
await fill(mem);
console.log(`heap: load ${(performance.now() - t).toFixed(0)} ms, heap ${((heap() - h0) / N).toFixed(0)} B/topic`);
probe('heap', mem);

const dir = mkdtempSync(join(tmpdir(), 'probe-'));
try {
  const h1 = heap();
  let state = await LmdbStateStore.open(dir, { identity: {} });
  const st = new TopicStore();
  const index = keepTopicsIn(st, state);
  await state.setEpoch(st.epoch);
  const journal = journalFor(state, index);
  t = performance.now();
  await fill(st, journal, (b) => journal.write(b));
  console.log(`stored: load ${(performance.now() - t).toFixed(0)} ms, heap ${((heap() - h1) / N).toFixed(0)} B/topic (the heap store above still held)`);
  probe('stored', st);
  await state.close();
  t = performance.now();
  state = await LmdbStateStore.open(dir, { identity: {} });
  const again = new TopicStore();
  keepTopicsIn(again, state);
  again.restore({ epoch: state.epoch!, seq: state.seq, versionFloor: state.versionFloor, removals: state.removals() });
  console.log(`stored: reopen + restore ${(performance.now() - t).toFixed(0)} ms, ${again.size} topics`);
  probe('stored, reopened', again);
  await state.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
