/**
 * bandwidth — bytes on the wire with tidewire's deltas against the same changes sent as full
 * values, for the same subscribers, on three workloads: orders (1–2 fields change), IoT sensors
 * (one reading changes, the rest is static) and wide rows (30 columns, one changes).
 *
 * Measured: TCP bytes read by each client (WebSocket framing included) while the updates stream.
 * The full-value figure is the same stream with every delta replaced by the `value` message it
 * stands for (same path and version, the whole new value): one client keeps every topic's value,
 * applies each patch and prices that message exactly; every client gets the same stream.
 */
import { num } from '../lib/format.ts';
import { serverVersion, startBenchPostgres, type BenchPostgres } from '../lib/postgres.ts';
import type { ClientWindow } from '../lib/step.ts';
import { Worker } from '../lib/worker.ts';
import type { Suite, SuiteResult } from '../suite.ts';

interface Workload {
  name: string;
  table: string;
  prefix: string;
  describe: string;
  create(pg: BenchPostgres, rows: number): Promise<void>;
  /** The SET list of the r-th round of updates (round r updates every row once). */
  set(r: number): string;
}

const STATUSES = ['paid', 'packed', 'shipped', 'delivered', 'open'];

const WORKLOADS: Workload[] = [
  {
    name: 'orders',
    table: 'bw_orders',
    prefix: 'orders',
    describe: '12-column order rows (~330 B of JSON); each update sets the status, every other one also the quantity (1–2 fields)',
    async create(pg, rows) {
      await pg.query(`
        CREATE TABLE bw_orders (
          id int8 PRIMARY KEY, customer int4 NOT NULL, status text NOT NULL, qty int4 NOT NULL, price numeric(10,2) NOT NULL,
          currency text NOT NULL, ship_to text NOT NULL, note text, flag bool NOT NULL, email text NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(), updated_by text NOT NULL DEFAULT 'web')`);
      await pg.query(`
        INSERT INTO bw_orders (id, customer, status, qty, price, currency, ship_to, note, flag, email)
          SELECT i, (i % 97)::int4, 'open', (i % 10)::int4, (i % 1000) / 10.0, 'EUR',
                 (i % 500) || ' Harbour Street, Flat ' || (i % 40) || ', Portsmouth PO1 ' || (i % 9) || 'AB',
                 'leave with the neighbour if nobody answers (order ' || i || ')', i % 2 = 0, 'customer' || (i % 97) || '@example.com'
            FROM generate_series(1, ${rows}) AS i`);
    },
    // Round r is the r-th update of each row: every update moves the status on (never a no-op).
    set: (r) => (r % 2 === 0 ? `status = '${STATUSES[r % 5]}'` : `status = '${STATUSES[r % 5]}', qty = qty + 1`),
  },
  {
    name: 'IoT sensors',
    table: 'bw_sensors',
    prefix: 'sensors',
    describe: '12-column sensor rows (site, device, model, firmware, unit, position, three readings); each update changes one reading',
    async create(pg, rows) {
      await pg.query(`
        CREATE TABLE bw_sensors (
          id int8 PRIMARY KEY, site text NOT NULL, device text NOT NULL, model text NOT NULL, firmware text NOT NULL, unit text NOT NULL,
          lat float8 NOT NULL, lon float8 NOT NULL, installed_at timestamptz NOT NULL,
          temperature float8 NOT NULL, humidity float8 NOT NULL, battery int4 NOT NULL)`);
      await pg.query(`
        INSERT INTO bw_sensors SELECT i, 'plant-' || (i % 7), 'sensor-' || lpad(i::text, 6, '0'), 'TH-200 rev B', '4.12.7', 'celsius',
                 50.8 + (i % 100) / 1000.0, -1.09 - (i % 100) / 1000.0, '2024-03-01 08:00:00+00', 20 + (i % 50) / 10.0, 40 + (i % 30), 100
            FROM generate_series(1, ${rows}) AS i`);
    },
    set: (k) => ['temperature = temperature + 0.1', 'humidity = humidity + 0.5', 'battery = battery - 1'][k % 3],
  },
  {
    name: 'wide rows',
    table: 'bw_wide',
    prefix: 'wide',
    describe: '30-column customer-profile rows (~850 B of JSON: uuid, names, contact and address fields, timestamps, counters, amounts, flags); each update changes one counter or amount',
    async create(pg, rows) {
      await pg.query(`
        CREATE TABLE bw_wide (
          id int8 PRIMARY KEY, uid uuid NOT NULL, first_name text NOT NULL, last_name text NOT NULL, email text NOT NULL, phone text NOT NULL,
          street text NOT NULL, city text NOT NULL, postcode text NOT NULL, country text NOT NULL, company text NOT NULL, job_title text NOT NULL,
          department text NOT NULL, locale text NOT NULL, timezone text NOT NULL, status text NOT NULL, tier text NOT NULL, notes text NOT NULL,
          created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, last_login timestamptz NOT NULL,
          login_count int4 NOT NULL, orders_count int4 NOT NULL, lifetime_value numeric(12,2) NOT NULL, balance numeric(12,2) NOT NULL,
          credit_limit numeric(12,2) NOT NULL, marketing_opt_in bool NOT NULL, verified bool NOT NULL, score int4 NOT NULL, version int4 NOT NULL)`);
      await pg.query(`
        INSERT INTO bw_wide SELECT i, md5(i::text)::uuid, 'Alexandra', 'Montgomery-' || i, 'alexandra.montgomery' || i || '@example.com', '+44 20 7946 ' || lpad((i % 10000)::text, 4, '0'),
                 (i % 300) || ' Kingsway', 'London', 'WC2B 6' || chr(65 + i % 26) || 'X', 'United Kingdom', 'Northwind Traders Ltd', 'Senior Procurement Manager',
                 'Purchasing', 'en-GB', 'Europe/London', 'active', 'gold', 'prefers e-mail; account reviewed ' || (i % 28 + 1) || ' March',
                 '2021-06-01 09:30:00.123456+00'::timestamptz + i * interval '1 minute', '2025-02-01 10:00:00.654321+00', '2025-03-01 08:15:00.5+00',
                 i % 500, i % 90, (i % 100000) / 3.0, (i % 5000) / 7.0, 5000, i % 3 = 0, true, 700 + i % 100, 1
            FROM generate_series(1, ${rows}) AS i`);
    },
    set: (k) => ['login_count = login_count + 1', 'balance = balance + 1.25', 'score = score + 1', 'orders_count = orders_count + 1'][k % 4],
  },
];

export const suite: Suite = {
  name: 'bandwidth',
  title: 'Bandwidth: deltas vs full values on the wire',
  async run(ctx): Promise<SuiteResult> {
    const rows = ctx.quick ? 200 : 1000;
    const updates = ctx.quick ? 2000 : 20_000;
    const nClients = ctx.quick ? 5 : 20;
    const pg = await startBenchPostgres();
    let server: Worker | null = null;
    const results: Array<{ workload: Workload; window: ClientWindow; perClient: number; fullPerClient: number; valueBytes: number; deltaBytes: number }> = [];
    try {
      const pgVersion = await serverVersion(pg);
      for (const w of WORKLOADS) await w.create(pg, rows);
      server = await Worker.start('service');
      const { port } = await server.call<{ port: number }>('start', {
        config: {
          server: { host: '127.0.0.1', port: 0 },
          postgres: { url: pg.url, slot: 'bench_bw', publication: 'bench_bw', tables: WORKLOADS.map((w) => ({ table: `public.${w.table}`, path: `${w.prefix}/{id}` })) },
          log: { level: 'warn' },
        },
        logLevel: 'warn',
      });
      for (const w of WORKLOADS) {
        const clients = await Worker.start('ws-clients');
        try {
          await clients.call('connect', { url: `ws://127.0.0.1:${port}/ws`, n: nClients, protocol: 'tidewire', selector: `${w.prefix}/**`, probes: nClients, track: true });
          await clients.call('reset');
          // 100 rows per statement, each row updated in turn: every update is one row change.
          const perStatement = 100;
          for (let k = 0; k < updates / perStatement; k++) {
            const first = ((k * perStatement) % rows) + 1;
            const round = Math.floor((k * perStatement) / rows);
            await pg.query(`UPDATE ${w.table} SET ${w.set(round)} WHERE id BETWEEN ${first} AND ${first + perStatement - 1}`);
          }
          let window: ClientWindow;
          const deadline = Date.now() + 60_000;
          for (;;) {
            window = await clients.call<ClientWindow>('collect');
            const got = window.tracked!.deltas + window.tracked!.values;
            if (got >= updates && window.minProbeMessages >= updates) break;
            if (Date.now() > deadline) throw new Error(`${w.name}: clients received ${got} of ${updates} updates`);
            await new Promise((r) => setTimeout(r, 100));
          }
          if (window.closed.length > 0) throw new Error(`${w.name}: ${window.closed.length} clients were disconnected`);
          const t = window.tracked!;
          const perClient = window.bytes / window.clients;
          const fullPerClient = perClient + (t.fullBytes - t.deliveredBytes);
          results.push({ workload: w, window, perClient, fullPerClient, valueBytes: (t.fullBytes - (t.deliveredBytes - t.deltaBytes)) / Math.max(1, t.deltas), deltaBytes: t.deltaBytes / Math.max(1, t.deltas) });
          ctx.log(`bandwidth: ${w.name}: ${num(perClient / updates, 1)} B per update per client with deltas, ${num(fullPerClient / updates, 1)} B with full values (saving ${num((1 - perClient / fullPerClient) * 100, 1)}%)`);
        } finally {
          await clients.stop();
        }
      }
      return {
        summary:
          `Three tables on Postgres ${pgVersion}, ${num(rows)} rows each, streamed by one TidewireService (default settings); for each workload ${num(nClients)} WebSocket clients (one process) subscribe to all its rows, ` +
          `then ${num(updates)} single-row changes are written (UPDATE statements of 100 rows). Bytes are TCP bytes each client read while the changes streamed (WebSocket framing and tidewire's frame batching included), per row change. ` +
          `"Full values" is the same stream with every delta replaced by the \`value\` message it stands for, priced exactly by a client that applies every patch. Workloads: ${WORKLOADS.map((w) => `${w.name} — ${w.describe}`).join('; ')}.`,
        command: `npm run bench -- --only bandwidth${ctx.quick ? ' --quick' : ''}`,
        tables: [
          {
            title: 'Bytes on the wire per row change, per client',
            columns: ['workload', 'full value message', 'delta message', 'on the wire with deltas', 'on the wire with full values', 'saving', 'sent as values (patch not smaller)', 'saving with a compact delta (analysis)'],
            rows: results.map((r) => [
              r.workload.name,
              `${num(r.valueBytes, 0)} B`,
              `${num(r.deltaBytes, 0)} B`,
              `${num(r.perClient / updates, 1)} B`,
              `${num(r.fullPerClient / updates, 1)} B`,
              `${num((1 - r.perClient / r.fullPerClient) * 100, 1)}%`,
              num(r.window.tracked!.values),
              `${num((1 - (r.perClient - r.window.tracked!.deltaBytes + r.window.tracked!.compactDeltaBytes) / r.fullPerClient) * 100, 1)}%`,
            ]),
            notes: [
              'A delta message carries the envelope (`type`, `path`, `version`) and RFC 6902 operations (`{"op":"replace","path":"/status","value":"paid"}`): about 30 bytes of JSON Patch syntax per changed field on top of its name and value.',
              'Last column (not what tidewire sends): the same stream if top-level replaces were sent as `{"type":"delta","path":…,"version":…,"set":{"field":value}}`, priced by the same client. It shows how much of the remaining cost is JSON Patch syntax.',
            ],
          },
        ],
        targets: results
          .filter((r) => r.workload.name === 'wide rows')
          .map((r) => ({ description: '≥ 90% saving on wide rows (30 columns, one changes)', met: 1 - r.perClient / r.fullPerClient >= 0.9, measured: `${num((1 - r.perClient / r.fullPerClient) * 100, 1)}% saving` })),
        data: { postgres: pgVersion, rows, updates, clients: nClients, results: results.map((r) => ({ workload: r.workload.name, perClient: r.perClient, fullPerClient: r.fullPerClient, valueBytes: r.valueBytes, deltaBytes: r.deltaBytes, tracked: r.window.tracked })) },
      };
    } finally {
      await server?.stop();
      await pg.stop();
    }
  },
};
