/** Observability of a tidewire node: Prometheus metrics, readiness, snapshot progress (the slot's own metrics are the Postgres connector's). */
export { type MetricsInputs, createServiceMetrics } from './service-metrics.ts';
export { type Readiness, readiness } from './readiness.ts';
export { METRICS_PATH, READY_PATH, type OpsRoutesOptions, opsRoutes } from './http-routes.ts';
export { SnapshotProgressLog, type SnapshotProgressReport, SnapshotRate } from './snapshot-progress.ts';
