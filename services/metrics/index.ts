/** Observability of a tidewire node: Prometheus metrics, readiness, snapshot progress, slot status. */
export { type MetricsInputs, createServiceMetrics } from './service-metrics.ts';
export { type Readiness, readiness } from './readiness.ts';
export { METRICS_PATH, READY_PATH, type OpsRoutesOptions, opsRoutes } from './http-routes.ts';
export { ReplicationLagPoller, type ReplicationLagOptions, type ReplicationLagSample } from './replication-lag.ts';
export { SnapshotProgressLog, type SnapshotProgressReport, SnapshotRate } from './snapshot-progress.ts';
export { REPLICATION_APPLICATION_NAME, type ReplicationUsage, type SlotStatus, isTidewireSlot, readReplicationUsage, readSlots } from './slot-status.ts';
