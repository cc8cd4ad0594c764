/**
 * The one writer of topic messages: text exactly as schemas/protocol/ says, and the delta-or-value
 * rule (a delta only when strictly shorter than the value) applied the same way everywhere.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { accessRemovalMessage, deltaMessage, prefersDelta, removalMessage, updateText, valueMessage } from '../../../core/wire.ts';

describe('wire text', () => {
  it('value, delta (base only when not version - 1) and removal messages', () => {
    assert.equal(valueMessage('a/b', 3, { x: 1 }), '{"type":"value","path":"a/b","version":3,"value":{"x":1}}');
    assert.equal(deltaMessage('a', 3, [{ op: 'replace', path: '/x', value: 2 }]), '{"type":"delta","path":"a","version":3,"patch":[{"op":"replace","path":"/x","value":2}]}');
    assert.equal(deltaMessage('a', 5, [], 2), '{"type":"delta","path":"a","version":5,"base":2,"patch":[]}');
    assert.equal(removalMessage('a', 4), '{"type":"removal","path":"a","version":4}');
    assert.equal(removalMessage('a', 1, 'filter'), '{"type":"removal","path":"a","version":2,"reason":"filter"}', 'a removal is at least version 2');
    assert.equal(accessRemovalMessage('a', 7), '{"type":"removal","path":"a","version":8,"reason":"access"}');
    assert.equal(JSON.parse(valueMessage('a"\\', 1, {})).path, 'a"\\', 'paths are JSON-escaped');
  });

  it('a delta only when strictly shorter than the value', () => {
    assert.equal(prefersDelta('12345', '123456'), true);
    assert.equal(prefersDelta('123456', '123456'), false);
    const value = JSON.stringify({ big: 'x'.repeat(100), n: 2 });
    const patch = JSON.stringify([{ op: 'replace', path: '/n', value: 2 }]);
    assert.match(updateText('t', 4, value, patch, 3), /^\{"type":"delta","path":"t","version":4,"patch":/);
    assert.match(updateText('t', 4, value, patch, 1), /"base":1,/);
    assert.match(updateText('t', 4, '{"n":2}', patch, 3), /^\{"type":"value"/, 'longer patch: the value');
    assert.match(updateText('t', 4, value, null, 3), /^\{"type":"value"/, 'no patch: the value');
    assert.match(updateText('t', 4, value, patch, 0), /^\{"type":"value"/, 'nothing held: the value');
  });
});
