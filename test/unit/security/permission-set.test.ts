/**
 * Permissions on the fan-out path: which changes a group of sessions gets, projected how, and
 * that a client applying them with the protocol's strict version rule always ends up holding
 * exactly the projection of the current value.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import { applyPatch } from '../../../client/json-patch.ts';
import { type DeliveryTarget, FanOut, type Subscription } from '../../../services/distribution/fan-out.ts';
import type { JsonObject } from '../../../core/json.ts';
import { Projection, topField } from '../../../services/security/field-projection.ts';
import type { PermissionSet } from '../../../services/security/permission-set.ts';
import { type Principal, SecurityManager } from '../../../services/security/security-manager.ts';
import { parseSelector } from '../../../core/selector.ts';
import { TopicStore } from '../../../services/topics/topic-store.ts';
import { type TopicUpdate } from '../../../core/topic.ts';
import { recordingTarget } from '../../support/fake-target.ts';

const seed = Number(process.env.TIDEWIRE_FC_SEED ?? 20250611);
const logger = pino({ level: 'silent' });

const security = SecurityManager.fromConfig(
  {
    jwt: { algorithms: ['HS256'], secret: 'x'.repeat(32) },
    roles: {
      trader: { read: ['orderbook/**', 'orders/{claims.customer_id}/**'] },
      regulator: { read: ['orders/**'] },
      analytics: { read: [{ pattern: 'orders/**', fields: { exclude: ['customer_name', 'email'] } }] },
      narrow: { read: [{ pattern: 'orders/**', fields: { include: ['id', 'status'] } }] },
    },
  },
  { logger, env: {} },
);

function principal(roles: string[], claims: Record<string, unknown> = {}, tenant = 'acme', subject = 'u'): Principal {
  return { subject, tenant, roles, claims: { sub: subject, ...claims }, expiresAt: null, anonymous: false };
}

/** A stand-in session that records what fan-out queues for it. */
function session(permissions: PermissionSet) {
  return recordingTarget({ permissions });
}

/** A store and fan-out with an analytics and a regulator session, both subscribed to `orders/**`. */
function analyticsAndRegulator() {
  const store = new TopicStore();
  const fan = new FanOut();
  const a = session(security.permissionsFor(principal(['analytics'])));
  const r = session(security.permissionsFor(principal(['regulator'])));
  subscribe(fan, a, 'orders/**');
  subscribe(fan, r, 'orders/**');
  return { store, fan, a, r };
}

function subscribe(fan: FanOut, s: DeliveryTarget, selector: string): Subscription {
  const sub: Subscription = { id: selector, selector: parseSelector(selector), target: s };
  fan.add(sub);
  return sub;
}

describe('Projection', () => {
  it('topField reads the first pointer token, unescaped', () => {
    assert.equal(topField('/email'), 'email');
    assert.equal(topField('/customer/name'), 'customer');
    assert.equal(topField('/a~1b/c'), 'a/b');
    assert.equal(topField('/a~0b'), 'a~b');
    assert.equal(topField(''), null);
  });

  it('union: include ∪ include, exclude ∩ exclude, include with exclude, all wins; interned', () => {
    const inc = (...f: string[]) => Projection.of({ include: f });
    const exc = (...f: string[]) => Projection.of({ exclude: f });
    assert.equal(inc('a', 'b').union(inc('b', 'c')), inc('a', 'b', 'c'));
    assert.equal(exc('a', 'b').union(exc('b', 'c')), exc('b'));
    assert.equal(inc('a').union(exc('a', 'b')), exc('b'));
    assert.equal(exc('a').union(Projection.ALL), Projection.ALL);
    assert.equal(exc(), Projection.ALL);
    assert.equal(inc('x', 'y'), inc('y', 'x'), 'equal rules are one object');
  });

  it('drops operations on hidden fields, including nested paths under them', () => {
    const p = Projection.of({ exclude: ['email', 'customer'] });
    const ops = [
      { op: 'replace' as const, path: '/email', value: 'x' },
      { op: 'replace' as const, path: '/customer/name', value: 'x' },
      { op: 'remove' as const, path: '/customer' },
      { op: 'replace' as const, path: '/status', value: 'paid' },
      { op: 'add' as const, path: '/emails', value: 1 },
    ];
    assert.deepEqual(p.patch(ops), [ops[3], ops[4]]);
    assert.deepEqual(p.patch([ops[0], ops[1]]), []);
    assert.equal(p.patch([{ op: 'replace', path: '', value: {} }]), null, 'a root operation needs a value');
    assert.deepEqual(p.value({ id: 1, email: 'e', customer: { name: 'n' }, status: 's' }), { id: 1, status: 's' });
  });
});

describe('PermissionSet', () => {
  it('is shared by sessions with the same tenant and effective grants, and differs otherwise', () => {
    const a = security.acquire(principal(['trader'], { customer_id: 7 }));
    const b = security.acquire(principal(['trader'], { customer_id: 7 }, 'acme', 'other-user'));
    const c = security.acquire(principal(['trader'], { customer_id: 8 }));
    const d = security.acquire(principal(['trader'], { customer_id: 7 }, 'globex'));
    assert.equal(a, b);
    assert.notEqual(a, c);
    assert.notEqual(a, d);
    for (const s of [a, b, c, d]) security.release(s);
  });

  it('access: grants by path, claims substituted, nothing of another tenant', () => {
    const p = security.permissionsFor(principal(['trader'], { customer_id: 7 }));
    assert.equal(p.access(['orders', '7', '1']), Projection.ALL);
    assert.equal(p.access(['orders', '8', '1']), null);
    assert.equal(p.access(['orderbook', 'x']), Projection.ALL);
    assert.equal(p.access(['orders', '7']), null, 'orders/7/** is below orders/7');
    const store = new TopicStore();
    store.apply([{ path: 'orders/7/1', source: 's', value: { id: 1 }, tenant: 'globex' }]);
    assert.equal(p.accessTopic(store.get('orders/7/1')!), null);
    assert.equal(p.valueWire(store.get('orders/7/1')!), null);
  });

  it('subscribing walks only what the grants reach and reports coverage', () => {
    const store = new TopicStore();
    store.apply([
      { path: 'orders/7/1', source: 's', value: { id: 1 }, tenant: 'acme' },
      { path: 'orders/8/2', source: 's', value: { id: 2 }, tenant: 'acme' },
      { path: 'orders/7/3', source: 's', value: { id: 3 }, tenant: 'globex' },
    ]);
    const p = security.permissionsFor(principal(['trader'], { customer_id: 7 }));
    const seen: string[] = [];
    p.forEachReadable(store, parseSelector('**'), (t) => seen.push(t.path));
    assert.deepEqual(seen, ['orders/7/1']);
    assert.equal(p.coverage(parseSelector('orders/7/**')), 'all');
    assert.equal(p.coverage(parseSelector('orders/**')), 'part');
    assert.equal(p.coverage(parseSelector('customers/**')), 'none');
  });

  it('fan-out: each group gets only what it may read, projected once per group', () => {
    const store = new TopicStore();
    const fan = new FanOut();
    const trader = session(security.permissionsFor(principal(['trader'], { customer_id: 7 })));
    const analytics1 = session(security.permissionsFor(principal(['analytics'])));
    const analytics2 = session(security.permissionsFor(principal(['analytics'], {}, 'acme', 'a2')));
    const otherTenant = session(security.permissionsFor(principal(['regulator'], {}, 'globex')));
    for (const s of [trader, analytics1, analytics2, otherTenant]) subscribe(fan, s, '**');
    const row = { id: 1, customer_id: 7, customer_name: 'Ann', email: 'a@x', item: 'pen', qty: 1, price: 2, status: 'open' };
    const upd = (value: JsonObject): TopicUpdate => ({ path: 'orders/7/1', source: 's', tenant: 'acme', value });
    fan.deliver(store.apply([upd(row)])!);
    fan.deliver(store.apply([upd({ ...row, email: 'b@x' })])!); // hidden from analytics
    fan.deliver(store.apply([upd({ ...row, email: 'b@x', status: 'paid' })])!);
    fan.deliver(store.apply([{ path: 'orders/8/2', source: 's', tenant: 'acme', value: row }])!);
    assert.equal(trader.got.length, 3, 'trader: orders/7 only, every change');
    assert.deepEqual(analytics1.got, analytics2.got);
    assert.equal(analytics1.got[0], analytics2.got[0], 'the same string: serialized once per group');
    const msgs = analytics1.got.map((w) => JSON.parse(w));
    assert.deepEqual(msgs.map((m) => [m.type, m.path, m.version]), [['value', 'orders/7/1', 1], ['value', 'orders/7/1', 3], ['value', 'orders/8/2', 1]]);
    for (const m of msgs) assert.ok(!('customer_name' in m.value) && !('email' in m.value));
    assert.deepEqual(otherTenant.got, [], 'another tenant gets nothing');
  });

  it('fan-out: a visible delta after a visible change is sent as a projected delta', () => {
    const store = new TopicStore();
    const fan = new FanOut();
    const a = session(security.permissionsFor(principal(['analytics'])));
    subscribe(fan, a, 'orders/**');
    const row = { id: 1, customer_name: 'Ann', email: 'a@x', note: 'n'.repeat(100), status: 'open' };
    const upd = (value: JsonObject): TopicUpdate => ({ path: 'orders/7/1', source: 's', tenant: 'acme', value });
    fan.deliver(store.apply([upd(row)])!);
    fan.deliver(store.apply([upd({ ...row, status: 'paid', email: 'z@x' })])!);
    const m = JSON.parse(a.got[1]);
    assert.equal(m.type, 'delta');
    assert.deepEqual(m.patch, [{ op: 'replace', path: '/status', value: 'paid' }]);
  });

  it('fan-out: a delta of visible fields only is the change itself, the same string for every role', () => {
    const { store, fan, a, r } = analyticsAndRegulator();
    const row = { id: 1, customer_name: 'Ann', email: 'a@x', note: 'n'.repeat(100), status: 'open' };
    const upd = (value: JsonObject): TopicUpdate => ({ path: 'orders/7/1', source: 's', tenant: 'acme', value });
    fan.deliver(store.apply([upd(row)])!);
    const batch = store.apply([upd({ ...row, status: 'paid' })])!;
    fan.deliver(batch);
    assert.equal(a.got[1], batch.changes[0].wire, 'analytics gets the change as the store serialized it');
    assert.equal(a.got[1], r.got[1]);
    assert.notEqual(a.got[0], r.got[0], 'while its values stay projected');
  });

  it('fan-out: a full-value change that touched only hidden fields sends that group nothing', () => {
    const { store, fan, a, r } = analyticsAndRegulator();
    // Replacing the whole (long) customer_name costs more as a patch than the small value: a `value` change.
    const row = { id: 1, customer_name: 'A'.repeat(200), status: 'open' };
    const upd = (value: JsonObject): TopicUpdate => ({ path: 'orders/7/1', source: 's', tenant: 'acme', value });
    fan.deliver(store.apply([upd(row)])!);
    const hidden = store.apply([upd({ ...row, customer_name: 'B'.repeat(200) })])!;
    assert.equal(hidden.changes[0].type, 'value', 'the store sent the whole value');
    fan.deliver(hidden);
    assert.equal(r.got.length, 2, 'the regulator sees the change');
    assert.equal(a.got.length, 1, 'analytics: only the first value, nothing for a change it cannot see');
    // The next visible change: analytics held version 1, so it needs the value (version 3), not a delta from 2.
    fan.deliver(store.apply([upd({ ...row, customer_name: 'B'.repeat(200), status: 'paid' })])!);
    const m = JSON.parse(a.got[1]);
    assert.deepEqual([m.type, m.version, m.value], ['value', 3, { id: 1, status: 'paid' }]);
  });
});

describe('projected streams keep the strict version rule', () => {
  // Random histories of one topic with transactions of 1-3 updates, clients joining at random
  // points: each client applies what it gets exactly as the SDK does (a delta only onto
  // version - 1) and must always hold the projection of the current value.
  const fields = ['id', 'status', 'email', 'customer_name', 'qty'];
  const rowArb = fc.record(Object.fromEntries(fields.map((f) => [f, fc.constantFrom('a', 'b', 'c'.repeat(60))])) as Record<string, fc.Arbitrary<string>>).map((r) => ({ ...r }));
  const step = fc.oneof(
    { weight: 6, arbitrary: fc.array(rowArb, { minLength: 1, maxLength: 3 }).map((rows) => ({ kind: 'tx' as const, rows })) },
    { weight: 1, arbitrary: fc.constant({ kind: 'delete' as const }) },
    { weight: 2, arbitrary: fc.constantFrom('analytics', 'narrow', 'regulator').map((role) => ({ kind: 'join' as const, role })) },
  );

  it('for any history, every client converges on the projection of each transaction', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 30 }), (steps) => {
        const store = new TopicStore();
        const fan = new FanOut();
        const clients: Array<{ s: ReturnType<typeof session>; p: PermissionSet; held: Map<string, { v: number; value: JsonObject }>; read: number }> = [];
        const path = 'orders/7/1';
        const sync = () => {
          for (const c of clients) {
            for (; c.read < c.s.got.length; c.read++) {
              const m = JSON.parse(c.s.got[c.read]);
              if (m.type === 'value') c.held.set(m.path, { v: m.version, value: m.value });
              else if (m.type === 'removal') c.held.delete(m.path);
              else {
                const h = c.held.get(m.path);
                assert.ok(h && h.v === m.version - 1, `delta v${m.version} onto ${h?.v}: a client would have to re-subscribe`);
                c.held.set(m.path, { v: m.version, value: applyPatch(h.value, m.patch) as JsonObject });
              }
            }
            const t = store.get(path);
            const want = t ? c.p.access(path.split('/'))!.value(t.value) : undefined;
            assert.deepEqual(c.held.get(path)?.value, want);
          }
        };
        for (const st of steps) {
          if (st.kind === 'join') {
            const p = security.permissionsFor(principal([st.role]));
            const s = session(p);
            subscribe(fan, s, 'orders/**');
            p.forEachReadable(store, parseSelector('orders/**'), (_t, wire) => s.got.push(wire));
            clients.push({ s, p, held: new Map(), read: 0 });
          } else {
            const updates: TopicUpdate[] =
              st.kind === 'delete' ? [{ path, source: 's', tenant: 'acme', value: null }] : st.rows.map((r) => ({ path, source: 's', tenant: 'acme', value: r }));
            const batch = store.apply(updates);
            if (batch) fan.deliver(batch);
          }
          sync();
        }
      }),
      { seed, numRuns: 2000 },
    );
  });
});
