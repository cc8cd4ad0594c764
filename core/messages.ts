/**
 * The wire protocol's messages as TypeScript types, one per schema in schemas/protocol/ (the
 * schemas are the truth; test/unit/distribution/protocol.test.ts checks the two agree). Pure
 * types and guards with no runtime imports, so the browser client shares them with the server.
 */
import type { JsonObject } from './json.ts';
import type { PatchOp } from './patch.ts';

export type { JsonObject, JsonValue } from './json.ts';
export type PatchOperation = PatchOp;

/** Protocol version announced in `hello`. */
export const PROTOCOL_VERSION = 1;

// Client → server: one JSON object per frame.
/**
 * What the client holds from an earlier connection: the epoch then, and a version per topic path
 * (`versions`), or the position it holds the state at (`seq`, from the last `position` message,
 * with its `access` tag), or both (the listed topics moved past the position).
 */
export interface ResumeState { epoch: string; versions?: Record<string, number>; seq?: number; access?: string }
export interface SubscribeMessage {
  type: 'subscribe';
  id: string;
  selector: string;
  /** Only topics whose (projected) value matches this expression; see docs/PROTOCOL.md, "Filters". */
  filter?: string;
  /** At most this many updates per second per topic; changes in between are merged, the latest always arrives. */
  maxRate?: number;
  /** Send only what changed since these versions (same epoch), removals for what is gone. */
  resume?: ResumeState;
  /** End frames with `position` messages from now on (the whole session), to resume from a position. */
  positions?: true;
}
/**
 * Bounds of a subscription's `maxRate`, updates per second per topic (schemas/protocol/subscribe.schema.json):
 * the minimum keeps every throttle interval at 100 s or less, a timer any runtime can arm.
 */
export const MAX_RATE = { min: 0.01, max: 1000 } as const;
export interface UnsubscribeMessage { type: 'unsubscribe'; id: string }
export interface PingMessage { type: 'ping'; id?: string }
/** A fresh bearer token for the live session (same subject and tenant), sent before the current one expires. */
export interface AuthMessage { type: 'auth'; token: string; id?: string }
export type ClientMessage = SubscribeMessage | UnsubscribeMessage | PingMessage | AuthMessage;
export type ClientMessageType = ClientMessage['type'];
export const CLIENT_MESSAGE_TYPES: readonly ClientMessageType[] = ['subscribe', 'unsubscribe', 'ping', 'auth'];

// Server → client: every frame is a JSON array of these.
export interface HelloMessage { type: 'hello'; protocol: typeof PROTOCOL_VERSION; epoch: string; server: 'tidewire'; maxPayloadBytes?: number }
export interface ValueMessage { type: 'value'; path: string; version: number; value: JsonObject }
/** Apply `patch` to the value held at `base` (absent: `version - 1`); holding any other version means something was missed. */
export interface DeltaMessage { type: 'delta'; path: string; version: number; patch: PatchOperation[]; base?: number }
import type { RemovalReason } from './wire.ts';
export type { RemovalReason };
export interface RemovalMessage { type: 'removal'; path: string; version: number; reason?: RemovalReason }
/** How a subscribe with `resume` was answered: only changes, some values where history did not reach, or everything afresh (another epoch). */
export type ResumeKind = 'exact' | 'partial' | 'fresh';
export interface SubscribedMessage { type: 'subscribed'; id: string; selector: string; topics: number; resumed?: ResumeKind }
/**
 * An answer too large for one page goes out in pages: `sent` of `total` topics so far. Sent after
 * every page but the last; `subscribed` follows the last one.
 */
export interface LoadingMessage { type: 'loading'; id: string; sent: number; total: number }
export interface UnsubscribedMessage { type: 'unsubscribed'; id: string }
export interface PongMessage { type: 'pong'; id?: string }
/** Answers `auth`: the new token is in force; `exp` is its expiry (seconds since the epoch), null for none. */
export interface AuthenticatedMessage { type: 'authenticated'; id?: string; exp: number | null }
export interface ErrorMessage { type: 'error'; code: ErrorCode; message: string; id?: string; limit?: TenantLimitName }
/**
 * Opens a frame carrying part `part` of `parts` of one group too large for one frame (a source
 * transaction, a subscription's answer, a slow client's catch-up): apply all parts before showing any.
 */
export interface TxnMessage { type: 'txn'; seq: number; part: number; parts: number }
/**
 * Ends a frame after which the client holds exactly the state after batch `seq` for its live
 * subscriptions (nothing merged or throttled still waiting): what it resumes from (`resume.seq`).
 * `access` (with security) tags the permissions it was served under.
 */
export interface PositionMessage { type: 'position'; seq: number; access?: string }
/**
 * The feed behind a subscription went quiet past its threshold (`stale: true`: the values shown
 * may be old) or is live again (`stale: false`). `sources` names the stale feeds (Kafka topics),
 * only with security off. Sent only when the answer changes; never before `subscribed`.
 */
export interface StatusMessage { type: 'status'; id: string; stale: boolean; sources?: string[] }
export type TopicMessage = ValueMessage | DeltaMessage | RemovalMessage;
export type ServerMessage =
  | HelloMessage | TopicMessage | LoadingMessage | SubscribedMessage | UnsubscribedMessage | PongMessage | AuthenticatedMessage | ErrorMessage | TxnMessage | StatusMessage
  | PositionMessage;
export type ServerMessageType = ServerMessage['type'];
export const SERVER_MESSAGE_TYPES: readonly ServerMessageType[] = [
  'hello', 'value', 'delta', 'removal', 'loading', 'subscribed', 'unsubscribed', 'pong', 'authenticated', 'error', 'txn', 'status', 'position',
];

/** Codes of `error` messages; the connection stays open after each. */
export const ERROR_CODES = [
  'BAD_JSON',
  'INVALID_MESSAGE',
  'UNKNOWN_TYPE',
  'INVALID_SELECTOR',
  'DUPLICATE_ID',
  'UNKNOWN_SUBSCRIPTION',
  'TOO_MANY_SUBSCRIPTIONS',
  'RATE_LIMITED',
  'BINARY_NOT_SUPPORTED',
  'UNAUTHORIZED',
  'TENANT_LIMIT',
  'FILTER_INVALID',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Which per-tenant limit a TENANT_LIMIT error is about. */
export type TenantLimitName = 'connections' | 'subscriptionsPerSession' | 'messagesPerSecond';

/**
 * Every WebSocket close code the server sends (RFC 6455 §7.4; 4000-4999 are tidewire's own), as
 * listed in docs/PROTOCOL.md ("Close codes") and schemas/protocol/close-code.schema.json
 * (test/unit/core/close-codes.test.ts keeps the three in step). 1002, 1007, 1008 and 1009 are
 * sent by ws when it refuses a client's frames.
 */
export const CloseCode = {
  /** The server is shutting down (or restarting): reconnect with backoff. */
  GOING_AWAY: 1001,
  /** ws: the client broke the WebSocket framing (unmasked frame, bad opcode, bad close code, ...). */
  PROTOCOL_ERROR: 1002,
  /** ws: a text frame (or close reason) was not valid UTF-8. */
  INVALID_UTF8: 1007,
  /** ws: a message came in too many fragments, or the connection buffered too many unread chunks. */
  POLICY_VIOLATION: 1008,
  /** A client frame was larger than the server's maxPayloadBytes. */
  MESSAGE_TOO_BIG: 1009,
  /**
   * The client did not read fast enough: its queue passed sendQueueBytes (or, with the
   * `disconnect` slow-client policy, stayed over slowClientBytes for slowClientGraceMs).
   */
  SEND_QUEUE_FULL: 4008,
  /** Serving the session failed on the server (a bug, logged there): handling its message, or delivering or sending it a change. Only that session ends. */
  INTERNAL_ERROR: 1011,
  /** The client kept sending far beyond maxMessagesPerSecond. */
  RATE_ABUSE: 4029,
  /** The session's token expired and no fresh one was sent with `auth`: reconnect with a fresh token. */
  TOKEN_EXPIRED: 4001,
  /** The session's access was revoked by a configuration reload (e.g. anonymous access turned off, tenant no longer derivable). */
  ACCESS_REVOKED: 4003,
} as const;

export function isTopicMessage(m: ServerMessage): m is TopicMessage {
  return m.type === 'value' || m.type === 'delta' || m.type === 'removal';
}
export function isValueMessage(m: ServerMessage): m is ValueMessage {
  return m.type === 'value';
}
export function isDeltaMessage(m: ServerMessage): m is DeltaMessage {
  return m.type === 'delta';
}
export function isRemovalMessage(m: ServerMessage): m is RemovalMessage {
  return m.type === 'removal';
}
export function isErrorMessage(m: ServerMessage): m is ErrorMessage {
  return m.type === 'error';
}
export function isSubscribeMessage(m: ClientMessage): m is SubscribeMessage {
  return m.type === 'subscribe';
}
export function isAuthMessage(m: ClientMessage): m is AuthMessage {
  return m.type === 'auth';
}
export function isAuthenticatedMessage(m: ServerMessage): m is AuthenticatedMessage {
  return m.type === 'authenticated';
}
export function isStatusMessage(m: ServerMessage): m is StatusMessage {
  return m.type === 'status';
}
export function isTxnMessage(m: ServerMessage): m is TxnMessage {
  return m.type === 'txn';
}
