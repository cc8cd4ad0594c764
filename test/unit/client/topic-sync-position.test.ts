/**
 * The SDK's position (docs/PROTOCOL.md, "Resuming"): it resumes from the last `position` with
 * `{epoch, seq}`, lists only the topics applied after it, keeps held topics across an exact
 * answer, drops those not sent after a whole (`partial`) one, and never resumes from a position
 * of another epoch.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClientMessage, ServerMessage, SubscribeMessage } from '../../../core/messages.ts';
import { parseSelector } from '../../../core/selector.ts';
import type { SubscriptionCore } from '../../../client/subscription.ts';
import { TopicSync } from '../../../client/topic-sync.ts';

function setup() {
  const sent: ClientMessage[] = [];
  const sync = new TopicSync({ send: (m) => sent.push(m), error: (e) => assert.fail(e) });
  const events: string[] = [];
  const core: SubscriptionCore = {
    selector: parseSelector('t/*'),
    handlers: { onValue: (p) => events.push(`value ${p}`), onRemoval: (p) => events.push(`removal ${p}`), onResume: (i) => events.push(`resumed ${i.resumed}`) },
    state: 'pending', wireId: null, paths: new Set(), stale: null, retry: null, resuming: null,
  };
  sync.add(core);
  sync.onOpen({ epoch: 'e' });
  const last = () => sent.filter((m): m is SubscribeMessage => m.type === 'subscribe').at(-1)!;
  const frame = (...ms: object[]) => sync.handleFrame(ms as ServerMessage[]);
  frame(
    { type: 'value', path: 't/1', version: 1, value: { n: 1 } },
    { type: 'value', path: 't/2', version: 1, value: { n: 2 } },
    { type: 'subscribed', id: last().id, selector: 't/*', topics: 2 },
    { type: 'position', seq: 7 },
  );
  events.length = 0;
  return { sync, core, events, last, frame };
}

describe('TopicSync: resuming from a position', () => {
  it('asks for positions and resumes with {epoch, seq}, listing only what moved after it', () => {
    const { sync, last, frame } = setup();
    assert.equal(last().positions, true);
    frame({ type: 'delta', path: 't/2', version: 2, patch: [{ op: 'replace', path: '/n', value: 3 }] }); // no position after it
    sync.onClose();
    sync.onOpen({ epoch: 'e' });
    assert.deepEqual(last().resume, { epoch: 'e', seq: 7, versions: { 't/2': 2 } });
  });

  it('an exact answer keeps the held topics not sent; a whole (partial) one drops them', () => {
    for (const [resumed, expected] of [['exact', ['value t/3', 'resumed exact']], ['partial', ['value t/3', 'removal t/2', 'resumed partial']]] as const) {
      const { sync, core, events, last, frame } = setup();
      sync.onClose();
      sync.onOpen({ epoch: 'e' });
      const values = resumed === 'exact' ? [] : [{ type: 'value', path: 't/1', version: 1, value: { n: 1 } }];
      frame(...values, { type: 'value', path: 't/3', version: 1, value: { n: 3 } }, { type: 'subscribed', id: last().id, selector: 't/*', topics: 3, resumed });
      assert.deepEqual(events, expected);
      assert.deepEqual([...core.paths].sort(), resumed === 'exact' ? ['t/1', 't/2', 't/3'] : ['t/1', 't/3']);
    }
  });

  it('another epoch: no position is used', () => {
    const { sync, last } = setup();
    sync.onClose();
    sync.onOpen({ epoch: 'other' });
    assert.equal(last().resume, undefined);
  });
});
