/**
 * Wires one tidewire node: topic state (durable in `state.dir`, or in memory), the hand-off its
 * role uses (`handoffFor`: in process; ingest: also the Kafka hand-off log; edge: a replica of
 * that log, the node's one source), the distribution service and the configured sources. With
 * durable state a start loads the stored topics under their epoch before it listens, so
 * reconnecting clients resume in the same epoch;
 * in memory every process starts a new epoch and its sources read everything again (see
 * docs/DESIGN.md, "State and restarts").
 */
import { resolve } from 'node:path';
import type { Registry } from 'prom-client';
import type { Source, SourceHealth } from '../core/ingest.ts';
import { KafkaConnector } from '../connectors/kafka/index.ts';
import { POSTGRES_POSITION, PostgresConnector, ReplicationLagPoller } from '../connectors/postgres/index.ts';
import type { Config } from './config/config.ts';
import { ConfigError } from '../core/errors.ts';
import { DistributionServer, type HttpRoute } from './distribution/index.ts';
import { type Handoff, InProcessHandoff, type InProcessHandoffOptions } from './handoff/handoff.ts';
import { KafkaHandoff, logPositionName } from './handoff/kafka-handoff.ts';
import { kafkaHandoffLog } from './handoff/kafkajs-handoff-log.ts';
import { type LogTail, readLogTail } from './handoff/log-recovery.ts';
import { LogWriterSlot } from './handoff/log-writer-slot.ts';
import { type ReplicaLag, ReplicaSource } from './handoff/replica-source.ts';
import type { Logger } from './logger.ts';
import { type Readiness, SnapshotProgressLog, type SnapshotProgressReport, createServiceMetrics, opsRoutes, readiness } from './metrics/index.ts';
import { Pipeline } from './pipeline.ts';
import { type ReloadSummary, SecurityManager } from './security/index.ts';
import { LmdbStateStore } from './state/lmdb-state-store.ts';
import { StateJournal } from './state/state-journal.ts';
import type { StateStore } from './state/state-store.ts';
import { TopicStore } from './topics/topic-store.ts';
import { type StoredIndexOptions, StoredTopicIndex } from './topics/stored-topic-index.ts';

export interface ServiceOptions {
  logger: Logger;
  /** Folder of static files (the dashboard) served at `/`. */
  staticDir?: string;
  /** Folder the configuration file is in: a relative `security.file` is resolved against it. */
  configDir?: string;
  /** Re-reads the configuration file, so a security reload (SIGHUP, POST /admin/reload) picks up inline changes too. */
  readConfig?: () => Config;
  /** Each applied batch of the initial snapshot, with its rate and ETA (the CLI draws a progress bar from it). */
  onSnapshotProgress?: (report: SnapshotProgressReport) => void;
  /** Include Node's process metrics (CPU, memory, event loop, GC) in /metrics. Default true. */
  processMetrics?: boolean;
}

export class TidewireService {
  readonly store: TopicStore;
  readonly handoff: Handoff;
  /** Edge only: the replica of the hand-off log, its one source. */
  readonly replica: ReplicaSource | null;
  private readonly roleHandoff: RoleHandoff;
  readonly pipeline: Pipeline;
  readonly distribution: DistributionServer;
  readonly sources: Source[] = [];
  /** The Prometheus registry behind GET /metrics; null with metrics.enabled: false. */
  readonly metrics: Registry | null;
  /** Null when the configuration has no `security` section: every client may read every topic. */
  readonly security: SecurityManager | null;
  private readonly log: Logger;
  private readonly readConfig: (() => Config) | undefined;
  private readonly lag: ReplicationLagPoller | null = null;
  private progress: SnapshotProgressLog;
  private stopping = false;
  /** Topic state is being built for the first time (subscribes wait; see start). */
  private building = false;
  /** The restored state holds a part of a transaction a crash cut (see openState). */
  private partOfTransaction = false;
  /** The durable state's folder (absolute), or null when state is kept in memory. */
  readonly stateDir: string | null;
  private state: StateStore | null = null;
  /** Writes applied batches into `state` (null while it is not open). */
  private journal: StateJournal | null = null;
  /** Topic state's index in the durable store (null: state in memory, or not opened yet). */
  private storedTopics: StoredTopicIndex | null = null;

  constructor(
    readonly config: Config,
    options: ServiceOptions,
  ) {
    this.log = options.logger;
    const edge = config.role === 'edge';
    this.stateDir = config.state?.dir && config.state.memory !== true && !edge ? resolve(config.state.dir) : null;
    this.store = new TopicStore({ history: { perTopic: config.server.historyPerTopic, maxBytes: config.server.historyBytes }, removalLog: config.state?.removalLog });
    this.roleHandoff = handoffFor(config, this.store, this.log.child({ component: 'handoff' }), {
      onListenerError: (err, batch) => this.log.error({ err, seq: batch.seq }, 'a hand-off listener failed: the other listeners got the batch, ingest goes on'),
    });
    this.handoff = this.roleHandoff.handoff;
    this.replica = this.roleHandoff.replica;
    this.readConfig = options.readConfig;
    // Configs built without parseConfig may lack the section: its defaults are the schema's.
    const metricsConfig = config.metrics ?? { enabled: true, replicationLagIntervalMs: 5_000 };
    this.pipeline = new Pipeline(this.store, this.handoff, { measureWireBytes: metricsConfig.enabled });
    this.progress = new SnapshotProgressLog(this.log.child({ component: 'postgres' }), config.log.progressIntervalMs);
    // Filled below, once the sources exist: the server reads the map at each request.
    const routes = new Map<string, HttpRoute>();
    this.security = config.security
      ? SecurityManager.fromConfig(config.security, { logger: this.log.child({ component: 'security' }), baseDir: options.configDir })
      : null;
    this.distribution = new DistributionServer(this.handoff, config.server, {
      logger: this.log.child({ component: 'distribution' }),
      health: () => this.health(),
      staticDir: options.staticDir,
      security: this.security ?? undefined,
      reloadSecurity: this.security ? (by) => this.reloadSecurity(by) : undefined,
      routes,
    });
    let postgres: PostgresConnector | null = null;
    let kafka: KafkaConnector | null = null;
    if (config.postgres) {
      postgres = new PostgresConnector(config.postgres, this.pipeline, {
        logger: this.log.child({ component: 'postgres' }),
        checkpoints: this.pipeline,
        onSnapshotProgress: (p) => {
          const report = this.progress.report(p);
          options.onSnapshotProgress?.(report);
        },
      });
      this.sources.push(postgres);
      if (metricsConfig.enabled) {
        this.lag = new ReplicationLagPoller({
          url: config.postgres.url,
          slot: config.postgres.slot ?? 'tidewire',
          intervalMs: metricsConfig.replicationLagIntervalMs,
          logger: this.log.child({ component: 'metrics' }),
        });
      }
    }
    if (config.kafka) {
      kafka = new KafkaConnector(config.kafka, this.pipeline, {
        logger: this.log,
        checkpoints: this.stateDir === null ? undefined : this.pipeline,
        // Subscribers of the topics a stale feed produced learn it (a `status` message).
        onStaleFeeds: (stale) => this.distribution.setStaleSources(new Map(stale.map((f) => [f.source, f.feed]))),
      });
      this.sources.push(kafka);
    }
    if (this.replica) this.sources.push(this.replica);
    else if (this.sources.length === 0) throw new ConfigError('(root)', 'no source is configured: add a postgres or a kafka section');
    const pg = postgres;
    const publishing = this.handoff instanceof KafkaHandoff ? this.handoff : null;
    this.metrics = metricsConfig.enabled
      ? createServiceMetrics({
          topics: () => this.store.size,
          topicsOnHeap: () => this.storedTopics?.onHeap ?? null,
          distribution: this.distribution,
          pipeline: this.pipeline,
          sources: () => this.sources.map((s) => s.health()),
          readiness: () => this.readiness(),
          postgres: pg ? { health: () => pg.health(), lag: this.lag } : null,
          kafka,
          handoffLag: this.replica ? () => this.replica!.lag() : null,
          handoffPublished: publishing ? (observe) => void (publishing.onPublished = observe) : null,
          processMetrics: options.processMetrics,
        })
      : null;
    for (const [path, route] of opsRoutes({ registry: this.metrics, readiness: () => this.readiness(), security: this.security })) routes.set(path, route);
  }

  /** GET /health. An edge adds `handoff`: how many records of the hand-off log it has not applied yet. */
  health(): { status: 'ok' | 'degraded' | 'failed'; sources: SourceHealth[]; handoff?: ReplicaLag } {
    const sources = this.sources.map((s) => s.health());
    const published = this.roleHandoff.failed();
    const retrying = this.roleHandoff.retrying();
    if (published) sources.push({ name: 'handoff', state: 'failed', detail: published.message });
    else if (retrying) sources.push({ name: 'handoff', state: 'degraded', detail: `the hand-off log takes no batch now; retrying: ${retrying.message}` });
    const status = sources.some((s) => s.state === 'failed')
      ? 'failed'
      : sources.some((s) => s.state !== 'streaming')
        ? 'degraded'
        : 'ok';
    return this.replica ? { status, sources, handoff: this.replica.lag() } : { status, sources };
  }

  /**
   * Ready (GET /ready answers 200) once every source has its state complete and streams; never
   * while stopping. An edge's one source is its replica: ready once it caught up with the hand-off
   * log's end at start, and never again once it stopped. An ingest node whose log refused a
   * batch is not ready.
   */
  readiness(): Readiness {
    return readiness(this.health().sources, this.stopping, this.partOfTransaction);
  }

  /**
   * Applies the current security settings to live sessions (access removed stops at once, access
   * granted starts with current values). Re-reads the configuration file when there is one.
   */
  reloadSecurity(by: string): ReloadSummary {
    if (!this.security) throw new ConfigError('security', 'was off at start; restart tidewire to turn it on');
    if (!this.readConfig) return this.security.reload(undefined, by);
    const next = this.readConfig().security;
    if (!next) throw new ConfigError('security', 'cannot be turned off by a reload; restart tidewire to turn it off');
    return this.security.reload(next, by);
  }

  /** Starts listening, then the sources; resolves when every source has finished its snapshot. */
  async start(): Promise<{ port: number }> {
    this.stopping = false;
    await this.openState();
    // Nothing restored, or a part of a first read that a crash cut short: subscribes wait for the
    // first complete state instead of taking a part of it.
    this.building = (this.store.size === 0 && this.store.position === 0) || this.sources.some((s) => s.holdsCompleteState?.() === false);
    this.distribution.setLoading(this.building || this.partOfTransaction);
    const { port } = await this.distribution.listen();
    this.log.info({ port, epoch: this.store.epoch }, 'distribution service listening');
    this.progress = new SnapshotProgressLog(this.log.child({ component: 'postgres' }), this.config.log.progressIntervalMs);
    this.lag?.start();
    try {
      await this.roleHandoff.open();
      for (const s of this.sources) await s.start();
    } catch (err) {
      this.building = false;
      this.distribution.setLoading(false);
      await this.stop();
      throw err;
    }
    this.building = false;
    this.distribution.setLoading(this.partOfTransaction);
    this.log.info({ topics: this.store.size }, 'sources started');
    return { port };
  }

  /**
   * Graceful stop: /ready answers 503, the server stops accepting and flushes every session (closed
   * with 1001), then each source stops: Postgres acknowledges what was applied and closes the
   * replication connection (the slot stays, inactive), Kafka commits its offsets.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.distribution.close();
    await Promise.allSettled(this.sources.map((s) => s.stop()));
    await this.roleHandoff.close().catch((err: unknown) => this.log.error({ err }, 'the hand-off log did not close cleanly'));
    await this.lag?.stop();
    this.security?.audit.flush();
    await this.closeState();
  }

  /**
   * Opens the durable state (once per process; a restart of the service in the same process keeps
   * it open): a store with state is loaded into topic state under its epoch; a new one records
   * this process's epoch. Every later applied batch is written to it.
   */
  private async openState(): Promise<void> {
    if (this.stateDir === null || this.state !== null) return;
    const started = Date.now();
    const state = await LmdbStateStore.open(this.stateDir, { identity: {}, epoch: this.store.epoch, removalLog: this.config.state?.removalLog });
    try {
      if (this.storedTopics !== null) {
        // Started again in this process: topic state is the store's, as it was at the stop.
        this.storedTopics.attach(state);
      } else {
        this.storedTopics = keepTopicsIn(this.store, state, { cacheTopics: this.config.state?.cacheTopics });
      }
      if (state.epoch === null) await state.setEpoch(this.store.epoch);
      else if (!state.created && this.store.position === 0) {
        const storedSeq = state.seq;
        const topics = this.store.restore({ epoch: state.epoch, seq: storedSeq, versionFloor: state.versionFloor, removals: state.removals() });
        this.log.info({ dir: this.stateDir, topics, epoch: state.epoch, seq: storedSeq, positions: state.positions(), openTransaction: state.openTransaction, ms: Date.now() - started }, 'state loaded');
        this.journal = journalFor(state, this.storedTopics);
        const tail = await this.roleHandoff.recover(this.store, this.journal, state.positions(), storedSeq);
        if (tail !== null && tail.batches > 0) this.log.info({ batches: tail.batches, seq: state.seq, positions: state.positions() }, 'stored the batches the hand-off log held and the state did not: the sources resume after them');
        if (state.openTransaction) {
          // A crash inside a transaction applied in parts: the state holds its first parts. Subscribes
          // wait until the source has applied it again to its end (it resends it whole).
          this.partOfTransaction = true;
          this.pipeline.resumeOpenTransaction(POSTGRES_POSITION, () => {
            this.partOfTransaction = false;
            this.distribution.setLoading(this.building);
            this.log.info({}, 'the transaction a crash cut is applied to its end: subscribes are answered');
          });
        }
      }
    } catch (err) {
      await state.close();
      throw err;
    }
    if (state.created) this.log.info({ dir: this.stateDir, epoch: this.store.epoch }, 'state created: the sources are read from the start');
    this.state = state;
    this.journal ??= journalFor(state, this.storedTopics);
    this.pipeline.useJournal(this.journal);
  }

  private async closeState(): Promise<void> {
    const state = this.state;
    if (!state) return;
    // Commits that waited for the hand-off log are issued by now (it closed): let them land first.
    await this.journal?.flushed().catch(() => {});
    this.state = null;
    this.journal = null;
    this.pipeline.useJournal(null);
    await state.close();
  }
}

/**
 * Topic state kept in the durable store from now on (issue #12, item 7): values off the JS heap,
 * which keeps only what is not durable yet and a cache of the topics changed last. Only while
 * `store` holds nothing; a stored state is then taken over with `store.restore(meta)`.
 */
export function keepTopicsIn(store: TopicStore, state: StateStore, options?: StoredIndexOptions): StoredTopicIndex {
  const index = new StoredTopicIndex(state, options);
  store.useIndex(index);
  return index;
}

/** The journal writing applied batches into `state`; each durable write lets `index` drop what it covers from the heap. */
export function journalFor(state: StateStore, index: StoredTopicIndex): StateJournal {
  return new StateJournal(state, { onDurable: (seq) => index.durable(seq) });
}

/** The hand-off of a node's role, and what the service does with it around the sources. */
interface RoleHandoff {
  readonly handoff: Handoff;
  /** Edge: the replica of the hand-off log, the node's one source. */
  readonly replica: ReplicaSource | null;
  /** Before the sources start (ingest: the topic exists and the producer is connected). */
  open(): Promise<void>;
  /** After the sources stopped (ingest: everything published is in the log). */
  close(): Promise<void>;
  /** Ingest: why the log takes no more batches; null otherwise. */
  failed(): Error | null;
  /** Ingest: why appends to the log are being retried now; null otherwise. */
  retrying(): Error | null;
  /**
   * Ingest with durable state, at start (after the state was restored, before the sources start):
   * stores the batches the log holds past the stored state (log-recovery.ts). Null: nothing to read.
   */
  recover(store: TopicStore, journal: StateJournal, positions: Readonly<Record<string, string>>, seq: number): Promise<LogTail | null>;
}

const NOTHING_TO_RECOVER = async (): Promise<null> => null;

/**
 * `all`: the in-process hand-off. `ingest`: KafkaHandoff, which hands each batch to this node's
 * clients at once and appends it to the hand-off topic. `edge`: a KafkaReplica of that topic;
 * it starts as the node's source (ReplicaSource), so /ready waits for it to catch up.
 */
export function handoffFor(config: Config, store: TopicStore, log: Logger, options: InProcessHandoffOptions): RoleHandoff {
  const role = config.role ?? 'all';
  const kafka = config.handoff?.kafka;
  if (role === 'all' || !kafka) {
    if (role !== 'all') throw new ConfigError('handoff.kafka', `is required with role: ${role}`);
    return { handoff: new InProcessHandoff(store, options), replica: null, open: async () => {}, close: async () => {}, failed: () => null, retrying: () => null, recover: NOTHING_TO_RECOVER };
  }
  const topicLog = kafkaHandoffLog({ brokers: kafka.brokers, topic: kafka.topic, clientId: kafka.clientId, retentionMs: kafka.retentionMs, logger: log });
  if (role === 'edge') {
    const replica = new ReplicaSource(store, topicLog, {
      ...options,
      topic: kafka.topic,
      onStopped: (err, offset) =>
        log.error(
          { err, offset, topic: kafka.topic, seq: store.position },
          'this edge stopped applying the hand-off log and is not ready: its clients keep the state of the last batch applied; restart it to rebuild its state from the log (after an ingest node restarted in a new epoch, restart every edge)',
        ),
    });
    return { handoff: replica.replica, replica, open: async () => {}, close: async () => {}, failed: () => null, retrying: () => null, recover: NOTHING_TO_RECOVER };
  }
  const writer = new LogWriterSlot(topicLog);
  const positionName = logPositionName(kafka.topic);
  const handoff = new KafkaHandoff(store, writer, {
    ...options,
    positionName,
    onRetrying: (err) => log.warn({ err, topic: kafka.topic }, 'the hand-off log takes no batch now: retrying with backoff; sources wait once too much is not in the log'),
    onRecovered: () => log.info({ topic: kafka.topic }, 'the hand-off log takes batches again'),
  });
  return {
    handoff,
    replica: null,
    open: async () => {
      await topicLog.ensureTopic();
      await writer.open();
      log.info({ topic: kafka.topic, brokers: kafka.brokers }, 'publishing every batch to the hand-off topic');
    },
    close: () => handoff.close(),
    failed: () => handoff.failed,
    retrying: () => handoff.retrying,
    recover: async (state, journal, positions, seq) => {
      const from = positions[positionName];
      if (from === undefined) {
        // A state written before this node published to the topic (role all, another topic): nothing of it is in this log.
        log.warn({ topic: kafka.topic }, 'the stored state has no position in the hand-off topic: nothing is read back from it; edges that hold another state stop at the next batch and need a restart');
        return null;
      }
      const tail = await readLogTail(topicLog, from, seq, (batch, after) => {
        journal.write(state.recover(batch), batch.position, batch.rows, Promise.resolve({ name: positionName, position: after }));
      });
      await journal.flushed();
      return tail;
    },
  };
}
