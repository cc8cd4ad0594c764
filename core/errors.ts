/**
 * One error hierarchy for tidewire. Every error has a stable `code` callers can switch on
 * (never match on message text), says whether retrying can help, and keeps its cause.
 * User-facing messages say what to do, not only what went wrong.
 */
export class TidewireError extends Error {
  readonly code: string;
  readonly retriable: boolean;

  constructor(code: string, message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TidewireError';
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}

/** Configuration that cannot work; `key` names the offending setting (a JSON pointer or dotted path). */
export class ConfigError extends TidewireError {
  readonly key: string;
  constructor(key: string, message: string, options: { cause?: unknown } = {}) {
    super('CONFIG_INVALID', `${key}: ${message}`, options);
    this.name = 'ConfigError';
    this.key = key;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
