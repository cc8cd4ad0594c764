/** Public API of the Postgres (pgoutput) connector. */
export { PostgresConnector, type PostgresConnectorOptions, type PostgresHealth } from './postgres-connector.ts';
export { postgresSourceName } from './table-mapper.ts';
export { PostgresConnectorError, type PostgresErrorCode } from './errors.ts';
export type { SnapshotProgress } from './snapshot-source.ts';
