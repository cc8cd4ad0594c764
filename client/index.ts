/** The tidewire client SDK's public API. */
export { TidewireClient, type DisconnectInfo, type TidewireClientOptions } from './client.ts';
export { Subscription, type FeedStatus, type FilterLanguage, type ResumeInfo, type SubscribeOptions, type SubscriptionHandlers, type SubscriptionState } from './subscription.ts';
export type { TokenReason, TokenSource } from './token.ts';
export type { ConnectionState } from './connection-state.ts';
export { TidewireClientError, type ClientErrorCode } from './errors.ts';
export type { BackoffOptions } from '../core/backoff.ts';
export type { WebSocketConstructor, WebSocketLike } from './transport.ts';
export { applyPatch, JsonPatchError } from './json-patch.ts';
export type { JsonObject, JsonValue, PatchOperation, ServerMessage, ClientMessage, ResumeKind } from '../core/messages.ts';
