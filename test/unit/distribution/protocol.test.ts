import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import AjvModule from 'ajv';
import {
  CLIENT_MESSAGE_TYPES,
  ERROR_CODES,
  SERVER_MESSAGE_TYPES,
} from '../../../core/messages.ts';
import {
  helloMessage,
  loadingMessage,
  parseClientMessage,
  pongMessage,
  protocolErrorMessage,
  subscribedMessage,
  statusMessage,
  unsubscribedMessage,
} from '../../../services/distribution/protocol.ts';
import { TopicStore } from '../../../services/topics/topic-store.ts';
import { deltaMessage, removalMessage, valueMessage } from '../../../core/wire.ts';

const Ajv = (AjvModule as unknown as { default: typeof AjvModule }).default ?? AjvModule;
const dir = new URL('../../../schemas/protocol/', import.meta.url);
const schemas = Object.fromEntries(
  readdirSync(dir)
    .filter((f) => f.endsWith('.schema.json'))
    .map((f) => [f.replace('.schema.json', ''), JSON.parse(readFileSync(new URL(f, dir), 'utf8'))]),
);
const ajv = new Ajv({ strict: true, allErrors: true });
for (const s of Object.values(schemas)) ajv.addSchema(s);
const validate = (name: string, value: unknown): boolean => ajv.getSchema(schemas[name].$id)!(value) as boolean;

function refused(text: string): { code: string; message: string; id?: string } {
  const r = parseClientMessage(text);
  assert.equal(r.ok, false, `expected ${text.slice(0, 80)} to be refused`);
  return (r as { ok: false; error: { code: string; message: string; id?: string } }).error;
}

describe('parseClientMessage', () => {
  it('accepts the three client messages', () => {
    assert.deepEqual(parseClientMessage('{"type":"subscribe","id":"s1","selector":"orders/**"}'), {
      ok: true,
      message: { type: 'subscribe', id: 's1', selector: 'orders/**' },
    });
    assert.deepEqual(parseClientMessage('{"type":"unsubscribe","id":"s1"}'), { ok: true, message: { type: 'unsubscribe', id: 's1' } });
    assert.deepEqual(parseClientMessage('{"type":"ping"}'), { ok: true, message: { type: 'ping' } });
    assert.deepEqual(parseClientMessage('{"type":"ping","id":"p"}'), { ok: true, message: { type: 'ping', id: 'p' } });
  });

  it('BAD_JSON for text that is not JSON', () => {
    for (const t of ['', '{', 'nope', '{"type":"ping"} x', '\u0000']) assert.equal(refused(t).code, 'BAD_JSON');
  });

  it('INVALID_MESSAGE for JSON that is not an object with a string type', () => {
    for (const t of ['[]', '[{"type":"ping"}]', 'null', '42', '"ping"', '{}', '{"type":3}', '{"type":null}']) {
      const e = refused(t);
      assert.equal(e.code, 'INVALID_MESSAGE', t);
      assert.match(e.message, /type/);
    }
  });

  it('UNKNOWN_TYPE names the known types, and keeps the id', () => {
    const e = refused('{"type":"publish","id":"x1"}');
    assert.equal(e.code, 'UNKNOWN_TYPE');
    assert.match(e.message, /subscribe, unsubscribe, ping/);
    assert.equal(e.id, 'x1');
    assert.equal(refused('{"type":"__proto__"}').code, 'UNKNOWN_TYPE');
    assert.equal(refused('{"type":"toString"}').code, 'UNKNOWN_TYPE');
  });

  it('INVALID_MESSAGE names the field that is wrong', () => {
    const cases: Array<[string, RegExp]> = [
      ['{"type":"subscribe","selector":"a"}', /"id" is required/],
      ['{"type":"subscribe","id":"s"}', /"selector" is required/],
      ['{"type":"subscribe","id":5,"selector":"a"}', /"id" must be a string/],
      ['{"type":"subscribe","id":"","selector":"a"}', /"id" must be a string of 1 to 64/],
      [`{"type":"subscribe","id":"${'x'.repeat(65)}","selector":"a"}`, /"id" must be a string of 1 to 64/],
      ['{"type":"subscribe","id":"s","selector":["a"]}', /"selector" must be a string/],
      ['{"type":"subscribe","id":"s","selector":"a","selecter":"b"}', /"selecter" is not part of a subscribe message/],
      ['{"type":"unsubscribe"}', /"id" is required/],
      ['{"type":"ping","id":7}', /"id" must be a string/],
    ];
    for (const [text, message] of cases) {
      const e = refused(text);
      assert.equal(e.code, 'INVALID_MESSAGE', text);
      assert.match(e.message, message, text);
    }
  });

  it('echoes a usable id with the error, and only a usable one', () => {
    assert.equal(refused('{"type":"subscribe","id":"s9"}').id, 's9');
    assert.equal(refused('{"type":"subscribe","id":5}').id, undefined);
    assert.equal(refused(`{"type":"subscribe","id":"${'x'.repeat(65)}"}`).id, undefined);
  });

  it('INVALID_SELECTOR for selectors over the length limit, with the grammar\'s message', () => {
    const e = refused(JSON.stringify({ type: 'subscribe', id: 's', selector: 'a/'.repeat(1000) + 'b' }));
    assert.equal(e.code, 'INVALID_SELECTOR');
    assert.match(e.message, /1024 characters/);
    assert.equal(e.id, 's');
    assert.equal(refused('{"type":"subscribe","id":"s","selector":""}').code, 'INVALID_SELECTOR');
  });
});

describe('schemas/protocol', () => {
  it('every schema compiles in strict mode', () => {
    for (const name of Object.keys(schemas)) assert.ok(ajv.getSchema(schemas[name].$id), name);
  });

  it('the client union covers exactly the client message types', () => {
    const types = schemas['client-message'].oneOf.map((r: { $ref: string }) => schemas[r.$ref.replace('.schema.json', '')].properties.type.const);
    assert.deepEqual([...types].sort(), [...CLIENT_MESSAGE_TYPES].sort());
  });

  it('the server union covers exactly the server message types', () => {
    const types = schemas['server-message'].oneOf.map((r: { $ref: string }) => schemas[r.$ref.replace('.schema.json', '')].properties.type.const);
    assert.deepEqual([...types].sort(), [...SERVER_MESSAGE_TYPES].sort());
  });

  it('the error codes in the schema are the ones the server uses', () => {
    assert.deepEqual(schemas.error.properties.code.enum, [...ERROR_CODES]);
  });

  it('what the server builds validates against the server schemas', () => {
    const store = new TopicStore();
    const created = store.apply([{ path: 'orders/a%2Fb/1', source: 't', value: { id: 1, items: [1, 2], note: 'x', big: 'b'.repeat(200) } }])!;
    const updated = store.apply([{ path: 'orders/a%2Fb/1', source: 't', value: { id: 1, items: [1, 2], note: 'y', big: 'b'.repeat(200) } }])!;
    const removed = store.apply([{ path: 'orders/a%2Fb/1', source: 't', value: null }])!;
    assert.equal(updated.changes[0].type, 'delta');
    const messages = [
      helloMessage(store.epoch),
      created.changes[0].wire,
      updated.changes[0].wire,
      removed.changes[0].wire,
      valueMessage(created.changes[0].topic.path, created.changes[0].topic.version, created.changes[0].topic.value),
      deltaMessage('orders/1', 3, [{ op: 'replace', path: '/n', value: 1 }], 1),
      removalMessage('orders/1', 4, 'filter'),
      loadingMessage('s"1', 4000, 200000),
      subscribedMessage('s1', 'orders/**', 12),
      unsubscribedMessage('s1'),
      statusMessage('s1', true, ['dbz.public.orders']),
      statusMessage('s"1', false, []),
      statusMessage('s1', true),
      pongMessage(undefined),
      pongMessage('p"1'),
      ...ERROR_CODES.map((code) => protocolErrorMessage({ code, message: `bad "thing"\n`, id: 'r1' })),
      protocolErrorMessage({ code: 'BAD_JSON', message: 'no id' }),
    ];
    for (const m of messages) {
      const parsed = JSON.parse(m);
      assert.ok(validate('server-message', parsed), `${m}: ${ajv.errorsText(ajv.getSchema(schemas['server-message'].$id)!.errors)}`);
    }
    assert.ok(validate('server-frame', JSON.parse(`[${messages.join(',')}]`)));
  });

  it('client messages the server accepts validate against client-message, and refused ones do not', () => {
    for (const t of ['{"type":"subscribe","id":"s1","selector":"orders/**"}', '{"type":"unsubscribe","id":"s1"}', '{"type":"ping"}']) {
      assert.ok(parseClientMessage(t).ok);
      assert.ok(validate('client-message', JSON.parse(t)), t);
    }
    for (const t of ['{"type":"subscribe","id":"s1"}', '{"type":"ping","x":1}', '{"type":"nope"}']) {
      assert.equal(parseClientMessage(t).ok, false);
      assert.equal(validate('client-message', JSON.parse(t)), false, t);
    }
  });

  it('the patch schema refuses operations tidewire never sends', () => {
    assert.ok(validate('patch', [{ op: 'add', path: '/a~1b', value: 1 }, { op: 'remove', path: '/c' }]));
    assert.equal(validate('patch', [{ op: 'move', from: '/a', path: '/b' }]), false);
    assert.equal(validate('patch', [{ op: 'add', path: 'a', value: 1 }]), false);
    assert.equal(validate('patch', [{ op: 'remove', path: '/a~2' }]), false);
    assert.equal(validate('patch', []), false);
  });
});
