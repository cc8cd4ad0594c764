/**
 * The Prometheus metrics of one tidewire node, in a registry of its own (never prom-client's global
 * one, so two services in one process do not mix). Nothing here sits on a hot path: every metric
 * is read at scrape time, by a collect() callback, from counters the components keep anyway
 * (DistributionStats, the pipeline's counts, connector health and stats). docs/OPERATIONS.md lists
 * them with what to alert on.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { KafkaConnectorStats } from '../../connectors/kafka/index.ts';
import { type PostgresHealth, type ReplicationLagPoller, parseLsn } from '../../connectors/postgres/index.ts';
import type { SourceHealth, SourceState } from '../../core/ingest.ts';
import type { DistributionStats } from '../distribution/index.ts';
import type { QueueDepth } from '../distribution/stats.ts';
import type { WireBytes } from '../pipeline.ts';
import type { TopicChange } from '../../core/topic.ts';
import type { Readiness } from './readiness.ts';

export interface MetricsInputs {
  readonly topics: () => number;
  /** With durable state: topics whose values are on the JS heap (the rest are read from the store); null in memory. */
  readonly topicsOnHeap?: () => { readonly pinned: number; readonly cached: number } | null;
  readonly distribution: {
    readonly sessionCount: number;
    readonly subscriptionCount: number;
    /** Connections that have not finished their first request or handshake. */
    readonly pendingConnections: number;
    readonly stats: DistributionStats;
    /** What sessions hold right now. */
    queueDepth(): QueueDepth;
  };
  readonly pipeline: {
    readonly updatesApplied: number;
    readonly changesByType: Readonly<Record<TopicChange['type'], number>>;
    readonly wireBytes: Readonly<WireBytes>;
  };
  readonly sources: () => readonly SourceHealth[];
  readonly readiness: () => Readiness;
  readonly postgres?: { readonly health: () => PostgresHealth; readonly lag: ReplicationLagPoller | null } | null;
  readonly kafka?: { readonly stats: () => KafkaConnectorStats } | null;
  /** An edge: records of the hand-off log it has not applied yet (issue #15). Absent on other roles. */
  readonly handoffLag?: (() => { readonly behind: number; readonly seconds: number }) | null;
  /** An ingest node: called once with the function to give each batch's publish latency (publish to Kafka's acknowledgement) in seconds. */
  readonly handoffPublished?: ((observe: (seconds: number) => void) => void) | null;
  /** Node's process metrics (CPU, memory, event-loop lag, GC) under their usual names. Default true. */
  readonly processMetrics?: boolean;
}

const SOURCE_STATES: readonly SourceState[] = ['starting', 'snapshotting', 'streaming', 'degraded', 'stopped', 'failed'];

/** Sets a counter to a total kept elsewhere (the total only grows; prom-client has no set() for counters). */
function total<T extends string>(c: Counter<T>, value: number, labels?: Partial<Record<T, string | number>>): void {
  if (labels) c.inc(labels, value);
  else c.inc(value);
}

/**
 * @example
 * const registry = createServiceMetrics({ topics: () => store.size, distribution, pipeline, sources, readiness });
 * res.end(await registry.metrics()); // content type: registry.contentType
 */
export function createServiceMetrics(inputs: MetricsInputs): Registry {
  const registry = new Registry();
  const registers = [registry];
  if (inputs.processMetrics ?? true) collectDefaultMetrics({ register: registry });

  // --- Node state and readiness ------------------------------------------------------------------
  new Gauge({ name: 'tidewire_ready', help: '1 when every source finished its snapshot or catch-up and is streaming (GET /ready answers 200)', registers,
    collect() { this.set(inputs.readiness().ready ? 1 : 0); } });
  new Gauge({ name: 'tidewire_source_state', help: 'State of each source: 1 for its current state, 0 for the others', labelNames: ['source', 'state'], registers,
    collect() {
      this.reset();
      for (const s of inputs.sources()) for (const state of SOURCE_STATES) this.set({ source: s.name, state }, s.state === state ? 1 : 0);
    } });
  new Gauge({ name: 'tidewire_topics', help: 'Topics in this node\'s state', registers, collect() { this.set(inputs.topics()); } });
  const handoffLag = inputs.handoffLag;
  if (handoffLag) {
    new Gauge({ name: 'tidewire_handoff_lag_records', help: 'An edge: records of the hand-off topic not applied yet (its end as of the last fetch, minus the offset after the last batch applied)', registers,
      collect() { this.set(handoffLag().behind); } });
    new Gauge({ name: 'tidewire_handoff_lag_seconds', help: 'An edge: while records of the hand-off topic wait, how old the last batch applied is (seconds since Kafka took it); 0 when caught up', registers,
      collect() { this.set(handoffLag().seconds); } });
  }
  if (inputs.handoffPublished) {
    const published = new Histogram({ name: 'tidewire_handoff_publish_seconds', help: 'An ingest node: each batch from its publish to the hand-off topic to Kafka\'s acknowledgement (retries included)', registers,
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10] });
    inputs.handoffPublished((seconds) => published.observe(seconds));
  }
  new Gauge({ name: 'tidewire_topics_on_heap', help: 'With durable state, topics held on the JS heap: pinned (changed or removed, not durable yet) and cached (changed last, kept to diff the next change); the others are read from the store. Absent with state in memory (every topic is on the heap)', labelNames: ['kind'], registers,
    collect() {
      this.reset();
      const h = inputs.topicsOnHeap?.();
      if (!h) return;
      this.set({ kind: 'pinned' }, h.pinned);
      this.set({ kind: 'cached' }, h.cached);
    } });

  // --- Distribution --------------------------------------------------------------------------------
  const d = inputs.distribution;
  new Gauge({ name: 'tidewire_sessions', help: 'Open WebSocket sessions', registers, collect() { this.set(d.sessionCount); } });
  new Gauge({ name: 'tidewire_subscriptions', help: 'Live subscriptions over all sessions', registers, collect() { this.set(d.subscriptionCount); } });
  new Counter({ name: 'tidewire_connections_total', help: 'WebSocket connections accepted', registers, collect() { this.reset(); total(this, d.stats.connections); } });
  new Gauge({ name: 'tidewire_pending_connections', help: 'Connections that have not finished their first request or WebSocket handshake', registers, collect() { this.set(d.pendingConnections); } });
  new Counter({ name: 'tidewire_pending_connections_closed_total', help: 'Connections destroyed before finishing their first request or handshake: timeout (server.handshakeTimeoutMs), addressLimit (server.maxPendingConnectionsPerAddress), globalLimit (server.maxPendingConnections, the oldest closed)', labelNames: ['reason'], registers,
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(d.stats.pendingClosed)) total(this, n, { reason });
    } });
  new Counter({ name: 'tidewire_messages_in_total', help: 'Client messages received', registers, collect() { this.reset(); total(this, d.stats.messagesIn); } });
  new Counter({ name: 'tidewire_messages_out_total', help: 'Server messages sent (each element of a frame counts once)', registers, collect() { this.reset(); total(this, d.stats.messagesOut); } });
  new Counter({ name: 'tidewire_frames_out_total', help: 'WebSocket frames sent', registers, collect() { this.reset(); total(this, d.stats.framesOut); } });
  new Counter({ name: 'tidewire_bytes_out_total', help: 'Payload bytes sent to clients (UTF-8, without WebSocket framing)', registers, collect() { this.reset(); total(this, d.stats.bytesOut); } });
  new Counter({ name: 'tidewire_error_messages_out_total', help: 'error messages sent to clients', registers, collect() { this.reset(); total(this, d.stats.errorsOut); } });
  new Counter({ name: 'tidewire_conflations_total', help: 'Topic updates merged into one already waiting for the same topic (slow clients, throttled subscriptions): messages not sent', registers,
    collect() { this.reset(); total(this, d.stats.conflations); } });
  new Counter({ name: 'tidewire_slow_clients_total', help: 'Times a session fell behind (its socket backlog passed server.slowClientBytes)', registers,
    collect() { this.reset(); total(this, d.stats.slowClients); } });
  new Gauge({ name: 'tidewire_sessions_behind', help: 'Sessions whose client is behind (its updates are merged until it reads)', registers, collect() { this.set(d.queueDepth().behind); } });
  new Gauge({ name: 'tidewire_send_queue_messages', help: 'Messages queued for clients, not yet handed to their sockets', registers, collect() { this.set(d.queueDepth().messages); } });
  new Gauge({ name: 'tidewire_send_queue_bytes', help: 'Bytes queued for clients, not yet handed to their sockets', registers, collect() { this.set(d.queueDepth().bytes); } });
  new Gauge({ name: 'tidewire_socket_buffered_bytes', help: 'Bytes the sockets have not written yet, over all sessions', registers, collect() { this.set(d.queueDepth().socketBytes); } });
  new Gauge({ name: 'tidewire_conflated_topics', help: 'Topics with a merged or throttled update pending, over all sessions', registers, collect() { this.set(d.queueDepth().conflatedTopics); } });
  new Counter({ name: 'tidewire_disconnects_total', help: 'Sessions ended, by reason (sendQueue: a client too slow to read its updates, dropped with 4008)', labelNames: ['reason'], registers,
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(d.stats.disconnects)) total(this, n, { reason });
    } });

  // --- Topic state: changes and what deltas save ------------------------------------------------------
  const p = inputs.pipeline;
  new Counter({ name: 'tidewire_updates_applied_total', help: 'Row or record updates applied to topic state', registers, collect() { this.reset(); total(this, p.updatesApplied); } });
  new Counter({ name: 'tidewire_changes_total', help: 'Topic changes published, by message type (value, delta, removal); each is serialized once, whatever the number of subscribers', labelNames: ['type'], registers,
    collect() {
      this.reset();
      for (const [type, n] of Object.entries(p.changesByType)) total(this, n, { type });
    } });
  new Counter({ name: 'tidewire_change_bytes_total', help: 'Wire bytes of the topic changes published, by message type (once per change, before fan-out)', labelNames: ['type'], registers,
    collect() {
      this.reset();
      for (const type of ['value', 'delta', 'removal'] as const) total(this, p.wireBytes[type], { type });
    } });
  new Counter({ name: 'tidewire_delta_full_value_bytes_total', help: 'What the delta changes would have cost as full value messages; 1 - change_bytes{type="delta"} / this is the share deltas save', registers,
    collect() { this.reset(); total(this, p.wireBytes.deltaAsValue); } });

  const { postgres, kafka } = inputs;
  if (postgres) registerPostgres(registers, postgres);
  if (kafka) registerKafka(registers, kafka);
  if (postgres || kafka) {
    new Counter({ name: 'tidewire_source_errors_total', help: 'Source errors by kind: connection_lost (Postgres replication reconnects), lag_query_failed (reading the slot lag), consumer_restart and commit_failed (Kafka)', labelNames: ['source', 'kind'], registers,
      collect() {
        this.reset();
        if (postgres) {
          total(this, postgres.health().reconnects, { source: 'postgres', kind: 'connection_lost' });
          total(this, postgres.lag?.failures ?? 0, { source: 'postgres', kind: 'lag_query_failed' });
        }
        if (kafka) {
          const s = kafka.stats();
          total(this, s.restarts, { source: 'kafka', kind: 'consumer_restart' });
          total(this, s.commitFailures, { source: 'kafka', kind: 'commit_failed' });
        }
      } });
  }
  return registry;
}

function registerPostgres(registers: Registry[], pg: NonNullable<MetricsInputs['postgres']>): void {
  const lsnNumber = (lsn: string | null) => (lsn === null ? null : Number(parseLsn(lsn)));
  const freshSlot = () => {
    const last = pg.lag?.last;
    return last && last.slot && Date.now() - last.at < 60_000 ? last.slot : null;
  };
  new Gauge({ name: 'tidewire_postgres_replication_lag_bytes', help: 'WAL the replication slot holds back: pg_current_wal_lsn() - confirmed_flush_lsn, read every metrics.replicationLagIntervalMs', labelNames: ['slot'], registers,
    collect() {
      this.reset();
      const s = freshSlot();
      if (s && s.lagBytes !== null) this.set({ slot: s.name }, s.lagBytes);
    } });
  new Gauge({ name: 'tidewire_postgres_replication_lag_seconds', help: 'Now minus the commit time of the last transaction applied; grows while the database is idle, so alert on it together with lag_bytes', labelNames: ['slot'], registers,
    collect() {
      this.reset();
      const h = pg.health();
      if (h.lastCommitTime !== null) this.set({ slot: h.slot }, Math.max(0, (Date.now() - Date.parse(h.lastCommitTime)) / 1000));
    } });
  new Gauge({ name: 'tidewire_postgres_slot_active', help: '1 when a process streams from the replication slot (from the last lag read)', labelNames: ['slot'], registers,
    collect() {
      this.reset();
      const s = freshSlot();
      if (s) this.set({ slot: s.name }, s.active ? 1 : 0);
    } });
  new Gauge({ name: 'tidewire_postgres_confirmed_lsn', help: 'The last position confirmed to Postgres as flushed (the slot\'s confirmed_flush_lsn follows it), as a number', labelNames: ['slot'], registers,
    collect() {
      this.reset();
      const h = pg.health();
      const v = lsnNumber(h.lastAckedLsn);
      if (v !== null) this.set({ slot: h.slot }, v);
    } });
  new Gauge({ name: 'tidewire_postgres_applied_lsn', help: 'End of the last transaction applied to topic state, as a number', labelNames: ['slot'], registers,
    collect() {
      this.reset();
      const h = pg.health();
      const v = lsnNumber(h.lastAppliedLsn);
      if (v !== null) this.set({ slot: h.slot }, v);
    } });
  new Gauge({ name: 'tidewire_postgres_queued_messages', help: 'Replication messages received and not yet applied (reading pauses past 20000)', labelNames: ['slot'], registers,
    collect() {
      const h = pg.health();
      this.reset();
      this.set({ slot: h.slot }, h.queuedMessages);
    } });
  new Counter({ name: 'tidewire_postgres_transactions_applied_total', help: 'Transactions applied to topic state', labelNames: ['slot'], registers,
    collect() {
      const h = pg.health();
      this.reset();
      total(this, h.transactionsApplied, { slot: h.slot });
    } });
  new Gauge({ name: 'tidewire_snapshot_rows', help: 'Rows applied by the initial snapshot, per table', labelNames: ['table'], registers,
    collect() {
      this.reset();
      for (const t of pg.health().snapshot) this.set({ table: t.table }, t.rows);
    } });
  new Gauge({ name: 'tidewire_snapshot_rows_estimated', help: 'Rows of each table estimated at the start of the snapshot (pg_class.reltuples; 0 when never analyzed)', labelNames: ['table'], registers,
    collect() {
      this.reset();
      for (const t of pg.health().snapshot) this.set({ table: t.table }, t.totalEstimate);
    } });
}

function registerKafka(registers: Registry[], kafka: NonNullable<MetricsInputs['kafka']>): void {
  new Gauge({ name: 'tidewire_kafka_consumer_lag', help: 'Records between this node\'s position and the high watermark last seen, per partition', labelNames: ['topic', 'partition'], registers,
    collect() {
      this.reset();
      for (const p of kafka.stats().partitions) if (p.lag !== null) this.set({ topic: p.topic, partition: p.partition }, p.lag);
    } });
  new Counter({ name: 'tidewire_kafka_records_total', help: 'Kafka records read (redeliveries of records already applied not counted)', registers, collect() { this.reset(); total(this, kafka.stats().records); } });
  new Counter({ name: 'tidewire_kafka_records_applied_total', help: 'Kafka records whose updates were applied to topic state', registers, collect() { this.reset(); total(this, kafka.stats().applied); } });
  new Counter({ name: 'tidewire_bad_records_total', help: 'Records that could not be mapped, by source and reason (dead-lettered when kafka.deadLetterTopic is set)', labelNames: ['source', 'reason'], registers,
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(kafka.stats().bad)) total(this, n, { source: 'kafka', reason });
    } });
  new Counter({ name: 'tidewire_kafka_ignored_records_total', help: 'Kafka records deliberately not applied, by reason', labelNames: ['reason'], registers,
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(kafka.stats().ignored)) total(this, n, { reason });
    } });
  new Gauge({ name: 'tidewire_kafka_feed_age_seconds', help: 'Seconds since the last record of each consumed Kafka topic, or heartbeat on its mapping\'s heartbeatTopic (since the connector started when none came)', labelNames: ['topic'], registers,
    collect() {
      this.reset();
      for (const f of kafka.stats().feeds) this.set({ topic: f.topic }, f.ageMs / 1000);
    } });
  new Gauge({ name: 'tidewire_kafka_feed_stale', help: '1 when the Kafka topic\'s feed is stale: no record or heartbeat for kafka.staleAfterMs (never without it)', labelNames: ['topic'], registers,
    collect() {
      this.reset();
      for (const f of kafka.stats().feeds) this.set({ topic: f.topic }, f.stale ? 1 : 0);
    } });
  new Counter({ name: 'tidewire_kafka_dead_lettered_total', help: 'Bad records copied to kafka.deadLetterTopic', registers, collect() { this.reset(); total(this, kafka.stats().deadLettered); } });
}
