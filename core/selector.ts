/**
 * Selectors choose topics: an exact path (`orders/7/42`), `*` for exactly one level
 * (`orders/*\/42`), and a final `**` for every descendant, one level or more (`orders/**`).
 * No user-supplied regular expressions: matching is linear in the number of segments.
 * Literal segments are those a path may hold (path.ts), including the whole segments `~` and
 * `~0` that stand for a null and an empty-string value, so a selector can name those topics.
 */
import { MAX_PATH_LENGTH, MAX_PATH_SEGMENTS, PathError, isValidSegment, truncate } from './path.ts';

export interface Selector {
  readonly text: string;
  /** Literal segments, or '*' for one level; a trailing '**' is kept in `descendants`. */
  readonly segments: readonly string[];
  readonly descendants: boolean;
  /** True when the selector names exactly one path. */
  readonly exact: boolean;
}

export class SelectorError extends PathError {
  constructor(message: string) {
    super(message);
    this.name = 'SelectorError';
  }
}

export function parseSelector(text: unknown): Selector {
  if (typeof text !== 'string' || text.length === 0) throw new SelectorError('a selector must be a non-empty string');
  if (text.length > MAX_PATH_LENGTH) throw new SelectorError(`a selector is limited to ${MAX_PATH_LENGTH} characters`);
  const parts = text.split('/');
  if (parts.length > MAX_PATH_SEGMENTS) throw new SelectorError(`a selector is limited to ${MAX_PATH_SEGMENTS} segments`);
  let descendants = false;
  const segments: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p === '**') {
      if (i !== parts.length - 1) throw new SelectorError(`'**' may only be the last segment of "${truncate(text)}"`);
      descendants = true;
      continue;
    }
    if (p === '') throw new SelectorError(`empty segment in "${truncate(text)}": selectors have no leading, trailing or double '/'`);
    if (p !== '*' && !isValidSegment(p)) {
      throw new SelectorError(
        `segment "${truncate(p)}" is not valid: use a literal segment, '*' for one level or a final '**'; percent-encode other characters (e.g. '/' as %2F)`,
      );
    }
    segments.push(p);
  }
  return { text, segments, descendants, exact: !descendants && !segments.includes('*') };
}

/** Does the selector match the (already split) topic path? */
export function matchesSegments(selector: Selector, path: readonly string[]): boolean {
  const n = selector.segments.length;
  if (selector.descendants ? path.length <= n : path.length !== n) return false;
  for (let i = 0; i < n; i++) {
    const s = selector.segments[i];
    if (s !== '*' && s !== path[i]) return false;
  }
  return true;
}

export function matches(selector: Selector, path: string): boolean {
  return matchesSegments(selector, path.split('/'));
}
