/** Public API of the Postgres (pgoutput) connector. */
export { PostgresConnector, type PostgresConnectorOptions, type PostgresHealth } from './postgres-connector.ts';
export { postgresSourceName } from './table-mapper.ts';
/** The name of the Postgres position, and of its transactions applied in parts (IngestSink.apply's `part`). */
export { POSITION_NAME as POSTGRES_POSITION } from './transaction-applier.ts';
export { PostgresConnectorError, type PostgresErrorCode } from './errors.ts';
export type { SnapshotProgress } from './snapshot-source.ts';
// For `tidewire check` and `tidewire slots`: the connector's own connection setup, catalog reads and preflight checks.
export { ROW_FILTER_VERSION, type TableSpec, checkOneFilterPerTable, checkReplicationLimits, checkRole, checkRowFilter, checkTable, checkVersion, checkWalLevel } from './preflight.ts';
export { type PublishedTable, describePublication, publicationEntry, publishedTables, sameShape } from './publication.ts';
export { type RowFilterInfo, type ServerInfo, type TableInfo, loadRowFilter, loadServerInfo, loadTable, parseTableName, qualifiedName, quoteTable } from './catalog.ts';
export { clientConfig, closeClient, openClient } from './connection.ts';
export { describeTarget } from './errors.ts';
export { type Lsn, formatLsn, parseLsn } from './lsn.ts';
// Observability of the slot: the replication-lag metric, `tidewire slots` and `tidewire check`.
export { ReplicationLagPoller, type ReplicationLagOptions, type ReplicationLagSample } from './replication-lag.ts';
export { REPLICATION_APPLICATION_NAME, type ReplicationUsage, type SlotStatus, isTidewireSlot, readReplicationUsage, readSlots } from './slot-status.ts';
