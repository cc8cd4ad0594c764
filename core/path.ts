/**
 * Topic paths are `/`-separated, non-empty segments. Data never forges structure: a value placed
 * into a path is percent-encoded (so `a/b` becomes `a%2Fb`), `*` and `~` are encoded too because
 * selectors and the null marker use them, and the dot segments `.` and `..` are encoded so no
 * URL normalisation anywhere can turn them into navigation.
 */
import { TidewireError } from './errors.ts';

export const MAX_PATH_LENGTH = 1024;
export const MAX_PATH_SEGMENTS = 32;

/** Marker segments for values that have no text form of their own. */
const NULL_SEGMENT = '~';
const EMPTY_SEGMENT = '~0';

/** Characters a segment may contain once encoded: encodeURIComponent's output, without `*` and `~`. */
const ENCODED_SEGMENT = /^(?:[A-Za-z0-9\-_.!'()]|%[0-9A-F]{2})+$/;

export function encodeSegment(value: unknown): string {
  if (value === null || value === undefined) return NULL_SEGMENT;
  const text = typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
  if (text === '') return EMPTY_SEGMENT;
  let out = encodeURIComponent(text).replace(/[*~]/g, (c) => (c === '*' ? '%2A' : '%7E'));
  if (out === '.' || out === '..') out = out.replace(/\./g, '%2E');
  return out;
}

/** True when `segment` is exactly what encodeSegment can produce (or a literal template segment). */
export function isValidSegment(segment: string): boolean {
  if (segment === NULL_SEGMENT || segment === EMPTY_SEGMENT) return true;
  if (segment === '.' || segment === '..') return false;
  return ENCODED_SEGMENT.test(segment);
}

export class PathError extends TidewireError {
  constructor(message: string) {
    super('INVALID_PATH', message);
    this.name = 'PathError';
  }
}

/** Splits and validates a topic path; throws PathError saying what is wrong. */
export function parsePath(path: string): string[] {
  if (typeof path !== 'string' || path.length === 0) throw new PathError('a topic path must be a non-empty string');
  if (path.length > MAX_PATH_LENGTH) throw new PathError(`a topic path is limited to ${MAX_PATH_LENGTH} characters`);
  const segments = path.split('/');
  if (segments.length > MAX_PATH_SEGMENTS) throw new PathError(`a topic path is limited to ${MAX_PATH_SEGMENTS} segments`);
  for (const s of segments) {
    if (s === '') throw new PathError(`empty segment in "${truncate(path)}": paths have no leading, trailing or double '/'`);
    if (!isValidSegment(s)) {
      throw new PathError(`segment "${truncate(s)}" is not valid: percent-encode characters outside A-Z a-z 0-9 - _ . ! ' ( ) (e.g. '/' as %2F)`);
    }
  }
  return segments;
}

export function truncate(s: string, n = 64): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}
