/**
 * The SDK's JSON Patch applier: the one in core/json-patch.ts, which edge nodes use too
 * (services/handoff rebuilds topic state from the hand-off log with it).
 */
export { JsonPatchError, applyOperation, applyPatch, parsePointer } from '../core/json-patch.ts';
