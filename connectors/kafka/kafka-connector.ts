/**
 * The Kafka connector: a consumer group over the configured topics, each record mapped onto a
 * topic update and applied through the sink like a row change.
 *
 * Durability (docs/DESIGN.md, "State and restarts"). With durable state (`checkpoints`) every
 * apply carries its partition's position (`kafka:<topic>/<partition>` → the next offset), stored
 * in the same state transaction as the updates, and a start resumes each Kafka topic at its
 * stored offsets: only what was produced while tidewire was down is read (a path naming value
 * fields finds its key → path index stored with the state too). A topic whose stored offsets fall
 * outside its log, whose mapping changed, that is new to a state holding topics, or whose key →
 * path index is not stored complete is re-read from its earliest offset instead, diffed against
 * the state (topic-reread.ts, start-offsets.ts). Without durable state topic state lives
 * in memory and is rebuilt at every start: the first time this process is assigned a partition it
 * seeks to the partition's earliest offset (a compacted topic then gives current state, like a
 * table), whatever the group committed.
 *
 * Later assignments of a partition in the same process (a rebalance, a restart of the consumer
 * after a broker outage) resume at the first offset this process has not applied. The group id
 * stays stable and offsets are committed after every applied batch — with durable state only once
 * the state covering them is durable (offset-committer.ts) — so the group's lag is what monitoring
 * should watch.
 *
 * At-least-once: a batch's offsets are resolved and committed only after sink.apply() resolved
 * for its records (and the dead-letter copies of its bad records were acknowledged). Records
 * below the applied position are never applied again, so a redelivery cannot move a value back.
 */
import type { Logger } from 'pino';
import type { KafkaConfig } from './kafka-settings.ts';
import { TidewireError, errorMessage } from '../../core/errors.ts';
import type { IngestSink, Source, SourceCheckpoints, SourceHealth, StaleFeed } from '../../core/ingest.ts';
import { type BackoffOptions, DEFAULT_BACKOFF, backoffDelay } from '../../core/backoff.ts';
import { BatchApplier, type RecordCounts } from './batch-applier.ts';
import { type ConnectorState, IDLE, caughtUp, failed, recovered, running, starting, stopped, toHealth, troubled } from './connector-state.ts';
import { DeadLetterTopic } from './dead-letter.ts';
import { type FeedAge, FeedFreshness } from './feed-freshness.ts';
import { KafkaConnectorError } from './errors.ts';
import type { BatchControl, ConsumerEvent, KafkaBatch, KafkaClient, KafkaConsumer, KafkaProducer } from './kafka-client.ts';
import { type KafkaSettings, resolveKafkaSettings } from './kafka-options.ts';
import { createKafkajsClient } from './kafkajs-client.ts';
import { prepareDurableStart, topicMapping } from './durable-start.ts';
import { type CommitKind, OffsetCommitter } from './offset-committer.ts';
import { type PartitionPosition, PartitionPositions, type StartedFrom } from './partition-positions.ts';
import { RecordMapper, TopicMappings, kafkaSourceName } from './record-mapper.ts';
import { type TopicStart, readStartOffsets, resolveHeartbeats, resolveTopics } from './start-offsets.ts';
import type { TopicReread } from './topic-reread.ts';

/** The name this connector claims its cluster under in durable state (SourceCheckpoints.claim). */
export const KAFKA_IDENTITY_NAME = 'kafka';

export interface KafkaConnectorOptions {
  /** Parent logger; the connector logs under `component: 'kafka'` with `topic`, `partition`, `offset`. */
  logger: Logger;
  /** Defaults to kafkajs with the configured brokers, TLS and SASL. */
  client?: KafkaClient;
  /** Backoff between restarts of a crashed consumer. Defaults: 500 ms doubling to 30 s. */
  restart?: Partial<BackoffOptions>;
  /**
   * The set of stale feeds changed (kafka.staleAfterMs): one went quiet past the threshold, or a
   * stale one was heard from again. Called with every feed stale now ([] when none is).
   */
  onStaleFeeds?: (stale: readonly StaleFeed[]) => void;
  /** The clock feed ages are measured with. Default Date.now. */
  now?: () => number;
  /**
   * Durable state: offsets stored with it are resumed from, and group offsets committed only once
   * the state covering them is durable. Absent: every start reads from `startFrom` (state in memory).
   */
  checkpoints?: SourceCheckpoints;
}

export interface PartitionStats {
  readonly topic: string;
  readonly partition: number;
  /** First offset not yet applied in this process. */
  readonly position: number | null;
  /** Where reading began at start: the offset stored with the state, the earliest, the group's committed one (null: a partition created since). */
  readonly from: StartedFrom | null;
  /** The high watermark last seen. */
  readonly highWatermark: number;
  readonly committed: number | null;
  /** Records between the position and the high watermark last seen. */
  readonly lag: number | null;
}

export interface KafkaConnectorStats extends Readonly<RecordCounts> {
  readonly commitFailures: number;
  /** Restarts of the consumer after it crashed (broker outages). */
  readonly restarts: number;
  readonly partitions: readonly PartitionStats[];
  /** Each consumed Kafka topic: how long since its last record or heartbeat, and whether that is past kafka.staleAfterMs. */
  readonly feeds: readonly FeedAge[];
  /** How each consumed Kafka topic started: `resume` from stored offsets, `reread` diffed, `fresh`. */
  readonly starts: Readonly<Record<string, TopicStart['mode']>>;
}

/**
 * Streams the configured Kafka topics into `sink` as topics.
 *
 * @example
 * const connector = new KafkaConnector(config.kafka, new Pipeline(store, handoff), { logger });
 * await connector.start(); // every partition read up to its end offset at start: state is built
 * connector.health();      // { name: 'kafka', state: 'streaming' }
 * await connector.stop();
 */
export class KafkaConnector implements Source {
  readonly name = 'kafka';
  private readonly settings: KafkaSettings;
  private readonly mappings: TopicMappings;
  private readonly client: KafkaClient;
  private readonly log: Logger;
  private readonly backoff: BackoffOptions;
  private state: ConnectorState = IDLE;
  private positions = new PartitionPositions();
  private topics: string[] = [];
  private consumer: KafkaConsumer | null = null;
  /** Bumped for every consumer; events and batches of an older one are ignored. */
  private generation = 0;
  private producer: KafkaProducer | null = null;
  private readonly applier: BatchApplier;
  private readonly sink: IngestSink;
  private readonly checkpoints: SourceCheckpoints | null;
  private readonly committer: OffsetCommitter;
  private starts: ReadonlyMap<string, TopicStart> = new Map();
  /** The topics re-read at this start, until their state is applied (then null). */
  private reread: TopicReread | null = null;
  /** Batches and the re-read's end run one at a time, in this order. */
  private serial: Promise<unknown> = Promise.resolve();
  private restartTimer: NodeJS.Timeout | null = null;
  private restartAttempt = 0;
  private stopping = false;
  /** Rejects a start() still waiting for the catch-up (stop(), or a crash that cannot be retried). */
  private abortStart: ((err: Error) => void) | null = null;
  private restarts = 0;
  private readonly freshness: FeedFreshness;
  private freshnessTimer: NodeJS.Timeout | null = null;
  /** Heartbeat topic → the consumed topics it vouches for; decided at start. */
  private heartbeats = new Map<string, string[]>();
  private readonly onStaleFeeds: ((stale: readonly StaleFeed[]) => void) | undefined;

  constructor(
    config: KafkaConfig,
    sink: IngestSink,
    options: KafkaConnectorOptions,
  ) {
    this.settings = resolveKafkaSettings(config);
    const { settings } = this;
    this.checkpoints = options.checkpoints ?? null;
    const checkpoints = this.checkpoints;
    const rowIndex = checkpoints ? (source: string) => checkpoints.rowIndex(source) : undefined;
    this.mappings = new TopicMappings(settings.topics.map((t, i) => new RecordMapper(t, i, { maxValueBytes: settings.maxValueBytes, rowIndex })));
    this.log = options.logger.child({ component: 'kafka', group: settings.groupId });
    this.sink = sink;
    this.applier = new BatchApplier(this.mappings, sink, this.log);
    this.committer = new OffsetCommitter(this.checkpoints, this.log);
    this.freshness = new FeedFreshness(settings.staleAfterMs, options.now ?? Date.now);
    this.onStaleFeeds = options.onStaleFeeds;
    const initialMs = options.restart?.initialMs ?? DEFAULT_BACKOFF.initialMs;
    this.backoff = { initialMs, maxMs: Math.max(initialMs, options.restart?.maxMs ?? DEFAULT_BACKOFF.maxMs) };
    this.client =
      options.client ??
      createKafkajsClient({ brokers: settings.brokers, clientId: settings.clientId, ssl: settings.ssl, sasl: settings.sasl, logger: this.log });
    this.client.onConnectionError((e) => {
      if (this.stopping) return;
      this.setState(troubled(this.state, `cannot reach Kafka broker ${e.broker} (${e.code}); reconnecting`, Date.now()));
    });
  }

  /**
   * Resolves once every assigned partition has been applied up to its end offset at start, so
   * readiness can mean "state is built". Rejects with KAFKA_UNREACHABLE when no broker answers
   * within kafka.connectTimeoutMs, or another KafkaConnectorError (a missing topic, a refused login).
   */
  async start(): Promise<void> {
    if (this.state.kind === 'starting' || this.state.kind === 'running') throw new Error('KafkaConnector.start() called twice');
    this.stopping = false;
    this.positions = new PartitionPositions();
    const began = Date.now();
    this.setState(starting(this.state, `connecting to ${this.settings.brokers.join(',')}`));
    const aborted = new Promise<never>((_, reject) => (this.abortStart = reject));
    aborted.catch(() => {}); // observed below; avoids an unhandled rejection when start() already returned
    try {
      await Promise.race([this.prepare(), aborted]);
      this.followFeeds();
      this.setState(running(this.state));
      try {
        await this.startConsumer();
      } catch (err) {
        this.consumerFailed(err, this.generation);
      }
      await Promise.race([this.positions.whenCaughtUp, aborted]);
      if (this.reread) await Promise.race([this.exclusive(() => this.finishReread()), aborted]);
      this.setState(caughtUp(this.state));
      const { records, applied } = this.applier.counts;
      this.log.info({ topics: this.topics, records, applied, ms: Date.now() - began }, 'caught up with the end offsets at start: state is built');
    } catch (err) {
      if (this.stopping) throw new KafkaConnectorError('KAFKA_STOPPED', 'stop() was called before the Kafka connector finished starting', { cause: err });
      this.setState(failed(this.state, errorMessage(err)));
      await this.closeClients();
      throw err;
    } finally {
      this.abortStart = null;
      this.reread = this.applier.reread = null; // a re-read not finished is started over by the next start
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    if (this.freshnessTimer) clearInterval(this.freshnessTimer);
    this.freshnessTimer = null;
    this.abortStart?.(new KafkaConnectorError('KAFKA_STOPPED', 'stopped'));
    const consumer = this.consumer;
    // Offsets of the batches applied so far; a batch still running is covered by the next process.
    if (consumer) await this.commitAll(consumer);
    await this.closeClients();
    this.setState(stopped(this.state));
  }

  health(): SourceHealth {
    const h = toHealth(this.name, this.state, this.positions.behind());
    if (this.freshnessTimer === null) return h;
    const stale = this.freshness.stale();
    if (stale.length === 0 || (h.state !== 'streaming' && h.state !== 'degraded')) return h;
    const quiet = `stale feed(s), no record or heartbeat for over ${this.settings.staleAfterMs} ms: ${stale.map((f) => `${f.feed} (${(f.ageMs / 1000).toFixed(1)} s)`).join(', ')}`;
    return { name: h.name, state: 'degraded', detail: h.detail ? `${h.detail}; ${quiet}` : quiet, stale };
  }

  stats(): KafkaConnectorStats {
    const partitions: PartitionStats[] = [];
    for (const p of this.positions.all()) {
      partitions.push({
        topic: p.topic,
        partition: p.partition,
        position: p.next ?? null,
        from: p.from ?? null,
        highWatermark: p.high,
        committed: p.committed ?? null,
        lag: p.next === undefined ? null : Math.max(0, p.high - p.next),
      });
    }
    const c = this.applier.counts;
    const starts = Object.fromEntries([...this.starts].map(([topic, s]) => [topic, s.mode]));
    return { ...c, ignored: { ...c.ignored }, bad: { ...c.bad }, commitFailures: this.committer.failures, restarts: this.restarts, partitions, feeds: this.freshness.ages(), starts };
  }

  // ---------------------------------------------------------------------------------------------
  // Start: topics, start offsets, end offsets

  /**
   * Reads topics and offsets with retries until kafka.connectTimeoutMs (with durable state: claims
   * the cluster, and plans each topic's start from the stored offsets); then prepares the state
   * and opens the dead-letter producer.
   */
  private async prepare(): Promise<void> {
    const { settings, checkpoints } = this;
    const deadline = Date.now() + settings.connectTimeoutMs;
    const unreachable = (why: string, cause?: unknown) =>
      new KafkaConnectorError(
        'KAFKA_UNREACHABLE',
        `cannot reach Kafka at ${settings.brokers.join(',')} within ${settings.connectTimeoutMs} ms (${why}): check kafka.brokers (or TIDEWIRE_KAFKA_BROKERS), that the brokers run and that the addresses they advertise are reachable from here, and kafka.ssl / kafka.sasl`,
        { retriable: true, cause },
      );
    let lastError: unknown;
    for (let attempt = 0; ; attempt++) {
      const admin = this.client.admin();
      // The client retries on its own for several seconds; the deadline must not wait for that.
      const work = (async () => {
        await admin.connect();
        if (checkpoints) {
          if (!admin.clusterId) throw new KafkaConnectorError('KAFKA_ERROR', 'this Kafka client cannot tell the cluster id, which durable state records; give it clusterId(), or keep state in memory (state.memory: true)');
          await checkpoints.claim(KAFKA_IDENTITY_NAME, await admin.clusterId());
        }
        const existing = await admin.listTopics();
        const topics = resolveTopics(settings, this.mappings.mappers, existing, this.log);
        const heartbeats = resolveHeartbeats(settings, this.mappings, topics, existing, this.log);
        const resume = checkpoints ? { checkpoints, mapping: (topic: string) => topicMapping(settings, this.mappings, topic) } : undefined;
        const { positions, starts } = await readStartOffsets(admin, settings, topics, [...heartbeats.keys()], resume);
        this.topics = topics;
        this.heartbeats = heartbeats;
        this.positions = positions;
        this.starts = starts;
      })();
      let outcome: 'done' | 'timeout' | 'retry';
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()))));
      try {
        outcome = await Promise.race([work.then(() => 'done' as const), expired]);
      } catch (err) {
        if (this.stopping || !(err instanceof TidewireError) || !err.retriable) throw err;
        lastError = err;
        outcome = 'retry';
      } finally {
        clearTimeout(timer);
        work.catch(() => {}); // settled later when the deadline won: nothing waits for it
        await admin.disconnect().catch(() => {});
      }
      if (outcome === 'done') break;
      const delay = Math.min(backoffDelay(attempt, { initialMs: 250, maxMs: 2_000 }), deadline - Date.now());
      if (outcome === 'timeout' || delay <= 0) throw unreachable(lastError === undefined ? 'no answer' : errorMessage(lastError), lastError);
      this.setState(starting(this.state, `cannot reach Kafka at ${settings.brokers.join(',')} yet (${errorMessage(lastError)}); retrying`));
      await sleep(delay);
    }
    if (checkpoints) {
      const { sink, mappings, starts, positions, log } = this;
      this.reread = this.applier.reread = await this.toSink(() => prepareDurableStart({ checkpoints, sink, settings, mappings, starts, positions, log }));
    }
    if (settings.deadLetterTopic && !this.stopping) {
      const producer = this.client.producer();
      this.producer = producer;
      await producer.connect();
      // stop() during connect() has closed nothing yet that it could see: close it here.
      if (this.stopping && this.producer !== producer) await producer.disconnect().catch(() => {});
      else this.applier.deadLetter = new DeadLetterTopic(settings.deadLetterTopic, producer);
    }
  }

  /** Applies the re-read (diffed), once caught up; run through `exclusive`, between batches. */
  private async finishReread(): Promise<void> {
    const reread = this.reread;
    if (!reread) return;
    const began = Date.now();
    const r = await this.toSink(() => reread.finish(this.sink, this.positions.all()));
    for (const topic of reread.topics) this.mappings.forTopic(topic)!.readApplied(topic);
    this.reread = this.applier.reread = null;
    this.log.info({ topics: [...reread.topics], ...r, ms: Date.now() - began }, 're-read diffed against the stored state: only what differs was sent');
    const consumer = this.consumer;
    if (consumer) for (const p of this.positions.all()) if (reread.topics.has(p.topic)) await this.committer.afterBatch(consumer, p, 'state');
  }

  private async toSink<T>(apply: () => Promise<T>): Promise<T> {
    try {
      return await apply();
    } catch (err) {
      if (err instanceof KafkaConnectorError) throw err;
      throw new KafkaConnectorError('KAFKA_SINK_FAILED', `applying Kafka records to topic state failed: ${errorMessage(err)}`, { cause: err });
    }
  }

  /** Runs `work` after every batch (and re-read end) before it. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.serial.then(work);
    this.serial = run.catch(() => {});
    return run;
  }

  // ---------------------------------------------------------------------------------------------
  // The consumer and its restarts

  private async startConsumer(): Promise<void> {
    const gen = ++this.generation;
    const consumer = this.client.consumer({ groupId: this.settings.groupId, sessionTimeoutMs: this.settings.sessionTimeoutMs });
    this.consumer = consumer;
    consumer.on((e) => this.onConsumerEvent(gen, consumer, e));
    await consumer.connect();
    await consumer.subscribe([...this.topics, ...this.heartbeats.keys()]);
    await consumer.run((batch, control) => this.onBatch(gen, consumer, batch, control));
  }

  private onConsumerEvent(gen: number, consumer: KafkaConsumer, e: ConsumerEvent): void {
    if (gen !== this.generation || this.stopping) return;
    switch (e.type) {
      case 'assigned': {
        // Synchronous, before the first fetch under this assignment: the seeks apply to it.
        const seeks = this.positions.assign(e.assignment);
        for (const s of seeks) consumer.seek(s.topic, s.partition, String(s.offset));
        this.restartAttempt = 0;
        const partitions = [...e.assignment.values()].reduce((n, ps) => n + ps.length, 0);
        this.log.info({ partitions, seeks: seeks.length }, 'joined the consumer group');
        const unassigned = this.positions.unassigned();
        if (unassigned.length > 0) {
          this.log.warn(
            { unassigned: unassigned.map((p) => p.key) },
            `another member of group "${this.settings.groupId}" holds ${unassigned.length} partition(s): this process serves only the topics of its own; give each tidewire process its own kafka.groupId`,
          );
        }
        this.setState(recovered(this.state));
        return;
      }
      case 'heartbeat':
        this.setState(recovered(this.state));
        return;
      case 'rebalancing':
        this.log.info('the consumer group is rebalancing');
        return;
      case 'skipped': {
        const p = this.positions.get(e.topic, e.partition);
        // Only when the skipped records follow the position: a stale fetch must not jump over records.
        if (p.next === undefined || Number(e.firstOffset) <= p.next) this.positions.advance(p, Number(e.lastOffset) + 1);
        return;
      }
      case 'crashed':
        this.consumerFailed(e.error, gen);
        return;
    }
  }

  /** A retriable failure restarts the consumer with backoff; any other fails the connector. */
  private consumerFailed(err: unknown, gen: number): void {
    if (gen !== this.generation || this.stopping) return;
    const error = err instanceof Error ? err : new Error(String(err));
    if (!(error instanceof TidewireError && error.retriable)) {
      this.log.error({ err: error }, 'the Kafka consumer failed and cannot recover by retrying');
      this.setState(failed(this.state, error.message));
      this.abortStart?.(error);
      void this.closeClients();
      return;
    }
    const attempt = this.restartAttempt++;
    const delay = backoffDelay(attempt, this.backoff);
    this.restarts++;
    this.log.warn({ err: error, attempt: attempt + 1, delayMs: delay }, 'the Kafka consumer stopped; restarting it');
    this.setState(troubled(this.state, `the Kafka consumer stopped (${error.message}); restarting (attempt ${attempt + 1})`, Date.now()));
    this.restartTimer = setTimeout(() => void this.restartConsumer(), delay);
  }

  private async restartConsumer(): Promise<void> {
    this.restartTimer = null;
    const old = this.consumer;
    this.consumer = null;
    await old?.disconnect().catch(() => {});
    if (this.stopping) return;
    try {
      await this.startConsumer();
    } catch (err) {
      this.consumerFailed(err, this.generation);
    }
  }

  private async closeClients(): Promise<void> {
    this.generation++;
    const consumer = this.consumer;
    const producer = this.producer;
    this.consumer = null;
    this.producer = null;
    this.applier.deadLetter = null;
    await consumer?.disconnect().catch((err) => this.log.warn({ err }, 'disconnecting the consumer failed'));
    await producer?.disconnect().catch((err) => this.log.warn({ err }, 'disconnecting the dead-letter producer failed'));
  }

  // ---------------------------------------------------------------------------------------------
  // Batches

  private onBatch(gen: number, consumer: KafkaConsumer, batch: KafkaBatch, control: BatchControl): Promise<void> {
    return this.exclusive(async () => {
      if (gen !== this.generation || !control.isActive()) return;
      const p = this.positions.get(batch.topic, batch.partition);
      if (this.freshness.isHeartbeat(batch.topic)) {
        // A heartbeat's content does not matter, only that it came; it never becomes a topic.
        if (batch.messages.length > 0 && this.freshness.heard(batch.topic)) this.staleFeedsChanged();
        this.positions.advance(p, Number(batch.lastOffset) + 1);
        control.resolveOffset(batch.lastOffset);
        await this.committer.afterBatch(consumer, p, 'direct');
        return;
      }
      const done = await this.applier.apply(batch, control, this.positions);
      // After the apply: a subscriber told the feed is fresh again already has its new values.
      if (batch.messages.length > 0 && this.freshness.heard(batch.topic)) this.staleFeedsChanged();
      if (done) await this.committer.afterBatch(consumer, p, this.commitKind(p));
    });
  }

  private commitKind(p: PartitionPosition): CommitKind {
    if (this.freshness.isHeartbeat(p.topic)) return 'direct';
    return this.reread?.topics.has(p.topic) ? 'hold' : 'state';
  }

  // ---------------------------------------------------------------------------------------------
  // Feed freshness

  /** Starts the feed clocks for the topics and heartbeats decided at start, and (with kafka.staleAfterMs) the check. */
  private followFeeds(): void {
    this.freshness.begin(new Map(this.topics.map((t) => [t, kafkaSourceName(t)])), this.heartbeats);
    if (this.freshnessTimer) clearInterval(this.freshnessTimer);
    this.freshnessTimer = null;
    const after = this.settings.staleAfterMs;
    if (after === null) return;
    // A feed is called stale at most a quarter of the threshold (or 1 s) late.
    this.freshnessTimer = setInterval(() => {
      if (this.freshness.check()) this.staleFeedsChanged();
    }, Math.max(25, Math.min(1_000, Math.floor(after / 4))));
    this.freshnessTimer.unref();
  }

  private staleFeedsChanged(): void {
    const stale = this.freshness.stale();
    if (stale.length > 0) this.log.warn({ stale: stale.map((f) => f.feed) }, `stale Kafka feed(s): no record or heartbeat for over ${this.settings.staleAfterMs} ms`);
    else this.log.info('every Kafka feed is fresh again');
    this.onStaleFeeds?.(stale);
  }

  private async commitAll(consumer: KafkaConsumer): Promise<void> {
    await this.committer.flush(consumer, this.positions.all(), (p) => this.commitKind(p));
  }

  private setState(next: ConnectorState): void {
    if (next === this.state) return;
    const from = this.state.kind;
    this.state = next;
    const h = this.health();
    if (h.state === 'degraded' || h.state === 'failed') this.log.warn({ from, state: h.state, detail: h.detail }, 'kafka connector state');
    else this.log.info({ from, state: h.state, detail: h.detail }, 'kafka connector state');
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
