/** The durable state store (issue #12): the interface, its errors, and the LMDB implementation. */
export { STATE_FORMAT_VERSION } from './state-store.ts';
export type { SourceIdentity, StateChange, StateCommit, StateStore, StateStoreOptions, StoredRemoval, StoredTopic } from './state-store.ts';
export { StateError, type StateErrorCode } from './state-error.ts';
export { LmdbStateStore, MAX_PATH_BYTES, STATE_DEFAULTS } from './lmdb-state-store.ts';
export { JOURNAL_DEFAULTS, type JournalOptions, StateJournal } from './state-journal.ts';
