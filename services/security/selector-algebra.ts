/**
 * Set operations on selectors. The grammar (literal segments, `*` for one level, a final `**`)
 * is closed under intersection, so what a session may see of a subscription is again one
 * selector per grant: subscribing walks only those branches of the topic tree, never the topics
 * the session may not read.
 */
import type { Selector } from '../../core/selector.ts';

function meet(a: string, b: string): string | null {
  if (a === '*') return b;
  if (b === '*' || a === b) return a;
  return null;
}

function build(segments: string[], descendants: boolean): Selector {
  const text = descendants ? (segments.length === 0 ? '**' : `${segments.join('/')}/**`) : segments.join('/');
  return { text, segments, descendants, exact: !descendants && !segments.includes('*') };
}

/** The selector matching exactly the paths both match, or null when none can. */
export function intersect(a: Selector, b: Selector): Selector | null {
  const na = a.segments.length;
  const nb = b.segments.length;
  if (!a.descendants && !b.descendants && na !== nb) return null;
  // A `**` at depth n matches only paths longer than n.
  if (a.descendants && !b.descendants && nb <= na) return null;
  if (b.descendants && !a.descendants && na <= nb) return null;
  const long = na >= nb ? a : b;
  const out: string[] = [];
  for (let i = 0; i < long.segments.length; i++) {
    const x = i < na ? a.segments[i] : '*';
    const y = i < nb ? b.segments[i] : '*';
    const m = meet(x, y);
    if (m === null) return null;
    out.push(m);
  }
  return build(out, a.descendants && b.descendants);
}

/** Does `outer` match every path `inner` matches? */
export function covers(outer: Selector, inner: Selector): boolean {
  const no = outer.segments.length;
  const ni = inner.segments.length;
  if (inner.descendants) {
    if (!outer.descendants || ni < no) return false;
  } else if (outer.descendants ? ni <= no : ni !== no) {
    return false;
  }
  for (let i = 0; i < no; i++) {
    const o = outer.segments[i];
    if (o !== '*' && o !== inner.segments[i]) return false;
  }
  return true;
}
