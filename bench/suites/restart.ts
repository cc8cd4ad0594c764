/**
 * restart — the cost of the durability decision (docs/DESIGN.md: topic state in memory, rebuilt
 * at every start by a consistent snapshot under a new epoch):
 *  1. restart time of a real TidewireService over a large table: start → slot created →
 *     snapshot applied → streaming, snapshot rows/s, peak RSS; a change made afterwards must arrive;
 *  2. the steady-state side: the design adds no write at all per change. To put a number on what
 *     it avoids, the same WAL ingest runs as tidewire does it and with a local journal (every
 *     transaction's updates appended and fdatasync'd before it counts as applied) — the minimum
 *     a design persisting topic state would add.
 */
import { join } from 'node:path';
import { mib, num, ratio } from '../lib/format.ts';
import { INGEST_PUBLICATION, type TidewireIngest, runTidewireIngest } from '../lib/ingest-run.ts';
import { INGEST_DDL, INGEST_TABLE, writeIngestWorkload } from '../lib/ingest-workload.ts';
import { serverVersion, startBenchPostgres } from '../lib/postgres.ts';
import { median } from '../lib/stats.ts';
import { Worker } from '../lib/worker.ts';
import type { Suite, SuiteResult } from '../suite.ts';

const TABLE = 'restart_items';

interface StartResult {
  port: number;
  seconds: number;
  marks: Record<string, number>;
  logged: Array<{ rows?: number; ms?: number; rowsPerSecond?: number; msg: string }>;
  topics: number;
}

export const suite: Suite = {
  name: 'restart',
  title: 'Restart: re-snapshot at start, and the steady-state cost of the design',
  async run(ctx): Promise<SuiteResult> {
    const rows = ctx.quick ? 100_000 : Number(process.env.BENCH_RESTART_ROWS ?? 10_000_000);
    const starts = ctx.quick ? 2 : 1;
    const journalChanges = ctx.quick ? 20_000 : 200_000;
    const journalReps = ctx.quick ? 1 : 2;
    const pg = await startBenchPostgres();
    try {
      const pgVersion = await serverVersion(pg);
      // The ingest suite's 10-column table, filled in chunks of a million rows.
      await pg.query(INGEST_DDL.replace(INGEST_TABLE, TABLE));
      const t0 = performance.now();
      const chunk = 1_000_000;
      for (let i = 0; i < rows; i += chunk) {
        await pg.query(`
          INSERT INTO ${TABLE} (id, a, b, c, label, note, price, ts, flag, doc)
            SELECT i, (i % 1000)::int4, i * 7, (i % 13)::int4, 'item-' || i, repeat('n', (i % 40)::int),
                   (i % 100000) / 100.0, now() - (i % 3600) * interval '1 second', i % 2 = 0,
                   jsonb_build_object('k', i, 'tags', jsonb_build_array('x', 'y'), 'nested', jsonb_build_object('v', i % 7))
              FROM generate_series(${i + 1}::int8, ${Math.min(rows, i + chunk)}::int8) AS i`);
        ctx.log(`restart: ${num(Math.min(rows, i + chunk))} rows written`);
      }
      await pg.query(`VACUUM ANALYZE ${TABLE}`);
      const loadSeconds = (performance.now() - t0) / 1000;
      const tableBytes = Number((await pg.query<{ b: string }>(`SELECT pg_total_relation_size('${TABLE}') AS b`)).rows[0].b);
      ctx.log(`restart: ${num(rows)} rows (${mib(tableBytes)}) loaded in ${loadSeconds.toFixed(0)} s`);

      const runs: Array<StartResult & { peakRssBytes: number; cpuSeconds: number; snapshotSeconds: number; rowsPerSecond: number; slotSeconds: number; changeSeenMs: number }> = [];
      for (let k = 0; k < starts; k++) {
        const heapMiB = Math.max(4096, Math.ceil((rows * 1400) / 2 ** 20));
        const w = await Worker.start('service', [], { nodeArgs: [`--max-old-space-size=${heapMiB}`] });
        try {
          const r = await w.call<StartResult>('start', {
            config: {
              server: { host: '127.0.0.1', port: 0 },
              postgres: { url: pg.url, slot: 'bench_restart', publication: 'bench_restart', tables: [{ table: `public.${TABLE}`, path: 'items/{id}' }] },
              log: { level: 'info' },
            },
            logLevel: 'info',
          });
          if (r.topics !== rows) throw new Error(`after start the service holds ${r.topics} topics, the table has ${rows} rows`);
          // Streaming: a change made now must reach topic state.
          const c0 = performance.now();
          await pg.query(`UPDATE ${TABLE} SET a = a + 1 WHERE id = 1`);
          for (;;) {
            const t = await w.call<{ version: number } | null>('topic', { path: 'items/1' });
            if (t && t.version >= 2) break;
            if (performance.now() - c0 > 30_000) throw new Error('a change made after start did not arrive within 30 s');
            await new Promise((res) => setTimeout(res, 20));
          }
          const changeSeenMs = performance.now() - c0;
          w.watch.sample();
          const snap = r.logged.find((l) => l.msg === 'snapshot applied');
          const slotAt = r.marks['created replication slot with an exported snapshot'] ?? NaN;
          const snapAt = r.marks['snapshot applied'] ?? NaN;
          const run = {
            ...r,
            peakRssBytes: w.watch.hwm,
            cpuSeconds: w.watch.cpu,
            slotSeconds: slotAt,
            snapshotSeconds: snap?.ms !== undefined ? snap.ms / 1000 : snapAt - slotAt,
            rowsPerSecond: snap?.rowsPerSecond ?? rows / (snapAt - slotAt),
            changeSeenMs,
          };
          runs.push(run);
          ctx.log(`restart: start ${k + 1}: streaming after ${r.seconds.toFixed(1)} s (snapshot ${run.snapshotSeconds.toFixed(1)} s, ${num(run.rowsPerSecond)} rows/s), peak RSS ${mib(run.peakRssBytes)}`);
        } finally {
          await w.stop(60_000);
        }
      }

      // Steady state: the same pre-written WAL read as tidewire does it, and with a journal.
      await pg.query(INGEST_DDL);
      await pg.query(`CREATE PUBLICATION ${INGEST_PUBLICATION} FOR TABLE ${INGEST_TABLE}`);
      const slots = Array.from({ length: journalReps }, (_, i) => ({ plain: `bench_plain_${i}`, journal: `bench_journal_${i}` }));
      for (const s of slots) {
        await pg.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [s.plain]);
        await pg.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [s.journal]);
      }
      await writeIngestWorkload(pg, journalChanges);
      const topics = Number((await pg.query<{ n: string }>(`SELECT count(*) AS n FROM ${INGEST_TABLE}`)).rows[0].n);
      const plain: TidewireIngest[] = [];
      const journaled: TidewireIngest[] = [];
      for (let i = 0; i < journalReps; i++) {
        plain.push(await runTidewireIngest(pg, slots[i].plain, journalChanges, topics));
        journaled.push(await runTidewireIngest(pg, slots[i].journal, journalChanges, topics, { journal: join(ctx.scratchDir, `journal-${i}.jsonl`) }));
      }
      const rate = (xs: TidewireIngest[]) => median(xs.map((x) => journalChanges / x.seconds));
      const cpuPerM = (xs: TidewireIngest[]) => median(xs.map((x) => (x.cpuSecondsStreaming / journalChanges) * 1e6));
      const pr = rate(plain);
      const jr = rate(journaled);
      ctx.log(`restart: steady state ${num(pr)} changes/s as designed, ${num(jr)} with a journal`);

      const med = (f: (r: (typeof runs)[number]) => number) => median(runs.map(f));
      return {
        summary:
          `A ${num(rows)}-row table of the ingest suite's 10 columns (${mib(tableBytes)} on disk with its index; ${loadSeconds.toFixed(0)} s to load with INSERT … SELECT generate_series) on Postgres ${pgVersion}. ` +
          `A TidewireService (its own process, \`--max-old-space-size\` sized for the table) starts as in production: drops and re-creates its slot with an exported snapshot, reads the table through a cursor (5,000 rows per fetch) into topic state, then streams; ` +
          `phase times come from the connector's own log lines; a row updated right after start must then reach topic state. ${starts > 1 ? `${starts} starts, medians shown.` : 'One start (a second would add the same again to the run).'} ` +
          `Steady state: ${num(journalChanges)} pre-written row changes (the ingest workload) read by tidewire's streaming pieces as they are, and with a local journal added, ${journalReps} run(s) each.`,
        command: `npm run bench -- --only restart${ctx.quick ? ' --quick' : ''}`,
        tables: [
          {
            title: `Start with ${num(rows)} rows: service start → snapshot applied → streaming`,
            columns: ['', 'value'],
            rows: [
              ['start → slot created (preflight, publication, slot with exported snapshot)', `${med((r) => r.slotSeconds).toFixed(2)} s`],
              ['snapshot (read and applied to topic state)', `${med((r) => r.snapshotSeconds).toFixed(1)} s`],
              ['snapshot rows/s', num(med((r) => r.rowsPerSecond))],
              ['start → streaming (start() resolved)', `${med((r) => r.seconds).toFixed(1)} s`],
              ['a change made right after start reached topic state in', `${num(med((r) => r.changeSeenMs))} ms`],
              ['peak RSS of the service process', mib(med((r) => r.peakRssBytes))],
              ['peak RSS per row', `${num(med((r) => r.peakRssBytes) / rows)} B`],
              ['CPU seconds of the service process (start, snapshot, a moment of streaming)', num(med((r) => r.cpuSeconds), 1)],
            ],
            notes: ['Restart time grows linearly with the table: at this rate, every million rows add about ' + `${num(1e6 / med((r) => r.rowsPerSecond), 1)} s.`],
          },
          {
            title: 'Steady state: what the design writes per change — nothing',
            columns: ['', 'tidewire as designed (no writes)', 'with a local journal (append + fdatasync per transaction)', 'designed ÷ journal'],
            rows: [
              ['changes/s', num(pr), num(jr), ratio(pr, jr, 2)],
              ['CPU s per million changes (streaming)', num(cpuPerM(plain), 1), num(cpuPerM(journaled), 1), ratio(cpuPerM(plain), cpuPerM(journaled), 2)],
            ],
            notes: [
              'tidewire writes nothing per change: topic state is in memory, the LSN acknowledged to Postgres is its only durable record (and Postgres keeps the data). The journal column is not tidewire: it prices the cheapest alternative (one sequential append and one fdatasync per 1,000-change transaction), on this machine\'s disk.',
            ],
          },
        ],
        data: { postgres: pgVersion, rows, tableBytes, loadSeconds, runs, journalChanges, plain, journaled },
        caveats: ctx.quick ? [] : rows < 10_000_000 ? [`Run with ${num(rows)} rows (BENCH_RESTART_ROWS) instead of 10,000,000.`] : [],
      };
    } finally {
      await pg.stop();
    }
  },
};
