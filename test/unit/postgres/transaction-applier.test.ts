// The transaction applier fed decoded pgoutput messages directly: one sink call per transaction,
// no duplicates across a reconnect (whole or half-applied transactions), acknowledgeable
// position only after the sink resolved, and the row-mapping rules (key change, TOAST, truncate).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { IngestSink, SourcePosition } from '../../../core/ingest.ts';
import type { TopicUpdate } from '../../../core/topic.ts';
import type { TableInfo } from '../../../connectors/postgres/catalog.ts';
import { PostgresConnectorError } from '../../../connectors/postgres/errors.ts';
import { formatLsn, parseLsn } from '../../../connectors/postgres/lsn.ts';
import type { PgoutputMessage } from '../../../connectors/postgres/pgoutput-reader.ts';
import { checkTable } from '../../../connectors/postgres/preflight.ts';
import { TableMapper } from '../../../connectors/postgres/table-mapper.ts';
import { TransactionApplier } from '../../../connectors/postgres/transaction-applier.ts';
import { TypeRegistry } from '../../../connectors/postgres/type-registry.ts';
import type { TableMapping } from '../../../services/config/config.ts';

const log = pino({ level: 'silent' });
const server = { database: 'db', role: 'r' };

const ordersInfo: TableInfo = {
  schema: 'public',
  name: 'orders',
  oid: 1,
  relkind: 'r',
  replicaIdentity: 'default',
  columns: [
    { name: 'id', typeOid: 23, generated: false },
    { name: 'customer', typeOid: 25, generated: false },
    { name: 'big', typeOid: 25, generated: false },
    { name: 'n', typeOid: 20, generated: false },
  ],
  primaryKey: ['id'],
  identityIndex: null,
  rowEstimate: 0,
  canSelect: true,
};

const RELATION_OID = 5001;
const relation = {
  tag: 'relation',
  relationOid: RELATION_OID,
  schema: 'public',
  name: 'orders',
  replicaIdentity: 'default',
  columns: ordersInfo.columns.map((c) => ({ name: c.name, flags: c.name === 'id' ? 1 : 0, typeOid: c.typeOid, typeMod: -1, typeSchema: null, typeName: null, parser: (x: unknown) => x })),
  keyColumns: ['id'],
} as const;

type Call = { kind: 'apply'; updates: TopicUpdate[]; position?: SourcePosition } | { kind: 'remove'; source: string };

class FakeSink implements IngestSink {
  calls: Call[] = [];
  /** When set, apply() waits for it. */
  gate: Promise<void> | null = null;
  async apply(updates: readonly TopicUpdate[], position?: SourcePosition): Promise<void> {
    this.calls.push({ kind: 'apply', updates: [...updates], position });
    if (this.gate) await this.gate;
  }
  async removeSource(source: string): Promise<void> {
    this.calls.push({ kind: 'remove', source });
  }
  get applied(): TopicUpdate[] {
    return this.calls.flatMap((c) => (c.kind === 'apply' ? c.updates : []));
  }
}

function setup(mapping: Partial<TableMapping> = {}, options: { chunkUpdates?: number; info?: TableInfo; holds?: Map<string, bigint>; onHoldsPassed?: (lsn: bigint) => void } = {}) {
  const types = new TypeRegistry();
  const spec = checkTable({ table: 'orders', path: 'orders/{id}', ...mapping }, 0, options.info ?? ordersInfo, server);
  const sink = new FakeSink();
  const resolved: number[][] = [];
  const applier = new TransactionApplier({
    sink,
    mappers: [new TableMapper(spec, types, log)],
    types,
    resolveTypes: async (oids) => {
      resolved.push(oids);
    },
    log,
    startLsn: parseLsn('0/100'),
    chunkUpdates: options.chunkUpdates,
    holds: options.holds,
    onHoldsPassed: options.onHoldsPassed,
  });
  const feed = async (...msgs: unknown[]) => {
    for (const m of msgs) await applier.handle(m as PgoutputMessage);
  };
  return { applier, sink, feed, resolved };
}

let nextLsn = 0x1000;
/** BEGIN … COMMIT around `changes`, with increasing LSNs unless given. */
function txn(changes: unknown[], at?: number): unknown[] {
  const commit = at ?? (nextLsn += 0x100);
  return [
    { tag: 'begin', commitLsn: formatLsn(BigInt(commit)), commitTime: 0n, xid: 1 },
    ...changes,
    { tag: 'commit', flags: 0, commitLsn: formatLsn(BigInt(commit)), commitEndLsn: formatLsn(BigInt(commit + 0x28)), commitTime: 0n },
  ];
}
const row = (id: number, extra: Record<string, string | null | undefined> = {}) => ({ id: String(id), customer: 'c', big: 'B', n: '1', ...extra });
const insert = (id: number, extra = {}) => ({ tag: 'insert', relation, new: row(id, extra) });
const update = (id: number, extra = {}, key: number | null = null) => ({ tag: 'update', relation, key: key === null ? null : { id: String(key) }, old: null, new: row(id, extra) });
const del = (id: number) => ({ tag: 'delete', relation, key: { id: String(id) }, old: null });

test('one sink call per transaction; the position advances only after the sink resolved', async () => {
  const { applier, sink, feed } = setup();
  await feed(relation, ...txn([insert(1), insert(2), del(2)], 0x2000));
  assert.equal(sink.calls.length, 1);
  assert.deepEqual(sink.applied, [
    { path: 'orders/1', source: 'postgres:public.orders', value: { id: 1, customer: 'c', big: 'B', n: 1 } },
    { path: 'orders/2', source: 'postgres:public.orders', value: { id: 2, customer: 'c', big: 'B', n: 1 } },
    { path: 'orders/2', source: 'postgres:public.orders', value: null },
  ]);
  assert.equal(applier.durableLsn, 0x2028n);

  let release!: () => void;
  sink.gate = new Promise((r) => (release = r));
  const msgs = txn([insert(3)], 0x3000);
  for (const m of msgs.slice(0, -1)) await applier.handle(m as PgoutputMessage);
  const committing = applier.handle(msgs.at(-1) as PgoutputMessage);
  await new Promise((r) => setImmediate(r));
  assert.equal(applier.durableLsn, 0x2028n, 'not durable while the sink has not resolved');
  release();
  await committing;
  assert.equal(applier.durableLsn, 0x3028n);
  assert.equal(applier.lastAppliedLsn, 0x3028n);
});

test('after a reconnect, transactions already applied are skipped', async () => {
  const { applier, sink, feed } = setup();
  const a = txn([insert(1)], 0x2000);
  const b = txn([insert(2)], 0x2100);
  const c = txn([insert(3)], 0x2200);
  await feed(relation, ...a, ...b);
  applier.beginConnection();
  // Postgres resends from the acknowledged position, which may be older than what we applied.
  await feed(relation, ...a, ...b, ...c);
  assert.deepEqual(sink.applied.map((u) => u.path), ['orders/1', 'orders/2', 'orders/3']);
  assert.equal(applier.transactionsSkipped, 2);
});

test('a transaction cut by a reconnect mid-way starts over from BEGIN', async () => {
  const { applier, sink, feed } = setup();
  const t = txn([insert(1), insert(2)], 0x2000);
  await feed(relation, ...t.slice(0, 2)); // BEGIN, one insert: nothing applied yet
  applier.beginConnection();
  await feed(relation, ...t);
  assert.deepEqual(sink.applied.map((u) => u.path), ['orders/1', 'orders/2']);
  assert.equal(sink.calls.length, 1);
});

test('large transactions go in chunks; a reconnect between chunks does not apply a change twice', async () => {
  const { applier, sink, feed } = setup({}, { chunkUpdates: 3 });
  const changes = [1, 2, 3, 4, 5, 6, 7].map((i) => insert(i));
  const t = txn(changes, 0x2000);
  await feed(relation, ...t.slice(0, 1 + 4)); // BEGIN + 4 inserts: one chunk of 3 applied
  assert.deepEqual(sink.calls.map((c) => (c.kind === 'apply' ? c.updates.length : 0)), [3]);
  assert.equal(applier.durableLsn, 0x100n, 'a chunk is not a durable position');
  applier.keepalive(0x9999n);
  assert.equal(applier.durableLsn, 0x100n, 'nor does a keepalive advance past a half-applied transaction');
  applier.beginConnection();
  await feed(relation, ...t);
  assert.deepEqual(sink.applied.map((u) => u.path), [1, 2, 3, 4, 5, 6, 7].map((i) => `orders/${i}`));
  assert.deepEqual(sink.calls.map((c) => (c.kind === 'apply' ? c.updates.length : 0)), [3, 3, 1]);
  assert.equal(applier.durableLsn, 0x2028n);
});

test('keepalives advance the position only between transactions', async () => {
  const { applier, feed } = setup();
  applier.keepalive(0x500n);
  assert.equal(applier.durableLsn, 0x500n, 'idle: the slot may move on');
  applier.keepalive(0x400n);
  assert.equal(applier.durableLsn, 0x500n, 'never backwards');
  const t = txn([insert(1)], 0x2000);
  await feed(relation, ...t.slice(0, 2));
  applier.keepalive(0x3000n);
  assert.equal(applier.durableLsn, 0x500n, 'not inside a transaction');
  await feed(t.at(-1));
  assert.equal(applier.durableLsn, 0x2028n);
});

test('a key change removes the old topic and upserts the new one in the same call', async () => {
  const { sink, feed } = setup();
  await feed(relation, ...txn([update(10, {}, 1)]));
  assert.equal(sink.calls.length, 1);
  assert.deepEqual(sink.applied.map((u) => [u.path, u.value === null]), [
    ['orders/1', true],
    ['orders/10', false],
  ]);
});

test('paths over non-key columns follow the row when those columns change', async () => {
  const { sink, feed } = setup({ path: 'customers/{customer}/orders/{id}' });
  await feed(relation, ...txn([insert(1, { customer: 'a' })]));
  await feed(...txn([update(1, { customer: 'b' })]));
  await feed(...txn([update(2, { customer: 'b' }, 1)]));
  await feed(...txn([del(2)]));
  assert.deepEqual(sink.applied.map((u) => [u.path, u.value === null]), [
    ['customers/a/orders/1', false],
    ['customers/a/orders/1', true],
    ['customers/b/orders/1', false],
    ['customers/b/orders/1', true],
    ['customers/b/orders/2', false],
    ['customers/b/orders/2', true],
  ]);
});

test('an unchanged TOAST value is not sent: it goes into keep, not into the value', async () => {
  const { sink, feed } = setup();
  await feed(relation, ...txn([update(1, { big: undefined, n: '2' })]));
  assert.deepEqual(sink.applied, [{ path: 'orders/1', source: 'postgres:public.orders', value: { id: 1, customer: 'c', n: 2 }, keep: ['big'] }]);
});

test('include and exclude shape the value; the path still gets its columns', async () => {
  const { sink, feed } = setup({ path: 'c/{customer}/{id}', include: ['n', 'big'], exclude: ['big'] });
  await feed(relation, ...txn([insert(1, { customer: 'x' })]));
  assert.deepEqual(sink.applied, [{ path: 'c/x/1', source: 'postgres:public.orders', value: { n: 1 } }]);
});

test('truncate: earlier changes first, then the source is removed, then later changes', async () => {
  const { sink, feed } = setup({ path: 'c/{customer}/{id}' });
  await feed(relation, ...txn([insert(1), { tag: 'truncate', cascade: false, restartIdentity: false, relations: [relation] }, insert(2)]));
  assert.deepEqual(
    sink.calls.map((c) => (c.kind === 'remove' ? `remove ${c.source}` : c.updates.map((u) => u.path).join(','))),
    ['c/c/1', 'remove postgres:public.orders', 'c/c/2'],
  );
  // The key index was cleared: deleting row 1 (gone with the truncate) emits nothing.
  sink.calls = [];
  await feed(...txn([del(1)]));
  assert.deepEqual(sink.calls, []);
});

test('a Relation message after ALTER TABLE changes the columns of the following rows', async () => {
  const { sink, feed, resolved } = setup();
  await feed(relation, ...txn([insert(1)]));
  const altered = {
    ...relation,
    columns: [...relation.columns.filter((c) => c.name !== 'big'), { name: 'note', flags: 0, typeOid: 25, typeMod: -1, typeSchema: null, typeName: null, parser: (x: unknown) => x }, { name: 'level', flags: 0, typeOid: 91234, typeMod: -1, typeSchema: null, typeName: null, parser: (x: unknown) => x }],
  };
  await feed(altered, ...txn([{ tag: 'insert', relation: altered, new: { id: '2', customer: 'c', n: '5', note: 'hi', level: '3' } }]));
  assert.deepEqual(resolved, [[91234]], 'a type first seen mid-stream is looked up');
  assert.deepEqual(sink.applied.at(-1)!.value, { id: 2, customer: 'c', n: 5, note: 'hi', level: '3' });
  const dropped = { ...relation, columns: relation.columns.filter((c) => c.name !== 'id') };
  await assert.rejects(feed(dropped), (err: unknown) => err instanceof PostgresConnectorError && err.code === 'PG_SCHEMA_CHANGED' && /column "id"/.test(err.message));
});

test('changes of tables that are not configured are ignored', async () => {
  const { sink, feed } = setup();
  const other = { ...relation, relationOid: 6001, name: 'audit' };
  await feed(other, ...txn([{ tag: 'insert', relation: other, new: row(1) }]));
  assert.deepEqual(sink.calls, []);
});

test('messages out of order are PG_PROTOCOL errors', async () => {
  const isProtocol = (err: unknown) => err instanceof PostgresConnectorError && err.code === 'PG_PROTOCOL';
  await assert.rejects(async () => setup().feed(relation, insert(1)), isProtocol);
  await assert.rejects(async () => setup().feed(...txn([insert(1)])), isProtocol, 'a row before its Relation message');
  await assert.rejects(async () => setup().feed({ tag: 'commit', flags: 0, commitLsn: '0/1', commitEndLsn: '0/2', commitTime: 0n }), isProtocol);
  await assert.rejects(async () => setup().feed({ tag: 'parse-failure', error: new Error('x') }), isProtocol);
});

test('a sink that refuses updates is PG_SINK_FAILED, and the position does not move', async () => {
  const { applier, sink, feed } = setup();
  sink.apply = async () => {
    throw new Error('handoff closed');
  };
  await assert.rejects(feed(relation, ...txn([insert(1)], 0x2000)), (err: unknown) => err instanceof PostgresConnectorError && err.code === 'PG_SINK_FAILED' && /handoff closed/.test(err.message) && !err.retriable);
  assert.equal(applier.durableLsn, 0x100n);
});

test('the last chunk of a transaction carries its end LSN as the position; earlier chunks none', async () => {
  const { sink, feed } = setup({}, { chunkUpdates: 2 });
  await feed(relation, ...txn([insert(1), insert(2), insert(3)], 0x7000));
  const applies = sink.calls.filter((c) => c.kind === 'apply');
  assert.equal(applies.length, 2);
  assert.equal(applies[0].position, undefined, 'a chunk inside the transaction is not a place to resume from');
  assert.deepEqual(applies[1].position, { name: 'postgres', position: formatLsn(0x7028n) });
});

test('a table re-read at an LSN skips its changes committed before it, applies those after, and says when it caught up', async () => {
  const passed: bigint[] = [];
  const { sink, feed } = setup({}, { holds: new Map([['postgres:public.orders', 0x8100n]]), onHoldsPassed: (lsn) => passed.push(lsn) });
  await feed(relation, ...txn([insert(1)], 0x8000));
  assert.equal(sink.applied.length, 0, 'in the snapshot already');
  assert.deepEqual(passed, []);
  await feed(...txn([insert(2)], 0x8100));
  assert.deepEqual(sink.applied.map((u) => u.path), ['orders/2'], 'committed at the snapshot point or later: applied');
  assert.deepEqual(passed, [0x8128n], 'caught up once the applied position passed the snapshot point');
  await feed(...txn([insert(3)], 0x8200));
  assert.deepEqual(passed, [0x8128n], 'told once');
});
