/**
 * The Postgres connector's settings: the configuration file's `postgres` section
 * (schemas/config.schema.json), filled in by the app's parseConfig.
 */

export interface TableMapping {
  table: string;
  path: string;
  include?: string[];
  exclude?: string[];
  /**
   * A SQL boolean expression over the table's columns: only rows where it is true are mapped.
   * The publication's row filter (Postgres 15+) and the snapshot's WHERE; every mapping of one
   * table carries the same one (the row filter is one per table in a publication).
   */
  where?: string;
  /** Fixed tenant of every topic of the table. */
  tenant?: string;
  /** Column holding each row's tenant; must be a placeholder of `path`. */
  tenantColumn?: string;
}

export interface PostgresConfig {
  url: string;
  slot: string;
  publication: string;
  snapshotBatchRows: number;
  statusIntervalMs: number;
  /** Wire bytes of received, unapplied replication messages past which reading pauses. Default 8 MiB. */
  ingestQueueBytes?: number;
  /**
   * At start, attempts after the first to reach an unreachable server (full-jitter backoff, each
   * one logged) before the start fails. Default 10 (DEFAULT_CONNECT_RETRIES); 0 fails at once.
   */
  connectRetries?: number;
  tables: TableMapping[];
}
