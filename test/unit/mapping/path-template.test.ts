/**
 * A path template's selector (connectors/mapping/path-template.ts) matches every path the template
 * renders, whatever the field values (a restart reads a table's stored topics through it), and
 * only paths of the template's shape.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { matches, parseSelector } from '../../../core/selector.ts';
import { PathTemplate } from '../../../connectors/mapping/path-template.ts';

test('the selector of a template matches every path it renders, and no path of another shape', () => {
  const t = new PathTemplate('orders/{customer}/{id}', 'test');
  assert.equal(t.selector, 'orders/*/*');
  assert.equal(new PathTemplate('{tenant}/feed/{value.venue}/x', 'test').selector, '*/feed/*/x');
  const sel = parseSelector(t.selector);
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.integer(), fc.boolean()), fc.oneof(fc.string(), fc.integer()), (customer, id) => {
      const path = t.render((f) => (f === 'customer' ? customer : id));
      assert.equal(typeof path, 'string');
      assert.ok(matches(sel, path as string), `${path as string} matches ${t.selector}`);
    }),
    { numRuns: 500 },
  );
  for (const other of ['orders/1', 'orders/1/2/3', 'order/1/2']) assert.equal(matches(sel, other), false, other);
});
