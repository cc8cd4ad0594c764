import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { covers, intersect } from '../../../services/security/selector-algebra.ts';
import { matchesSegments, parseSelector } from '../../../core/selector.ts';

const seed = Number(process.env.TIDEWIRE_FC_SEED ?? 20250611);

// A tiny alphabet so selectors and paths collide often.
const selectorText = fc
  .tuple(fc.array(fc.constantFrom('a', 'b', 'c', '*'), { minLength: 0, maxLength: 4 }), fc.boolean())
  .filter(([segs, desc]) => segs.length > 0 || desc)
  .map(([segs, desc]) => [...segs, ...(desc ? ['**'] : [])].join('/'));
/** Every path of 1..6 segments over the alphabet: the universe the set operations are checked on. */
const universe: string[][] = [];
for (let n = 1; n <= 6; n++) {
  const grow = (prefix: string[]): void => {
    if (prefix.length === n) universe.push(prefix);
    else for (const s of ['a', 'b', 'c']) grow([...prefix, s]);
  };
  grow([]);
}

describe('intersect', () => {
  it('matches exactly the paths both selectors match (against every path of up to 6 segments)', () => {
    fc.assert(
      fc.property(selectorText, selectorText, (x, y) => {
        const a = parseSelector(x);
        const b = parseSelector(y);
        const i = intersect(a, b);
        if (i) assert.doesNotThrow(() => parseSelector(i.text), `intersection ${i.text} must be a valid selector`);
        for (const p of universe) {
          const both = matchesSegments(a, p) && matchesSegments(b, p);
          assert.equal(i !== null && matchesSegments(i, p), both, `${x} ∩ ${y} on ${p.join('/')}: got ${i?.text ?? 'none'}`);
        }
      }),
      { seed, numRuns: 400 },
    );
  });

  it('examples', () => {
    const t = (a: string, b: string) => intersect(parseSelector(a), parseSelector(b))?.text ?? null;
    assert.equal(t('orders/**', 'orders/7/**'), 'orders/7/**');
    assert.equal(t('**', 'orders/7/**'), 'orders/7/**');
    assert.equal(t('orders/*/1', 'orders/7/**'), 'orders/7/1');
    assert.equal(t('orders/8/**', 'orders/7/**'), null);
    assert.equal(t('orders/7', 'orders/7/**'), null, 'a ** matches one level or more below, not the node itself');
    assert.equal(t('a/**', '*/b/**'), 'a/b/**');
  });
});

describe('covers', () => {
  it('is true exactly when every path the inner selector matches, the outer matches too', () => {
    fc.assert(
      fc.property(selectorText, selectorText, (x, y) => {
        const outer = parseSelector(x);
        const inner = parseSelector(y);
        // The universe is finite: a ** inner selector could match longer paths, but over this
        // alphabet any counterexample shows up within one level more than both selectors.
        const subset = universe.every((p) => !matchesSegments(inner, p) || matchesSegments(outer, p));
        assert.equal(covers(outer, inner), subset, `${x} ⊇ ${y}`);
      }),
      { seed, numRuns: 400 },
    );
  });
});

