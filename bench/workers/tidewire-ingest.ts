/**
 * tidewire's WAL ingest, measured in its own process: the production streaming pieces —
 * StreamSource (pgoutput over pg-logical-replication), TransactionApplier, TableMapper, Pipeline,
 * TopicStore, InProcessHandoff — composed on a replication slot the benchmark created BEFORE it
 * wrote the workload, so the WAL is already there (PostgresConnector itself always drops and
 * re-creates its slot and snapshots, which would measure something else).
 *
 * Call `run({ pgUrl, slot, publication, table, path, expected })`: streams until `expected` row
 * changes are applied to topic state, then reports times, CPU and memory. With `stateDir` the
 * topic state is durable as TidewireService keeps it (services/state: LmdbStateStore behind a
 * StateJournal, each applied transaction written with its LSN, the LSN acknowledged only once
 * durable), and the run ends only once every change is durable.
 */
import { performance } from 'node:perf_hooks';
import { closeSync, fdatasyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { DEFAULT_BACKOFF } from '../../core/backoff.ts';
import { clientConfig, closeClient, openClient } from '../../connectors/postgres/connection.ts';
import { formatLsn, parseLsn } from '../../connectors/postgres/lsn.ts';
import { runPreflight } from '../../connectors/postgres/preflight.ts';
import { StreamSource } from '../../connectors/postgres/stream-source.ts';
import { TableMapper } from '../../connectors/postgres/table-mapper.ts';
import { TransactionApplier } from '../../connectors/postgres/transaction-applier.ts';
import { TypeRegistry } from '../../connectors/postgres/type-registry.ts';
import type { IngestSink } from '../../core/ingest.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import { Pipeline } from '../../services/pipeline.ts';
import { LmdbStateStore } from '../../services/state/lmdb-state-store.ts';
import { journalFor, keepTopicsIn } from '../../services/service.ts';
import type { StateStore } from '../../services/state/state-store.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import { benchLogger } from '../lib/quiet-logger.ts';
import { serve } from '../lib/serve.ts';

interface RunParams {
  pgUrl: string;
  slot: string;
  publication: string;
  table: string;
  path: string;
  expected: number;
  timeoutSec?: number;
  /**
   * Not tidewire: what a design that persisted topic state locally would add. Every applied
   * transaction's updates are appended to this file as JSON lines and fdatasync'd before the
   * transaction counts as applied (used by the restart suite to price the alternative).
   */
  journal?: string;
  /** Durable topic state in this (new, empty) folder, as `state.dir` gives TidewireService. */
  stateDir?: string;
}

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const hwm = () => Number(/^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024;

async function run(p: RunParams) {
  const log = benchLogger();
  const target = new URL(p.pgUrl).host;
  const meta = await openClient(clientConfig(p.pgUrl, 'query'), target, log);
  const preflight = await runPreflight(meta, [{ table: p.table, path: p.path }]);
  const types = new TypeRegistry();
  await types.resolve(meta, preflight.tables.flatMap((t) => t.table.columns.map((c) => c.typeOid)));
  const mappers = preflight.tables.map((spec) => new TableMapper(spec, types, log));
  const slotRow = await meta.query<{ lsn: string }>('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [p.slot]);
  if (slotRow.rows.length === 0) throw new Error(`slot ${p.slot} does not exist`);
  const startLsn = parseLsn(slotRow.rows[0].lsn);

  const store = new TopicStore();
  const pipeline = new Pipeline(store, new InProcessHandoff(store));
  let state: StateStore | null = null;
  if (p.stateDir) {
    state = await LmdbStateStore.open(p.stateDir, { identity: {}, epoch: store.epoch });
    // As TidewireService composes it: topics in the store, off the heap.
    const index = keepTopicsIn(store, state);
    if (state.epoch === null) await state.setEpoch(store.epoch);
    pipeline.useJournal(journalFor(state, index));
  }
  let applier: TransactionApplier;
  let doneAt = 0;
  let cpuAtDone = 0;
  let resolveDone!: () => void;
  let rejectDone!: (e: Error) => void;
  const done = new Promise<void>((res, rej) => ((resolveDone = res), (rejectDone = rej)));
  let firstApplyAt = 0;
  const journal = p.journal ? openSync(p.journal, 'a') : null;
  const sink: IngestSink = {
    apply: async (updates, position) => {
      if (firstApplyAt === 0) firstApplyAt = performance.now();
      await pipeline.apply(updates, position);
      if (journal !== null) {
        let text = '';
        for (const u of updates) text += `${JSON.stringify(u)}\n`;
        writeSync(journal, text);
        fdatasyncSync(journal);
      }
      if (doneAt === 0 && applier.changesApplied >= p.expected) {
        doneAt = -1;
        // Durable state: done once the last change is on disk, not only applied.
        pipeline.flushed().then(() => {
          doneAt = performance.now();
          cpuAtDone = cpu();
          resolveDone();
        }, rejectDone);
      }
    },
    removeSource: (s, position) => pipeline.removeSource(s, position),
  };
  applier = new TransactionApplier({
    sink,
    mappers,
    types,
    resolveTypes: (oids) => types.resolve(meta, oids),
    log,
    startLsn,
  });
  let streamingAt = 0;
  const stream = new StreamSource({
    connection: clientConfig(p.pgUrl, 'replication'),
    slot: p.slot,
    publication: p.publication,
    statusIntervalMs: 1000,
    reconnect: DEFAULT_BACKOFF,
    applier,
    checkpoint: state ? (lsn) => pipeline.checkpoint({ name: 'postgres', position: formatLsn(lsn) }) : undefined,
    log,
    target,
    onStreaming: () => (streamingAt ||= performance.now()),
    onDegraded: (detail) => log.warn({ detail }, 'degraded'),
    onFailed: (err) => rejectDone(err),
  });
  const cpuAtStart = cpu();
  const startAt = performance.now();
  await stream.start();
  const timer = setTimeout(() => rejectDone(new Error(`timed out with ${applier.changesApplied} of ${p.expected} changes`)), (p.timeoutSec ?? 600) * 1000);
  try {
    await done;
  } finally {
    clearTimeout(timer);
    await stream.stop();
    await closeClient(meta);
    if (journal !== null) closeSync(journal);
  }
  const stored = state ? { topics: state.topicCount, writes: state.writes, position: state.positions().postgres ?? null } : null;
  await state?.close();
  return {
    changes: applier.changesApplied,
    transactions: applier.transactionsApplied,
    topics: store.size,
    changesEmitted: pipeline.changesEmitted,
    /** From stream.start() (connect, START_REPLICATION) to the N-th change applied to topic state. */
    seconds: (doneAt - startAt) / 1000,
    /** From the first sink.apply (first transaction decoded and mapped) to the N-th change applied. */
    secondsFromFirstApply: (doneAt - firstApplyAt) / 1000,
    secondsToStreaming: (streamingAt - startAt) / 1000,
    cpuSecondsStreaming: cpuAtDone - cpuAtStart,
    cpuSecondsProcess: cpu(),
    peakRssBytes: hwm(),
    heapUsedBytes: process.memoryUsage().heapUsed,
    /** With stateDir: what the store holds at the end (durable topics, store transactions written, the stored LSN). */
    stored,
  };
}

serve({ run });
