/**
 * The server-wide limits of the distribution service: DistributionOptions's optional settings with their
 * defaults (the same as in schemas/config.schema.json), and the checks for a DistributionOptions built
 * without parseConfig.
 */
import { ConfigError } from '../../core/errors.ts';
import type { ConnectionLimits } from './connection-guard.ts';
import type { SessionLimits } from './session.ts';

/** The distribution server's settings: the configuration file's `server` section (schemas/config.schema.json). */
export interface DistributionOptions {
  host: string;
  port: number;
  maxPayloadBytes: number;
  sendQueueBytes: number;
  flushIntervalMs: number;
  maxSubscriptionsPerSession: number;
  maxMessagesPerSecond: number;
  /** What to do with a client that falls behind: merge its updates per topic (default) or close it after slowClientGraceMs. */
  slowClientPolicy?: 'conflate' | 'disconnect';
  /** Socket backlog (bytes) past which a client counts as behind; at most half of sendQueueBytes. Default 1 MiB. */
  slowClientBytes?: number;
  /** `disconnect` policy: how long a client may stay behind before it is closed with 4008. Default 10000. */
  slowClientGraceMs?: number;
  /** Most topics one session may have merged or throttled updates for; past it: 4008. Default 100000. */
  maxConflatedTopics?: number;
  /** Changes kept per topic for resuming clients. Default 64; 0 turns resume history off. */
  historyPerTopic?: number;
  /** Approximate bytes of change history kept over all topics. Default 32 MiB. */
  historyBytes?: number;
  /** A connection must finish its first request (or WebSocket handshake) within this, or it is destroyed. Default 10000. */
  handshakeTimeoutMs?: number;
  /** Connections that have not finished their first request or handshake, over all clients; past it the oldest is destroyed. Default 1024. */
  maxPendingConnections?: number;
  /** The same, per remote address; past it new connections from that address are destroyed. Default 256. */
  maxPendingConnectionsPerAddress?: number;
  /** Exact origins (`https://app.example.com`) whose pages may open /ws; see docs/SECURITY.md, "Origins". */
  allowedOrigins?: string[];
}

/** Defaults of the optional DistributionOptions settings (the same as in schemas/config.schema.json). */
export const DELIVERY_DEFAULTS = {
  slowClientPolicy: 'conflate',
  slowClientBytes: 1 << 20,
  slowClientGraceMs: 10_000,
  maxConflatedTopics: 100_000,
} as const;

/** Defaults of the connection bounds (the same as in schemas/config.schema.json). */
export const CONNECTION_DEFAULTS: ConnectionLimits = {
  handshakeTimeoutMs: 10_000,
  maxPendingConnections: 1024,
  maxPendingConnectionsPerAddress: 256,
};

/** The limits every session works with: the configuration with the optional settings' defaults. */
export function sessionLimits(config: DistributionOptions): SessionLimits {
  const d = DELIVERY_DEFAULTS;
  return {
    sendQueueBytes: config.sendQueueBytes,
    maxSubscriptionsPerSession: config.maxSubscriptionsPerSession,
    maxMessagesPerSecond: config.maxMessagesPerSecond,
    maxPayloadBytes: config.maxPayloadBytes,
    slowClientPolicy: config.slowClientPolicy ?? d.slowClientPolicy,
    // Behind must be noticed before the hard limit closes the session.
    slowClientBytes: Math.min(config.slowClientBytes ?? d.slowClientBytes, Math.floor(config.sendQueueBytes / 2)),
    slowClientGraceMs: config.slowClientGraceMs ?? d.slowClientGraceMs,
    maxConflatedTopics: config.maxConflatedTopics ?? d.maxConflatedTopics,
  };
}

/** The connection bounds: the configuration with the defaults. */
export function connectionLimits(config: DistributionOptions): ConnectionLimits {
  const d = CONNECTION_DEFAULTS;
  return {
    handshakeTimeoutMs: config.handshakeTimeoutMs ?? d.handshakeTimeoutMs,
    maxPendingConnections: config.maxPendingConnections ?? d.maxPendingConnections,
    maxPendingConnectionsPerAddress: config.maxPendingConnectionsPerAddress ?? d.maxPendingConnectionsPerAddress,
  };
}

export function validate(config: DistributionOptions): void {
  const positive = ['maxPayloadBytes', 'sendQueueBytes', 'maxSubscriptionsPerSession', 'maxMessagesPerSecond'] as const;
  for (const key of positive) {
    if (!Number.isInteger(config[key]) || config[key] < 1) throw new ConfigError(`server.${key}`, 'must be a positive integer');
  }
  for (const key of ['slowClientBytes', 'maxConflatedTopics', 'maxPendingConnections', 'maxPendingConnectionsPerAddress'] as const) {
    const v = config[key];
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new ConfigError(`server.${key}`, 'must be a positive integer');
  }
  const h = config.handshakeTimeoutMs;
  if (h !== undefined && (!Number.isInteger(h) || h < 100 || h > 300_000)) throw new ConfigError('server.handshakeTimeoutMs', 'must be an integer from 100 to 300000 (ms)');
  if (config.slowClientGraceMs !== undefined && (!Number.isInteger(config.slowClientGraceMs) || config.slowClientGraceMs < 0)) {
    throw new ConfigError('server.slowClientGraceMs', 'must be an integer ≥ 0');
  }
  if (config.slowClientPolicy !== undefined && config.slowClientPolicy !== 'conflate' && config.slowClientPolicy !== 'disconnect') {
    throw new ConfigError('server.slowClientPolicy', 'must be conflate or disconnect');
  }
  if (!Number.isInteger(config.flushIntervalMs) || config.flushIntervalMs < 0) {
    throw new ConfigError('server.flushIntervalMs', 'must be an integer ≥ 0');
  }
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65535) throw new ConfigError('server.port', 'must be 0-65535');
}
