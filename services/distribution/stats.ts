/** Counters the distribution server keeps for metrics; plain numbers, read them at any time. */

export type DisconnectReason =
  /** The client closed the connection (or it dropped). */
  | 'client'
  /**
   * Close 4008: the client did not read and its queue passed sendQueueBytes (or, with the
   * `disconnect` policy, stayed over slowClientBytes for slowClientGraceMs).
   */
  | 'sendQueue'
  /** Close 4029: the client kept sending far beyond maxMessagesPerSecond. */
  | 'rateAbuse'
  /** Close 1009: a client frame was larger than maxPayloadBytes. */
  | 'payloadTooBig'
  /** ws closed the connection for a framing error (e.g. 1002, 1007 invalid UTF-8). */
  | 'protocolError'
  /** The client stopped answering WebSocket pings. */
  | 'heartbeat'
  /** Close 1001: the server shut down. */
  | 'shutdown'
  /** Close 1011: handling a client message failed on the server (a bug; logged as an error). */
  | 'serverError'
  /** Close 4001: the session's token expired without an `auth` refresh. */
  | 'tokenExpired'
  /** Close 4003: a security reload revoked the session's access. */
  | 'accessRevoked';

/** Why a connection that had not finished its first request or handshake was destroyed (see connection-guard.ts). */
export type PendingCloseReason =
  /** It did not finish within server.handshakeTimeoutMs. */
  | 'timeout'
  /** Its remote address already had server.maxPendingConnectionsPerAddress pending connections. */
  | 'addressLimit'
  /** It was the oldest when server.maxPendingConnections were pending and another one came. */
  | 'globalLimit';

export interface DistributionStats {
  /** Connections accepted since start. */
  connections: number;
  /** Client messages received (frames, including refused ones). */
  messagesIn: number;
  /** Server messages sent (each element of a frame counts once). */
  messagesOut: number;
  /** Frames written. */
  framesOut: number;
  /** Payload bytes written (UTF-8, without WebSocket framing). */
  bytesOut: number;
  /** `error` messages sent. */
  errorsOut: number;
  /** Topic updates merged into one already waiting for the same topic (slow clients, throttled subscriptions): messages not sent. */
  conflations: number;
  /** Times a session fell behind (its socket backlog passed slowClientBytes). */
  slowClients: number;
  disconnects: Record<DisconnectReason, number>;
  /** Connections destroyed before finishing their first request or handshake, by reason. */
  pendingClosed: Record<PendingCloseReason, number>;
}

/** What sessions hold right now (DistributionServer.queueDepth()), for gauges. */
export interface QueueDepth {
  sessions: number;
  /** Sessions whose client is behind (updates merged until it reads). */
  behind: number;
  /** Messages and UTF-8 bytes queued, not yet handed to sockets. */
  messages: number;
  bytes: number;
  /** Topics with a merged or throttled update pending (or a client holding an older version), over all sessions. */
  conflatedTopics: number;
  /** Bytes sockets have not written yet, over all sessions. */
  socketBytes: number;
}

export function newStats(): DistributionStats {
  return {
    connections: 0,
    messagesIn: 0,
    messagesOut: 0,
    framesOut: 0,
    bytesOut: 0,
    errorsOut: 0,
    conflations: 0,
    slowClients: 0,
    disconnects: {
      client: 0, sendQueue: 0, rateAbuse: 0, payloadTooBig: 0, protocolError: 0, heartbeat: 0, shutdown: 0, serverError: 0, tokenExpired: 0, accessRevoked: 0,
    },
    pendingClosed: { timeout: 0, addressLimit: 0, globalLimit: 0 },
  };
}
