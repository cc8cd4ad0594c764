/**
 * The writer: commits row updates at a steady rate from its own process. Every `tickMs` it sends
 * one autocommitted UPDATE of the rows due by then (rate × elapsed − sent), round robin over
 * ids 1..rows, setting `sent_us` to the wall-clock time (µs) taken just before the statement is
 * sent — the statement is its own transaction, so its commit follows within its execution time,
 * which is reported too. When Postgres cannot keep up, batches grow and the achieved rate says so.
 *
 * `set` is the rest of the SET list (what else changes, e.g. `qty = qty + 1`). `stop` ends a run
 * before its `seconds` are up.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { Samples, summarize } from '../lib/stats.ts';
import { serve } from '../lib/serve.ts';

interface RunParams {
  pgUrl: string;
  table: string;
  rows: number;
  /** Row changes per second. */
  rate: number;
  seconds: number;
  set: string;
  tickMs?: number;
}

const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
let client: pg.Client | null = null;
let cursor = 0;
/** `stop` ends a run early (it returns what it sent so far). */
let stopping = false;

async function run(p: RunParams) {
  if (!client) {
    client = new pg.Client({ connectionString: p.pgUrl });
    await client.connect();
  }
  const tick = p.tickMs ?? 5;
  const statement = `UPDATE ${p.table} SET sent_us = $1, ${p.set} WHERE id = ANY($2::int8[])`;
  const t0 = performance.now();
  const end = t0 + p.seconds * 1000;
  let sent = 0;
  let statements = 0;
  const exec = new Samples();
  let maxBatch = 0;
  stopping = false;
  while (performance.now() < end && !stopping) {
    const due = Math.floor(((performance.now() - t0) / 1000) * p.rate) - sent;
    if (due > 0) {
      const ids: number[] = new Array(due);
      for (let i = 0; i < due; i++) {
        ids[i] = (cursor % p.rows) + 1;
        cursor++;
      }
      const s0 = performance.now();
      await client.query(statement, [nowUs(), ids]);
      exec.push(performance.now() - s0);
      sent += due;
      statements++;
      maxBatch = Math.max(maxBatch, due);
    }
    const wait = tick - ((performance.now() - t0) % tick);
    await new Promise((r) => setTimeout(r, wait));
  }
  const seconds = (performance.now() - t0) / 1000;
  return { sent, seconds, rate: sent / seconds, statements, maxBatch, statementMs: summarize(exec.values()) };
}

serve({ run, stop: () => void (stopping = true) }, async () => {
  await client?.end().catch(() => {});
});
