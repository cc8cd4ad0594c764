import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { AuditLog, DEFERRED_FLUSH_MS, DEFERRED_MAX } from '../../../services/security/audit.ts';

function audit() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({ write(chunk, _e, cb) { lines.push(JSON.parse(String(chunk))); cb(); } });
  return { log: new AuditLog(pino({ level: 'info' }, sink)), lines };
}

const who = { subject: 's', tenant: 'acme', roles: ['r'] };
const turn = () => new Promise((r) => setImmediate(r));

test('a denial is written on the queue\'s own timer, never in the turn of the answer', async () => {
  const { log, lines } = audit();
  log.topicDenied({ ...who, path: 'orders/globex/1', why: 'another tenant' });
  log.subscription({ ...who, selector: 'orders/8/2', coverage: 'none' });
  await turn();
  await turn();
  assert.equal(lines.length, 0, 'nothing is written in the turns right after the answer');
  await new Promise((r) => setTimeout(r, DEFERRED_FLUSH_MS + 50));
  assert.deepEqual(lines.map((l) => [l.event, l.audit]), [['topic.denied', true], ['subscription.denied', true]]);
  assert.equal(lines[0].path, 'orders/globex/1');
  assert.equal(lines[1].why, 'no read grant matches the selector');
});

test('a full queue is written at once, and flush() writes what waits (a graceful stop)', async () => {
  const { log, lines } = audit();
  for (let i = 0; i < DEFERRED_MAX; i++) log.topicDenied({ ...who, path: `p/${i}`, why: 'no read grant' });
  await turn();
  assert.equal(lines.length, DEFERRED_MAX);
  log.subscription({ ...who, selector: '**', coverage: 'part' });
  log.flush();
  assert.equal(lines.length, DEFERRED_MAX + 1);
  assert.equal(lines.at(-1)!.event, 'subscription.reduced');
  log.flush();
  assert.equal(lines.length, DEFERRED_MAX + 1, 'nothing is written twice');
});
