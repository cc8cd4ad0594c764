/**
 * The wire protocol's messages as TypeScript types, one per schema in schemas/protocol/ (the
 * schemas are the truth; test/unit/distribution-protocol.test.ts checks the two agree). Pure
 * types and guards with no runtime imports, so the browser client shares them with the server.
 */
import type { JsonObject } from '../json.ts';
import type { PatchOp } from '../topics/delta.ts';

export type { JsonObject, JsonValue } from '../json.ts';
export type PatchOperation = PatchOp;

/** Protocol version announced in `hello`. */
export const PROTOCOL_VERSION = 1;

// Client → server: one JSON object per frame.
export interface SubscribeMessage { type: 'subscribe'; id: string; selector: string }
export interface UnsubscribeMessage { type: 'unsubscribe'; id: string }
export interface PingMessage { type: 'ping'; id?: string }
export type ClientMessage = SubscribeMessage | UnsubscribeMessage | PingMessage;
export type ClientMessageType = ClientMessage['type'];
export const CLIENT_MESSAGE_TYPES: readonly ClientMessageType[] = ['subscribe', 'unsubscribe', 'ping'];

// Server → client: every frame is a JSON array of these.
export interface HelloMessage { type: 'hello'; protocol: typeof PROTOCOL_VERSION; epoch: string; server: 'tidewire' }
export interface ValueMessage { type: 'value'; path: string; version: number; value: JsonObject }
export interface DeltaMessage { type: 'delta'; path: string; version: number; patch: PatchOperation[] }
export interface RemovalMessage { type: 'removal'; path: string; version: number }
export interface SubscribedMessage { type: 'subscribed'; id: string; selector: string; topics: number }
export interface UnsubscribedMessage { type: 'unsubscribed'; id: string }
export interface PongMessage { type: 'pong'; id?: string }
export interface ErrorMessage { type: 'error'; code: ErrorCode; message: string; id?: string }
export type TopicMessage = ValueMessage | DeltaMessage | RemovalMessage;
export type ServerMessage = HelloMessage | TopicMessage | SubscribedMessage | UnsubscribedMessage | PongMessage | ErrorMessage;
export type ServerMessageType = ServerMessage['type'];
export const SERVER_MESSAGE_TYPES: readonly ServerMessageType[] = [
  'hello', 'value', 'delta', 'removal', 'subscribed', 'unsubscribed', 'pong', 'error',
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
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** WebSocket close codes the server uses (RFC 6455 §7.4; 4000-4999 are tidewire's own). */
export const CloseCode = {
  /** The server is shutting down (or restarting): reconnect with backoff. */
  GOING_AWAY: 1001,
  /** A client frame was larger than the server's maxPayloadBytes. */
  MESSAGE_TOO_BIG: 1009,
  /** The client did not read fast enough: its send queue passed sendQueueBytes. */
  SEND_QUEUE_FULL: 4008,
  /** Handling a client message failed on the server (a bug; it is logged). */
  INTERNAL_ERROR: 1011,
  /** The client kept sending far beyond maxMessagesPerSecond. */
  RATE_ABUSE: 4029,
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
