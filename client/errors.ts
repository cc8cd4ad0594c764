/** Errors the client reports through `onError`; `code` is stable, `message` says what happened. */
import type { ErrorCode } from '../core/messages.ts';

export type ClientErrorCode =
  /** An error message from the server (see docs/PROTOCOL.md). */
  | ErrorCode
  /** The connection could not be made or failed. */
  | 'CONNECTION_FAILED'
  /** The server sent something this client cannot read (not a JSON array of messages, wrong protocol). */
  | 'PROTOCOL_ERROR'
  /** A subscription was refused by the server and will not be retried. */
  | 'SUBSCRIPTION_FAILED'
  /** A handler passed to subscribe() threw; the client carried on. */
  | 'HANDLER_FAILED'
  /** subscribe() with a filter on a client created without `filters` (from '@tidewire/client/filter'). */
  | 'FILTER_UNAVAILABLE';

export class TidewireClientError extends Error {
  readonly code: ClientErrorCode;
  /** The selector of the subscription the error concerns, if any. */
  readonly selector?: string;

  constructor(code: ClientErrorCode, message: string, options: { selector?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TidewireClientError';
    this.code = code;
    if (options.selector !== undefined) this.selector = options.selector;
  }
}
