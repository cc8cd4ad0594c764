/** The distribution service's public API. */
export { DistributionServer, type DistributionServerOptions } from './distribution-server.ts';
export type { HealthReport, HealthStatus } from './http.ts';
export type { DisconnectReason, DistributionStats } from './stats.ts';
export { parseClientMessage, type ParseResult, type ProtocolError } from './protocol.ts';
export * from './messages.ts';
