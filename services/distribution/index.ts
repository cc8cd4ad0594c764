/** The distribution service's public API. */
export { DistributionServer, type DistributionServerOptions } from './distribution-server.ts';
export { type HealthReport, type HealthStatus, type HttpRoute, optionalCaller } from './http.ts';
export type { DisconnectReason, DistributionStats, QueueDepth } from './stats.ts';
export type { SlowClientPolicy } from './session-delivery.ts';
export { parseClientMessage, type ParseResult, type ProtocolError } from './protocol.ts';
export * from '../../core/messages.ts';
