/**
 * Tenant isolation and permissions as a property. Random worlds: tenants, topics, roles (with
 * includes, claim patterns and field rules), tokens (hostile claims included), selectors
 * (hostile encodings included), changes, fetches and reloads. Run twice: tens of thousands of
 * worlds on the in-process core (SecurityManager → PermissionSet → FanOut → topic view), and a
 * smaller number end to end through a real DistributionServer, real WebSockets, signed tokens
 * and HTTP GET /topics.
 *
 * After every step, each session's state, built from exactly the messages it was sent and
 * applied with the SDK's strict version rule, must equal an oracle computed independently from
 * the configuration: the topics of its own tenant that its subscriptions match and its grants
 * allow, each projected onto the fields it may see — nothing more, nothing less, never a gap.
 * A fetch (the /topics lookup) must find exactly the readable topics and nothing of another
 * tenant. Seed: TIDEWIRE_FC_SEED (printed); runs: TIDEWIRE_FC_RUNS and TIDEWIRE_FC_WS_RUNS.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import pino from 'pino';
import WebSocket from 'ws';
import { DistributionServer } from '../../services/distribution/index.ts';
import { InProcessHandoff } from '../../services/handoff/handoff.ts';
import { Pipeline } from '../../services/pipeline.ts';
import { applyPatch } from '../../client/json-patch.ts';
import { FanOut, type Subscription } from '../../services/distribution/fan-out.ts';
import { reconcile } from '../../services/distribution/session-access.ts';
import { type RecordingTarget, recordingTarget } from '../support/fake-target.ts';
import type { JsonObject } from '../../core/json.ts';
import type { PermissionSet } from '../../services/security/permission-set.ts';
import { type Principal, SecurityManager } from '../../services/security/security-manager.ts';
import { encodeSegment, parsePath } from '../../core/path.ts';
import { type Selector, matches, parseSelector } from '../../core/selector.ts';
import { TopicStore } from '../../services/topics/topic-store.ts';
import { type TopicUpdate } from '../../core/topic.ts';

const SEED = Number(process.env.TIDEWIRE_FC_SEED ?? 424242);
const RUNS = Number(process.env.TIDEWIRE_FC_RUNS ?? 20_000);
const WS_RUNS = Number(process.env.TIDEWIRE_FC_WS_RUNS ?? 300);
const logger = pino({ level: 'silent' });

// --- the random world --------------------------------------------------------------------------

const TENANTS = ['acme', 'globex', 'a/b', '..', 'ACME'];
const FIELDS = ['id', 'email', 'name', 'status'];
/** Topic path segments, encoded as a mapping would encode them. */
const SECRET = 'isolation-secret-isolation-secret!!';
const SEGS = ['orders', 'prices', '7', '8', encodeSegment('a/b'), encodeSegment('..'), encodeSegment('*'), encodeSegment('')];
/** Claim values, hostile ones included: none of them may widen a grant. */
const CLAIMS = ['7', '8', 7, '*', '**', 'a/b', '..', '%2F', '', null, undefined, [7, 8], ['*'], { id: 7 }];
/** Selectors a client might send: ordinary, wide, and hostile encodings that must be refused or match only literally. */
const HOSTILE_SELECTORS = [
  '**', '*', '*/*', '*/*/*', 'orders/**', 'orders/7/**', 'orders/*/*', 'prices/**', '..', '../orders/**', 'orders/../prices',
  'orders/%2F/**', 'orders%2F7/**', 'orders%2f7', '%2e%2e/**', '%2E%2E/**', 'ｏrders/**', 'orders//7', '/orders', 'orders/',
  '', 'orders/\u0000', 'orders/7/%2A', 'orders/%2A/**', '~0/**', 'orders/~', `${'x/'.repeat(40)}x`, `orders/${'a'.repeat(1100)}`,
  'orders/a%2Fb/**', 'orders/a/b/**', 'orders/**/7', 'ORDERS/**',
];

const segment = fc.constantFrom(...SEGS);
const pathArb = fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => s.join('/'));
const patternArb = fc
  .tuple(fc.array(fc.constantFrom('orders', 'prices', '7', '8', '*', '{claims.cid}', '{claims.org.id}'), { maxLength: 3 }), fc.boolean())
  .filter(([s, d]) => s.length > 0 || d)
  .map(([s, d]) => [...s, ...(d ? ['**'] : [])].join('/'));
const fieldsArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.subarray(FIELDS, { minLength: 1 }).map((exclude) => ({ exclude })) },
  { weight: 1, arbitrary: fc.subarray(FIELDS).map((include) => ({ include })) },
);
const grantArb = fc.record({ pattern: patternArb, fields: fieldsArb });
const roleArb = fc.record({ read: fc.array(grantArb, { maxLength: 3 }), includes: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }) });
const rolesArb = fc.array(roleArb, { minLength: 1, maxLength: 4 });

const sessionArb = fc.record({
  tenant: fc.nat({ max: TENANTS.length - 1 }),
  roles: fc.subarray(['r0', 'r1', 'r2', 'r3', 'ghost'], { minLength: 1 }),
  cid: fc.constantFrom(...CLAIMS),
  org: fc.constantFrom(...CLAIMS),
});
const selectorArb = fc.oneof(fc.constantFrom(...HOSTILE_SELECTORS), patternArb.map((p) => p.replace(/\{claims\.[^}]+\}/g, '7')), pathArb);
const valueArb = fc.record({ id: fc.nat({ max: 3 }), email: fc.constantFrom('a@x', 'b@x'), name: fc.constantFrom('Ann', 'Bob', 'x'.repeat(80)), status: fc.constantFrom('open', 'paid') }, { requiredKeys: ['id'] }).map((v) => ({ ...v }));

const stepArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('subscribe' as const), session: fc.nat({ max: 5 }), selector: selectorArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unsubscribe' as const), session: fc.nat({ max: 5 }), sub: fc.nat({ max: 3 }) }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('batch' as const), updates: fc.array(fc.record({ path: pathArb, value: fc.option(valueArb, { freq: 4 }) }), { minLength: 1, maxLength: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('fetch' as const), session: fc.nat({ max: 5 }), path: fc.oneof(pathArb, fc.constantFrom(...HOSTILE_SELECTORS)) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reload' as const), roles: rolesArb }) },
);

const worldArb = fc.record({
  salt: fc.nat(),
  tenantCount: fc.integer({ min: 2, max: TENANTS.length }),
  roles: rolesArb,
  sessions: fc.array(sessionArb, { minLength: 1, maxLength: 6 }),
  steps: fc.array(stepArb, { minLength: 1, maxLength: 12 }),
});
type World = typeof worldArb extends fc.Arbitrary<infer W> ? W : never;
type RoleList = World['roles'];

// --- configuration and oracle --------------------------------------------------------------------

function securitySettings(roles: RoleList): Record<string, unknown> {
  return {
    jwt: { algorithms: ['HS256'], secret: SECRET },
    roles: Object.fromEntries(
      roles.map((r, i) => [
        `r${i}`,
        {
          read: r.read.map((g) => (g.fields ? { pattern: g.pattern, fields: g.fields } : g.pattern)),
          // Only earlier roles: no cycles (cycles are refused at load, tested elsewhere).
          include: r.includes.slice(0, i).flatMap((on, j) => (on ? [`r${j}`] : [])),
        },
      ]),
    ),
  };
}

function tenantOf(path: string, world: Pick<World, 'salt' | 'tenantCount'>): string {
  let h = world.salt;
  for (let i = 0; i < path.length; i++) h = (h * 31 + path.charCodeAt(i)) >>> 0;
  return TENANTS[h % world.tenantCount];
}

function claimsOf(s: World['sessions'][number]): Record<string, unknown> {
  const claims: Record<string, unknown> = { sub: `user-${s.tenant}-${s.roles.join('+')}` };
  if (s.cid !== undefined) claims.cid = s.cid;
  if (s.org !== undefined) claims.org = { id: s.org };
  return claims;
}

/** The oracle: which fields a session may see at a path (null: none), from the configuration alone. */
function oracleFields(roles: RoleList, s: World['sessions'][number], path: string): Set<string> | null {
  const granted = new Set<number>();
  const add = (i: number): void => {
    if (granted.has(i) || i >= roles.length) return;
    granted.add(i);
    roles[i].includes.slice(0, i).forEach((on, j) => on && add(j));
  };
  for (const r of s.roles) if (r !== 'ghost') add(Number(r.slice(1)));
  const claims = claimsOf(s);
  let visible: Set<string> | null = null;
  for (const i of granted) {
    for (const g of roles[i].read) {
      if (!grantTexts(g.pattern, claims).some((t) => matches(parsed(t), path))) continue;
      visible ??= new Set();
      for (const f of FIELDS) if (!g.fields || ('include' in g.fields ? g.fields.include.includes(f) : !g.fields.exclude.includes(f))) visible.add(f);
    }
  }
  return visible;
}

const parsedCache = new Map<string, Selector>();
function parsed(text: string): Selector {
  let s = parsedCache.get(text);
  if (!s) parsedCache.set(text, (s = parseSelector(text)));
  return s;
}

function grantTexts(pattern: string, claims: Record<string, unknown>): string[] {
  let out = [''];
  for (const seg of pattern.split('/')) {
    const m = /^\{claims\.(.+)\}$/.exec(seg);
    let options: string[];
    if (!m) options = [seg];
    else {
      const v = m[1] === 'org.id' ? (claims.org as { id?: unknown } | undefined)?.id : claims[m[1]];
      const list = Array.isArray(v) ? v : [v];
      if (list.length === 0 || list.some((x) => !(typeof x === 'string' || typeof x === 'number'))) return [];
      options = list.map((x) => encodeSegment(x));
    }
    out = out.flatMap((p) => options.map((o) => (p ? `${p}/${o}` : o)));
  }
  return out;
}

function project(value: JsonObject, visible: Set<string>): JsonObject {
  return Object.fromEntries(Object.entries(value).filter(([k]) => visible.has(k)));
}

/** A client's view, built from messages with the SDK's rules (delta only onto version - 1). */
class Held {
  readonly topics = new Map<string, { version: number; value: JsonObject }>();
  apply(m: Record<string, any>): void {
    if (m.type === 'value') this.topics.set(m.path!, { version: m.version!, value: m.value! });
    else if (m.type === 'removal') this.topics.delete(m.path!);
    else if (m.type === 'delta') {
      const h = this.topics.get(m.path!);
      assert.ok(h && h.version === m.version! - 1, `delta ${m.path}@${m.version} onto ${h?.version}: a gap`);
      this.topics.set(m.path!, { version: m.version!, value: applyPatch(h.value, m.patch!) as JsonObject });
    }
  }
  /** As the SDK does on unsubscribe: forget topics no remaining subscription matches. */
  retain(selectors: Selector[]): void {
    for (const p of [...this.topics.keys()]) if (!selectors.some((s) => matches(s, p))) this.topics.delete(p);
  }
}

// --- the in-process run ----------------------------------------------------------------------------

/** A recorded fan-out target with what the oracle needs to check it. */
interface FakeSession extends RecordingTarget {
  scope: string;
  permissions: PermissionSet;
  principal: Principal;
  spec: World['sessions'][number];
  subs: Subscription[];
  read: number;
  held: Held;
}

function runWorld(world: World): void {
  const security = SecurityManager.fromConfig(securitySettings(world.roles), { logger, env: {} });
  let roles = world.roles;
  const store = new TopicStore({ epoch: 'isolation' });
  const fan = new FanOut();
  const sessions: FakeSession[] = world.sessions.map((spec) => {
    const tenant = TENANTS[spec.tenant % world.tenantCount];
    const principal: Principal = { subject: String(claimsOf(spec).sub), tenant, roles: [...spec.roles].sort(), claims: claimsOf(spec), expiresAt: null, anonymous: false };
    const permissions = security.acquire(principal);
    const s: FakeSession = Object.assign(recordingTarget({ permissions }), { scope: tenant, permissions, principal, spec, subs: [], read: 0, held: new Held() });
    return s;
  });
  let nextSub = 0;

  const check = (): void => {
    for (const s of sessions) {
      for (; s.read < s.got.length; s.read++) {
        const m = JSON.parse(s.got[s.read]);
        if (m.path !== undefined) assert.equal(tenantOf(m.path, world), s.scope, `${s.scope} was sent ${m.path} of ${tenantOf(m.path, world)}`);
        s.held.apply(m);
      }
      const expected = new Map<string, JsonObject>();
      for (const t of store.all()) {
        if (t.tenant !== s.scope || !s.subs.some((sub) => matches(sub.selector, t.path))) continue;
        const visible = oracleFields(roles, s.spec, t.path);
        if (visible) expected.set(t.path, project(t.value, visible));
      }
      const got = new Map([...s.held.topics].map(([p, h]) => [p, h.value]));
      assert.deepEqual(got, expected, `session of ${s.scope} (${s.spec.roles}) holds other than it may read`);
    }
  };

  for (const step of world.steps) {
    switch (step.kind) {
      case 'subscribe': {
        const s = sessions[step.session % sessions.length];
        let selector: Selector;
        try {
          selector = parseSelector(step.selector);
        } catch {
          break; // INVALID_SELECTOR: nothing is subscribed, nothing is learnt
        }
        const sub: Subscription = { id: String(nextSub++), selector, target: s };
        s.subs.push(sub);
        fan.add(sub);
        s.permissions.forEachReadable(store, selector, (_t, wire) => s.got.push(wire));
        break;
      }
      case 'unsubscribe': {
        const s = sessions[step.session % sessions.length];
        if (s.subs.length === 0) break;
        check(); // everything sent so far is applied before the subscription goes
        const [sub] = s.subs.splice(step.sub % s.subs.length, 1);
        fan.remove(sub);
        s.held.retain(s.subs.map((x) => x.selector));
        break;
      }
      case 'batch': {
        const updates: TopicUpdate[] = step.updates.map((u) => ({ path: u.path, source: 'src', tenant: tenantOf(u.path, world), value: u.value }));
        const batch = store.apply(updates);
        if (batch) fan.deliver(batch);
        break;
      }
      case 'fetch': {
        const s = sessions[step.session % sessions.length];
        let ok = true;
        try {
          parsePath(step.path);
        } catch {
          ok = false; // 400 for a malformed path, whatever exists
        }
        if (!ok) break;
        const t = store.get(step.path);
        const wire = t ? s.permissions.valueWire(t) : null;
        const visible = t && t.tenant === s.scope ? oracleFields(roles, s.spec, t.path) : null;
        if (!visible) assert.equal(wire, null, `fetch ${step.path} must answer like a missing topic`);
        else assert.deepEqual(JSON.parse(wire!).value, project(t!.value, visible));
        break;
      }
      case 'reload': {
        security.reload(securitySettings(step.roles));
        roles = step.roles;
        for (const s of sessions) {
          const before = s.permissions;
          const after = security.acquire(s.principal);
          security.release(before);
          s.permissions = after;
          for (const sub of s.subs) {
            fan.remove(sub);
            fan.add(sub);
          }
          if (before !== after) reconcile(store, s.subs.map((x) => x.selector), before, after, (w) => s.got.push(w));
        }
        break;
      }
    }
    check();
  }
}

describe('tenant isolation and permissions (property, in-process core)', () => {
  it(`no session ever holds or fetches a topic of another tenant or beyond its permissions (${RUNS} worlds)`, (t) => {
    t.diagnostic(`fast-check seed ${SEED} (override with TIDEWIRE_FC_SEED), ${RUNS} runs (TIDEWIRE_FC_RUNS)`);
    console.log(`# security-isolation: seed ${SEED}, runs ${RUNS}`);
    fc.assert(fc.property(worldArb, runWorld), { seed: SEED, numRuns: RUNS, includeErrorInReport: true });
  });
});

// --- the same worlds through a real server ------------------------------------------------------

class WsClient {
  readonly held = new Held();
  readonly replies: Array<Record<string, unknown>> = [];
  private waiters: Array<() => void> = [];
  private n = 0;

  constructor(
    readonly ws: WebSocket,
    readonly spec: World['sessions'][number],
    readonly tenant: string,
    readonly token: string,
  ) {
    ws.on('message', (data) => {
      for (const m of JSON.parse(String(data)) as Array<Record<string, any>>) {
        if (m.path !== undefined) assert.equal(tenantOf(m.path, worldOf.get(this)!), tenant, `${tenant} was sent ${m.path}`);
        if (m.type === 'value' || m.type === 'delta' || m.type === 'removal') this.held.apply(m);
        else this.replies.push(m);
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  async reply(pred: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    for (;;) {
      const i = this.replies.findIndex(pred);
      if (i >= 0) return this.replies.splice(i, 1)[0];
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no reply; have ${JSON.stringify(this.replies)}`)), 5000);
        this.waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
  }

  /** Everything the server queued before this point has been applied. */
  async settle(): Promise<void> {
    const id = `p${++this.n}`;
    this.ws.send(JSON.stringify({ type: 'ping', id }));
    await this.reply((m) => m.type === 'pong' && m.id === id);
  }
}
const worldOf = new WeakMap<WsClient, World>();

function fetchTopic(port: number, path: string, token: string): Promise<{ status: number; body: any } | null> {
  return new Promise((resolve, reject) => {
    let req;
    try {
      req = request({ host: '127.0.0.1', port, path: `/topics/${path}`, headers: { authorization: `Bearer ${token}` } }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(body) }));
      });
    } catch {
      resolve(null); // a path Node will not put on the wire (control or non-Latin-1 characters)
      return;
    }
    req.on('error', reject);
    req.end();
  });
}

async function runWorldWs(world: World): Promise<void> {
  const store = new TopicStore({ epoch: 'isolation-ws' });
  const handoff = new InProcessHandoff(store);
  const pipeline = new Pipeline(store, handoff);
  const security = SecurityManager.fromConfig(securitySettings(world.roles), { logger, env: {} });
  let roles = world.roles;
  const server = new DistributionServer(handoff, {
    host: '127.0.0.1', port: 0, maxPayloadBytes: 4096, sendQueueBytes: 8 << 20, flushIntervalMs: 0, maxSubscriptionsPerSession: 100, maxMessagesPerSecond: 10_000,
  }, { logger, security, heartbeatIntervalMs: 0 });
  const { port } = await server.listen();
  try {
    const clients = await Promise.all(
      world.sessions.map(async (spec) => {
        const tenant = TENANTS[spec.tenant % world.tenantCount];
        const token = await new SignJWT({ ...claimsOf(spec), tenant, roles: spec.roles }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('10m').sign(new TextEncoder().encode(SECRET));
        const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?access_token=${token}`);
        const c = new WsClient(ws, spec, tenant, token);
        worldOf.set(c, world);
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', reject);
        });
        return c;
      }),
    );
    const subs = new Map<WsClient, Array<{ id: string; selector: Selector }>>(clients.map((c) => [c, []]));
    let nextSub = 0;
    const check = async (): Promise<void> => {
      for (const c of clients) {
        await c.settle();
        const expected = new Map<string, JsonObject>();
        for (const t of store.all()) {
          if (t.tenant !== c.tenant || !subs.get(c)!.some((s) => matches(s.selector, t.path))) continue;
          const visible = oracleFields(roles, c.spec, t.path);
          if (visible) expected.set(t.path, project(t.value, visible));
        }
        assert.deepEqual(new Map([...c.held.topics].map(([p, h]) => [p, h.value])), expected, `a ${c.tenant} client (${c.spec.roles}) holds other than it may read`);
      }
    };
    for (const step of world.steps) {
      switch (step.kind) {
        case 'subscribe': {
          const c = clients[step.session % clients.length];
          const id = `s${nextSub++}`;
          c.ws.send(JSON.stringify({ type: 'subscribe', id, selector: step.selector }));
          const r = await c.reply((m) => m.id === id);
          let selector: Selector | null = null;
          try {
            selector = parseSelector(step.selector);
          } catch {
            // refused below
          }
          if (!selector) {
            assert.equal(r.code, 'INVALID_SELECTOR');
            break;
          }
          assert.equal(r.type, 'subscribed');
          subs.get(c)!.push({ id, selector });
          break;
        }
        case 'unsubscribe': {
          const c = clients[step.session % clients.length];
          const list = subs.get(c)!;
          if (list.length === 0) break;
          await check();
          const [sub] = list.splice(step.sub % list.length, 1);
          c.ws.send(JSON.stringify({ type: 'unsubscribe', id: sub.id }));
          await c.reply((m) => m.type === 'unsubscribed' && m.id === sub.id);
          c.held.retain(list.map((s) => s.selector));
          break;
        }
        case 'batch':
          await pipeline.apply(step.updates.map((u) => ({ path: u.path, source: 'src', tenant: tenantOf(u.path, world), value: u.value })));
          break;
        case 'fetch': {
          const c = clients[step.session % clients.length];
          const r = await fetchTopic(port, step.path, c.token);
          if (!r) break;
          let valid = true;
          try {
            parsePath(step.path);
          } catch {
            valid = false;
          }
          const t = valid ? store.get(step.path) : undefined;
          const visible = t && t.tenant === c.tenant ? oracleFields(roles, c.spec, t.path) : null;
          if (!valid) assert.equal(r.status, 400);
          else if (!visible) assert.deepEqual([r.status, r.body.error.code], [404, 'NOT_FOUND'], `GET /topics/${step.path} by ${c.tenant}`);
          else assert.deepEqual([r.status, r.body.value], [200, project(t!.value, visible)]);
          break;
        }
        case 'reload':
          security.reload(securitySettings(step.roles));
          roles = step.roles;
          break;
      }
      await check();
    }
  } finally {
    await server.close();
  }
}

describe('tenant isolation and permissions (property, real WebSocket server)', () => {
  it(`the same property through DistributionServer, WebSockets, signed tokens and HTTP (${WS_RUNS} worlds)`, async (t) => {
    t.diagnostic(`fast-check seed ${SEED} (override with TIDEWIRE_FC_SEED), ${WS_RUNS} runs (TIDEWIRE_FC_WS_RUNS)`);
    await fc.assert(fc.asyncProperty(worldArb, runWorldWs), { seed: SEED, numRuns: WS_RUNS, includeErrorInReport: true });
  });
});
