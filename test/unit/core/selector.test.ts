/**
 * The selector character set, as implemented and as docs/PROTOCOL.md states it (issue #13, item
 * 7: selectors accepted `~`, which the documented set left out). `~` and `~0` are the marker
 * segments paths use for a null and an empty-string value, so a selector may name them as whole
 * segments; `~` anywhere else is refused.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { encodeSegment } from '../../../core/path.ts';
import { SelectorError, matches, parseSelector } from '../../../core/selector.ts';

const doc = readFileSync(new URL('../../../docs/PROTOCOL.md', import.meta.url), 'utf8');
const refusedText = doc.slice(doc.indexOf('Refused (`INVALID_SELECTOR`)'), doc.indexOf('No regular expressions'));

const accepted = (s: string) => {
  try {
    parseSelector(s);
    return true;
  } catch (err) {
    if (err instanceof SelectorError) return false;
    throw err;
  }
};

describe('selector segments', () => {
  it('`~` and `~0` match the segments of a null and an empty-string value, and nothing else', () => {
    const nullPath = `orders/${encodeSegment(null)}/42`;
    const emptyPath = `orders/${encodeSegment('')}/42`;
    assert.equal(nullPath, 'orders/~/42');
    assert.ok(matches(parseSelector('orders/~/42'), nullPath));
    assert.ok(matches(parseSelector('orders/~/*'), nullPath));
    assert.ok(!matches(parseSelector('orders/~/42'), emptyPath), 'null is not the empty string');
    assert.ok(!matches(parseSelector('orders/~/42'), `orders/${encodeSegment('~')}/42`), 'nor the text "~"');
    assert.ok(matches(parseSelector('orders/~0/42'), emptyPath));
    assert.ok(matches(parseSelector('orders/*/42'), nullPath), '* covers the marker segments too');
  });

  it('refuse `~` anywhere but as the whole segment `~` or `~0`', () => {
    for (const s of ['a~', '~1', '~~', '~0~', 'x/~a', '%7E~']) assert.equal(accepted(s), false, s);
    for (const s of ['~', '~0', 'a/~/b', 'a/~0', '%7E']) assert.equal(accepted(s), true, s);
  });

  it('accept exactly the characters docs/PROTOCOL.md lists, and the marker segments it names', () => {
    const listed = /characters outside `([^`]+)` and `%XX` \(uppercase hex\)\s+except the whole segments `~` and `~0`/.exec(refusedText);
    assert.ok(listed, `docs/PROTOCOL.md states the selector character set and the marker segments: ${refusedText}`);
    const ranges = listed[1].split(' ');
    const inSet = (c: string) => ranges.some((r) => (r.length === 3 && r[1] === '-' ? c >= r[0] && c <= r[2] : r === c));
    for (let code = 0x21; code < 0x7f; code++) {
      const c = String.fromCharCode(code);
      if (c === '/' || c === '*' || c === '%') continue; // the separator, the wildcard, the escape
      assert.equal(accepted(`a${c}b`), inSet(c), `'${c}' inside a segment`);
    }
    assert.equal(accepted('%2f'), false, 'lowercase hex is refused');
    for (const marker of ['~', '~0']) assert.ok(accepted(`orders/${marker}/1`), marker);
  });
});
