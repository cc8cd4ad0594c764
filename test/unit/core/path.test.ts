import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodeSegment, parsePath } from '../../../core/path.ts';
import { matches, parseSelector } from '../../../core/selector.ts';

test('data cannot forge path structure', () => {
  assert.equal(encodeSegment('a/b'), 'a%2Fb');
  assert.equal(encodeSegment('..'), '%2E%2E');
  assert.equal(encodeSegment('.'), '%2E');
  assert.equal(encodeSegment('*'), '%2A');
  assert.equal(encodeSegment('**'), '%2A%2A');
  assert.equal(encodeSegment(null), '~');
  assert.equal(encodeSegment(''), '~0');
  assert.equal(encodeSegment('~'), '%7E');
  assert.equal(encodeSegment(42), '42');
  assert.equal(encodeSegment('é'), '%C3%A9');
});

test('any encoded value is exactly one valid segment, and distinct values stay distinct', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.integer(), fc.constant(null)), fc.string(), (a, b) => {
      const sa = encodeSegment(a);
      assert.doesNotThrow(() => parsePath(`x/${sa}/y`));
      assert.equal(parsePath(`x/${sa}/y`).length, 3);
      if (typeof a === 'string' && a !== b) assert.notEqual(sa, encodeSegment(b));
    }),
    { numRuns: 5000 },
  );
});

test('parsePath rejects empty segments, raw specials and overlong paths', () => {
  for (const bad of ['', '/a', 'a/', 'a//b', 'a/../b', 'a/./b', 'a/b c', 'a/*', 'a/**', 'x'.repeat(1025), Array(40).fill('a').join('/')]) {
    assert.throws(() => parsePath(bad), { code: 'INVALID_PATH' }, bad.slice(0, 20));
  }
  assert.deepEqual(parsePath('orders/a%2Fb/1'), ['orders', 'a%2Fb', '1']);
});

test('selectors: exact, one level, descendants', () => {
  const s = (t: string) => parseSelector(t);
  assert.ok(matches(s('orders/7/42'), 'orders/7/42'));
  assert.ok(!matches(s('orders/7/42'), 'orders/7/43'));
  assert.ok(matches(s('orders/*/42'), 'orders/7/42'));
  assert.ok(!matches(s('orders/*/42'), 'orders/7/8/42'));
  assert.ok(matches(s('orders/**'), 'orders/7/42'));
  assert.ok(matches(s('orders/**'), 'orders/7'));
  assert.ok(!matches(s('orders/**'), 'orders'), '** means descendants, not the node itself');
  assert.ok(!matches(s('orders/**'), 'ordersx/1'));
  assert.ok(matches(s('**'), 'anything/at/all'));
  assert.ok(matches(s('*/*'), 'a/b'));
});

test('invalid selectors are refused with a reason', () => {
  for (const bad of ['', 'a//b', '/a', 'a/', '**/x', 'a/**/b', '../x', 'a/..', 'a b', 'a/***', 'x'.repeat(2000), 7, null]) {
    assert.throws(() => parseSelector(bad), (e: Error & { code?: string }) => e.code === 'INVALID_PATH' && e.message.length > 10, String(bad).slice(0, 20));
  }
});
