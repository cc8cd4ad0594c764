/**
 * An answer larger than a page (issue #12, item 6): the first page at once, the rest in later
 * pages at the value each topic has when its page is written; a topic gone before its page is
 * never sent (resuming: its removal comes in that page); resume deltas and the resume kind span
 * every page.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { answerSubscribe } from '../../../services/distribution/subscription-answer.ts';
import { parseSelector } from '../../../core/selector.ts';
import { TopicStore } from '../../../services/topics/topic-store.ts';
import type { TopicUpdate } from '../../../core/topic.ts';

const row = (id: number, n = 0): TopicUpdate => ({ path: `rows/${id}`, source: 't', value: { id, n, pad: 'p'.repeat(40) } });

function start(store: TopicStore, resume?: { epoch: string; versions: Record<string, number> }) {
  const sent: Array<Record<string, unknown>> = [];
  const sink = { send: (w: string) => sent.push(JSON.parse(w)), sent: () => {}, holds: () => {} };
  const answer = answerSubscribe({ view: store, permissions: null, selector: parseSelector('rows/*'), filter: null, resume, pageChars: 300 }, sink);
  return { answer, sent };
}

describe('paged subscription answers', () => {
  it('pages carry each waiting topic at its value then; one gone meanwhile is not sent', () => {
    const store = new TopicStore();
    store.apply(Array.from({ length: 20 }, (_, i) => row(i)));
    const { answer, sent } = start(store);
    const pages = answer.rest!;
    assert.ok(pages, 'more than one page');
    assert.equal(pages.total, 20);
    const first = sent.length;
    assert.ok(first > 0 && first < 20 && pages.sent === first);
    assert.equal(pages.has('rows/0'), false, 'sent in the first page');
    assert.equal(pages.has('rows/19'), true, 'waits for its page');
    store.apply([row(19, 5)]);
    store.apply([{ path: 'rows/18', source: 't', value: null }]);
    let rounds = 0;
    while (!pages.done) {
      pages.next(store, null, 300);
      rounds++;
    }
    assert.ok(rounds > 1);
    const paths = sent.map((m) => m.path);
    assert.equal(new Set(paths).size, paths.length, 'each topic once');
    assert.equal(paths.includes('rows/18'), false, 'gone before its page');
    assert.deepEqual(sent.find((m) => m.path === 'rows/19'), { type: 'value', path: 'rows/19', version: 2, value: { id: 19, n: 5, pad: 'p'.repeat(40) } });
    assert.equal(pages.topics, 19);
  });

  it('resuming: deltas and removals in later pages, and one resume kind for the whole answer', () => {
    const store = new TopicStore();
    store.apply(Array.from({ length: 20 }, (_, i) => row(i)));
    const versions: Record<string, number> = {};
    for (let i = 0; i < 20; i++) versions[`rows/${i}`] = 1;
    store.apply(Array.from({ length: 20 }, (_, i) => row(i, 1)));
    const { answer, sent } = start(store, { epoch: store.epoch, versions });
    const pages = answer.rest!;
    assert.ok(pages, 'more than one page');
    assert.equal(pages.has('rows/19'), true);
    store.apply([{ path: 'rows/19', source: 't', value: null }]);
    while (!pages.done) pages.next(store, null, 300);
    assert.equal(pages.resumed({ epoch: store.epoch, versions }), 'exact');
    const last = sent.find((m) => m.path === 'rows/18');
    assert.equal(last?.type, 'delta');
    assert.equal(last?.version, 2, 'from the held version 1');
    assert.deepEqual(sent.find((m) => m.path === 'rows/19'), { type: 'removal', path: 'rows/19', version: 2 });
    assert.equal(pages.topics, 19);
  });
});
