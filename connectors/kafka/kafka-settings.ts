/**
 * The Kafka connector's settings as configured: the configuration file's `kafka` section
 * (schemas/config.schema.json). kafka-options.ts fills in their defaults.
 */

/** Decoding of a Kafka topic's records: plain JSON values, or Debezium change-event envelopes. */
export type KafkaFormat = 'json' | 'debezium';

/** One Kafka topic (or a pattern of topics) mapped onto topic paths. */
export interface KafkaTopicMapping {
  /** The Kafka topic's exact name; exactly one of `topic` and `pattern`. */
  topic?: string;
  /** A regular expression (JavaScript syntax) matched against topic names at start, e.g. `^prices\.` (in YAML `'^prices\.'`). */
  pattern?: string;
  format: KafkaFormat;
  /** Path template over `{key}`, `{key.f}`, `{value.f.g}`, `{headers.h}`, `{topic}`, `{partition}`. */
  path: string;
  /** Only these top-level value fields go into the topic value. */
  include?: string[];
  /** These top-level value fields are left out of the topic value. */
  exclude?: string[];
  /** Every topic of this mapping belongs to this tenant. */
  tenant?: string;
  /** The tenant is read from the record, e.g. `value.tenant_id` or `headers.tenant`. */
  tenantField?: string;
  /** `format: debezium` only: `postgres` (default) converts values by their Connect schema to what the Postgres connector gives; `raw` passes Debezium's encodings through. */
  values?: 'postgres' | 'raw';
  /**
   * A Kafka topic whose records say this mapping's source is alive though it has no change to
   * send, e.g. Debezium's `__debezium-heartbeat.<topic.prefix>` (with `heartbeat.interval.ms`).
   * Its records never become topics; each one counts as "seen" for every Kafka topic of this
   * mapping (see `kafka.staleAfterMs`).
   */
  heartbeatTopic?: string;
}

export interface KafkaSaslConfig {
  mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  username: string;
  /** Overridden by TIDEWIRE_KAFKA_PASSWORD. */
  password: string;
}

/** The Kafka connector. Optional settings are filled in by parseConfig (and by the connector when built directly). */
export interface KafkaConfig {
  /** Bootstrap brokers, `host:port`. Overridden by TIDEWIRE_KAFKA_BROKERS (comma-separated). */
  brokers: string[];
  clientId?: string;
  groupId?: string;
  ssl?: boolean;
  sasl?: KafkaSaslConfig;
  deadLetterTopic?: string;
  maxValueBytes?: number;
  startFrom?: 'earliest' | 'committed';
  connectTimeoutMs?: number;
  sessionTimeoutMs?: number;
  /**
   * A mapped Kafka topic with no record (and no heartbeat on its mapping's `heartbeatTopic`) for
   * this long is a stale feed: /ready answers 503, /health says degraded, subscribers get a
   * `status` message. Absent: feeds are never stale (their age is still measured).
   */
  staleAfterMs?: number;
  topics: KafkaTopicMapping[];
}
