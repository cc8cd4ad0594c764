/**
 * ingest — tidewire vs Debezium reading the same pre-written WAL from the same Postgres: N row
 * changes over a 10-column table (transactions of 1,000: inserts, updates of 1–3 columns,
 * deletes). One publication; 2 × R slots created BEFORE the workload is written, so each reader
 * gets exactly the same WAL on a slot of its own. Runs alternate (tidewire, Debezium, tidewire,
 * ...) so machine noise spreads over both; figures are medians of R runs.
 */
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { INGEST_PUBLICATION as PUB, type TidewireIngest, runTidewireIngest, watchWalsender } from '../lib/ingest-run.ts';
import { join } from 'node:path';
import { prepareDebezium, runDebeziumIngest, type DebeziumIngestResult } from '../peers/debezium.ts';
import { summarizeProfile, type ProfileSummary } from '../lib/cpuprofile.ts';
import { mib, num, ratio } from '../lib/format.ts';
import { INGEST_DDL, INGEST_TABLE, peekRowChanges, writeIngestWorkload } from '../lib/ingest-workload.ts';
import { serverVersion, startBenchPostgres } from '../lib/postgres.ts';
import { median, round } from '../lib/stats.ts';
import type { Suite, SuiteResult } from '../suite.ts';

/** What the hot entries of tidewire's ingest profile mean, and the fix each suggests (only for entries that are there). */
function profileFindings(p: ProfileSummary): string[] {
  const share = (pred: (f: ProfileSummary['functions'][number]) => boolean) => {
    const x = p.functions.filter(pred).reduce((a, f) => a + f.percent, 0);
    return Math.round(x * 10) / 10;
  };
  const has = (name: string) => p.functions.some((f) => f.name === name);
  const out: string[] = [];
  if (has('upsert') || has('valueMessage')) {
    out.push(
      `TopicStore serializes every change for the wire while applying it (${share((f) => f.where.includes('topic-store'))}% self time in topic-store.ts): valueMessage() for each new topic, and in upsert() both the patch and the whole new value — the value only to compare its length with the patch — even when no session is subscribed. ` +
        'Fix: make the wire text lazy and memoized (computed once by the first session that receives the change, never when none does), and decide delta-or-value from the patch length against the length of the topic\'s last serialized value instead of stringifying the value on every update.',
    );
  }
  if (has('(garbage collector)')) {
    out.push(`${share((f) => f.name === '(garbage collector)')}% in the garbage collector: per change the parser's tuple object and strings, the converted value, the TopicUpdate, patch operations and two or three wire strings; the whole-value string built in upsert() only for a length comparison is the largest avoidable one.`);
  }
  if (has('readTuple') || has('decode') || has('decodeUTF8')) {
    out.push(
      `${share((f) => ['readTuple', 'decode', 'decodeUTF8', 'subarray', 'FastBuffer'].includes(f.name))}% decoding tuples in pg-logical-replication: one Buffer.subarray and one TextDecoder.decode call per column. ` +
        'Fix (in tidewire\'s own RawTextPgoutputParser, which already overrides the parser): read tuple columns with buffer.toString(\'utf8\', start, end) on the message buffer, without a subarray per column.',
    );
  }
  if (has('nodeFor') || has('encodeSegment')) {
    out.push(`${share((f) => f.name === 'nodeFor' || f.name === 'encodeSegment')}% building paths for new topics: the template percent-encodes each segment (encodeSegment), then TopicStore.nodeFor splits the rendered path again to walk the tree. A topic could be placed from the segments the template already produced.`);
  }
  if (p.functions.some((f) => f.where.includes('json-diff-ts'))) {
    out.push(`${share((f) => f.where.includes('json-diff-ts'))}% in json-diff-ts for the jsonb column (only a third of the updates change it): its generic diff (type detection by regular expression, array handling) is slow; a recursive version of delta.ts's own shallow compare would do for nested objects.`);
  }
  return out;
}

export const suite: Suite = {
  name: 'ingest',
  title: 'WAL ingest: tidewire vs Debezium on the same pre-written WAL',
  async run(ctx): Promise<SuiteResult> {
    const total = ctx.quick ? 20_000 : 1_000_000;
    const reps = ctx.quick ? 1 : 3;
    ctx.log(`ingest: ${num(total)} row changes, ${reps} run(s) per side`);
    await prepareDebezium(ctx.log);
    const pg = await startBenchPostgres();
    try {
      const pgVersion = await serverVersion(pg);
      await pg.query(INGEST_DDL);
      await pg.query(`CREATE PUBLICATION ${PUB} FOR TABLE ${INGEST_TABLE}`);
      const slots = Array.from({ length: reps }, (_, i) => ({ tw: `bench_tw_${i}`, dbz: `bench_dbz_${i}` }));
      const profileDir = !ctx.quick && process.env.BENCH_CPU_PROF !== '0' ? join(ctx.scratchDir, 'profile') : null;
      // A profiled run is slower: it gets a slot of its own and is not one of the measured runs.
      if (profileDir) await pg.query(`SELECT pg_create_logical_replication_slot('bench_tw_prof', 'pgoutput')`);
      for (const s of slots) {
        await pg.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [s.tw]);
        await pg.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [s.dbz]);
      }
      const writeSeconds = await writeIngestWorkload(pg, total);
      ctx.log(`ingest: wrote ${num(total)} row changes in ${writeSeconds.toFixed(1)} s`);
      if (ctx.quick) {
        const inSlot = await peekRowChanges(pg, slots[0].tw, PUB);
        if (inSlot !== total) throw new Error(`slot holds ${inSlot} row changes, expected ${total}`);
      }
      const topics = Number((await pg.query<{ n: string }>(`SELECT count(*) AS n FROM ${INGEST_TABLE}`)).rows[0].n);
      const walBytes = Number((await pg.query<{ b: string }>(`SELECT pg_current_wal_lsn() - confirmed_flush_lsn AS b FROM pg_replication_slots WHERE slot_name = $1`, [slots[0].tw])).rows[0].b);

      if (profileDir) mkdirSync(profileDir, { recursive: true });
      // Debezium's metrics collector warns once per event it cannot queue under load (thousands of
      // lines); count those instead of printing them.
      let metricsWarnings = 0;
      const debeziumLog = (line: string) => {
        if (line.includes('MeasurementCollector - Failed to add measurement event')) metricsWarnings++;
        else ctx.log(line);
      };
      const tw: TidewireIngest[] = [];
      const dbz: Array<DebeziumIngestResult & { walsenderCpuSeconds: number }> = [];
      for (let i = 0; i < reps; i++) {
        const t = await runTidewireIngest(pg, slots[i].tw, total, topics);
        tw.push(t);
        ctx.log(`ingest: tidewire run ${i + 1}: ${num(total / t.seconds)} changes/s, ${t.cpuSecondsProcess.toFixed(1)} CPU s, ${mib(t.peakRssBytes)}`);
        const ws = watchWalsender(pg, slots[i].dbz);
        const d = await runDebeziumIngest({ pgUrl: pg.url, slot: slots[i].dbz, publication: PUB, tables: [`public.${INGEST_TABLE}`], expected: total, timeoutSec: 900, log: debeziumLog });
        dbz.push({ ...d, walsenderCpuSeconds: await ws.stop() });
        ctx.log(`ingest: Debezium run ${i + 1}: ${num(total / d.secondsSincePolling)} changes/s, ${d.cpuSeconds.toFixed(1)} CPU s, ${mib(d.peakRssBytes)}`);
      }
      let profile: ProfileSummary | null = null;
      if (profileDir) {
        ctx.log('ingest: one more tidewire run with --cpu-prof (not measured)');
        await runTidewireIngest(pg, 'bench_tw_prof', total, topics, { profileDir });
        // tsx's loader thread writes a small profile of its own: the main thread's is the largest.
        const f = readdirSync(profileDir).filter((n) => n.endsWith('.cpuprofile')).sort((a, b) => statSync(join(profileDir, b)).size - statSync(join(profileDir, a)).size)[0];
        if (f) profile = summarizeProfile(join(profileDir, f), 20);
      }

      const m = (xs: number[]) => median(xs);
      const twRate = m(tw.map((t) => total / t.seconds));
      const dbzRate = m(dbz.map((d) => total / d.secondsSincePolling));
      const dbzRateHarness = m(dbz.map((d) => total / d.seconds));
      const perM = (cpu: number) => (cpu / total) * 1e6;
      const twCpu = m(tw.map((t) => perM(t.cpuSecondsProcess)));
      const dbzCpu = m(dbz.map((d) => perM(d.cpuSeconds)));
      const twCpuS = m(tw.map((t) => perM(t.cpuSecondsStreaming)));
      const dbzCpuS = m(dbz.map((d) => perM(d.cpuSecondsStreaming)));
      const twRss = m(tw.map((t) => t.peakRssBytes));
      const dbzRss = m(dbz.map((d) => d.peakRssBytes));
      const twWall = m(tw.map((t) => t.wallSeconds));
      const dbzWall = m(dbz.map((d) => d.wallSeconds));
      const twWal = m(tw.map((t) => perM(t.walsenderCpuSeconds)));
      const dbzWal = m(dbz.map((d) => perM(d.walsenderCpuSeconds)));
      const rates = (xs: number[]) => xs.map((x) => num(x)).join(', ');

      const command = `npm run bench -- --only ingest${ctx.quick ? ' --quick' : ''}`;
      return {
        summary:
          `${num(total)} row changes (${num(total / 1000)} transactions of 1,000: 600 inserts, 300 updates of 1–3 columns, 100 deletes) on a 10-column table ` +
          `(int8 key, int4, int8, int4, text, text, numeric, timestamptz, bool, jsonb), written to WAL before either reader starts (${writeSeconds.toFixed(0)} s to write; ${mib(walBytes)} of WAL). ` +
          `Each reader streams from its own pgoutput slot created before the workload, on the same Postgres ${pgVersion}, until it has the N-th change. ` +
          `tidewire: a child process composing the production StreamSource + TransactionApplier + TableMapper + Pipeline + TopicStore (topic state kept in memory, one topic per row: ${num(topics)} topics at the end, checked against the table). ` +
          `Debezium ${dbz[0].version}: the embedded-engine harness (bench/debezium) with a counting no-op consumer (JSON conversion included). ` +
          `${reps} run(s) per side, alternating; medians shown.`,
        command,
        tables: [
          {
            title: `Ingest of ${num(total)} pre-written row changes (median of ${reps})`,
            columns: ['', 'tidewire', `Debezium ${dbz[0].version}`, 'tidewire ÷ Debezium'],
            rows: [
              ['changes/s (stream start → N-th change)', num(twRate), num(dbzRate), ratio(twRate, dbzRate)],
              ['CPU s per million changes (whole process)', num(twCpu, 1), num(dbzCpu, 1), ratio(twCpu, dbzCpu, 2)],
              ['CPU s per million changes (streaming only)', num(twCpuS, 1), num(dbzCpuS, 1), ratio(twCpuS, dbzCpuS, 2)],
              ['peak RSS', mib(twRss), mib(dbzRss), ratio(twRss, dbzRss, 2)],
              ['wall time, process spawn → exit', `${num(twWall, 1)} s`, `${num(dbzWall, 1)} s`, ratio(twWall, dbzWall, 2)],
              ['Postgres walsender CPU s per million changes', num(twWal, 1), num(dbzWal, 1), ratio(twWal, dbzWal, 2)],
            ],
            notes: [
              `Every run (changes/s): tidewire ${rates(tw.map((t) => total / t.seconds))}; Debezium ${rates(dbz.map((d) => total / d.secondsSincePolling))}.`,
              `tidewire's time runs from stream.start() (replication connection, START_REPLICATION) to the N-th change applied to topic state; Debezium's from the engine polling the connector task (stream set-up included) to the N-th change event. ` +
                `The harness's own "first record → N-th" figure for Debezium (first batch of up to 20,480 changes decoded before its clock starts) is ${num(dbzRateHarness)} changes/s.`,
              `Whole-process CPU includes start-up: tsx compiling TypeScript for tidewire, JVM start and JIT for Debezium. Peak RSS is VmHWM from /proc. tidewire holds every row as a topic; Debezium holds nothing (no-op consumer).`,
              'The walsender (Postgres decoding WAL into pgoutput) runs on the same two cores and costs the same for both readers.',
            ],
          },
          ...(profile
            ? [
                {
                  title: `Where tidewire's ingest spends its CPU (one extra run with --cpu-prof, ${num(profile.totalMs / 1000, 1)} s of samples, self time)`,
                  columns: ['function', 'file', 'self time'],
                  rows: profile.functions.slice(0, 15).map((f) => [f.name, f.where.replace(/:\d+$/, ''), `${f.percent}%`]),
                  notes: [`By file: ${profile.files.slice(0, 8).map((f) => `${f.file} ${f.percent}%`).join(', ')}.`, ...profileFindings(profile)],
                },
              ]
            : []),
        ],
        targets: [
          { description: 'tidewire ingest ahead of Debezium (changes/s)', met: twRate > dbzRate, measured: `${num(twRate)} vs ${num(dbzRate)} changes/s (${ratio(twRate, dbzRate)})` },
          { description: 'tidewire pipeline ≥ 50,000 changes/s', met: twRate >= 50_000, measured: `${num(twRate)} changes/s` },
        ],
        data: {
          total,
          reps,
          topics,
          writeSeconds: round(writeSeconds, 2),
          walBytes,
          postgres: pgVersion,
          tidewire: tw,
          debezium: dbz,
          medians: { twRate, dbzRate, dbzRateHarness, twCpu, dbzCpu, twCpuS, dbzCpuS, twRss, dbzRss, twWal, dbzWal },
          profile,
          debeziumMetricsQueueWarnings: metricsWarnings,
        },
        caveats: ctx.quick ? ['Quick mode: 20,000 changes, one run each; JVM start-up and JIT dominate Debezium at this size.'] : [],
      };
    } finally {
      await pg.stop();
    }
  },
};
