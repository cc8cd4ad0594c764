/**
 * fanout — tidewire against the naive build a user would write: a trigger calling
 * pg_notify('rows', row_to_json(NEW)::text) on every update, one Node process LISTENing and
 * broadcasting each full row to every socket.io client. Same table shape, same writer, same
 * clients (one process), same number of them; each system's rate is stepped up until it
 * saturates (deliveries fall behind, latency passes 1 s, or clients are dropped).
 */
import { io as socketIoClient } from 'socket.io-client';
import { mib, ms, num, ratio } from '../lib/format.ts';
import { postmasterPid, serverVersion, startBenchPostgres } from '../lib/postgres.ts';
import { type StepResult, loadGeneratorLimit, measureStep, saturation } from '../lib/step.ts';
import { ROW_UPDATE_SET, createRowsTable } from '../lib/tables.ts';
import { Worker } from '../lib/worker.ts';
import type { Suite, SuiteResult } from '../suite.ts';

const ROWS = 200;
type System = 'tidewire' | 'naive';

interface Run {
  system: System;
  clients: number;
  steps: StepResult[];
  saturatedBy: string | null;
  serverRssIdle: number;
  serverRssBefore: number;
}

export const suite: Suite = {
  name: 'fanout',
  title: 'Fan-out: tidewire vs pg_notify + socket.io broadcasting full rows',
  async run(ctx): Promise<SuiteResult> {
    const clientCounts = ctx.quick ? [100] : [1000, 5000];
    const targets = ctx.quick ? [50_000, 200_000] : [25_000, 50_000, 100_000, 300_000, 1_000_000, 2_000_000, 4_000_000];
    const seconds = ctx.quick ? 1.5 : 4;
    const warm = ctx.quick ? 0.5 : 1;
    const pg = await startBenchPostgres();
    const runs: Run[] = [];
    let writer: Worker | null = null;
    try {
      const pgVersion = await serverVersion(pg);
      await createRowsTable(pg, 'fan_tw', ROWS);
      await createRowsTable(pg, 'fan_naive', ROWS);
      await pg.query(`
        CREATE FUNCTION fan_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('rows', row_to_json(NEW)::text);
          RETURN NEW;
        END $$`);
      await pg.query('CREATE TRIGGER fan_notify AFTER INSERT OR UPDATE ON fan_naive FOR EACH ROW EXECUTE FUNCTION fan_notify()');
      const postgresPid = await postmasterPid(pg);
      writer = await Worker.start('writer');
      for (const system of ['tidewire', 'naive'] as System[]) {
        for (const n of clientCounts) {
          const server = await Worker.start(system === 'tidewire' ? 'service' : 'naive-server', [], { nodeArgs: ['--max-old-space-size=8192', '--expose-gc'] });
          const clients = await Worker.start('ws-clients', [], { nodeArgs: ['--max-old-space-size=8192'] });
          try {
            let port: number;
            if (system === 'tidewire') {
              port = (await server.call<{ port: number }>('start', {
                config: {
                  server: { host: '127.0.0.1', port: 0 },
                  postgres: { url: pg.url, slot: 'bench_fan', publication: 'bench_fan', tables: [{ table: 'public.fan_tw', path: 'fan/{id}' }] },
                  log: { level: 'warn' },
                },
                logLevel: 'warn',
              })).port;
            } else {
              port = (await server.call<{ port: number }>('start', { pgUrl: pg.url, channel: 'rows' })).port;
            }
            await server.call('gc');
            const serverRssIdle = server.watch.sample()?.rss ?? 0;
            const url = system === 'tidewire' ? `ws://127.0.0.1:${port}/ws` : `ws://127.0.0.1:${port}`;
            const c = await clients.call<{ seconds: number }>('connect', { url, n, protocol: system === 'tidewire' ? 'tidewire' : 'socketio', selector: 'fan/**', probes: 50, concurrency: 200 });
            // After a full GC: what the connections hold, not the garbage of the initial values just sent.
            await new Promise((r) => setTimeout(r, 500));
            await server.call('gc');
            const serverRssBefore = server.watch.sample()?.rss ?? 0;
            ctx.log(`fanout: ${system}, ${num(n)} clients connected in ${c.seconds.toFixed(1)} s; server RSS ${mib(serverRssBefore)}`);
            // One real socket.io client beside the raw ones: the naive server must work for what users would run.
            let realRows = 0;
            const real = system === 'naive' ? socketIoClient(url, { transports: ['websocket'], reconnection: false }) : null;
            if (real) {
              real.on('row', () => realRows++);
              await new Promise<void>((resolve, reject) => {
                real.once('connect', () => resolve());
                real.once('connect_error', reject);
              });
            }
            const run: Run = { system, clients: n, steps: [], saturatedBy: null, serverRssIdle, serverRssBefore };
            runs.push(run);
            let previousRate = 0;
            for (const target of targets) {
              const rate = Math.max(10, Math.round(target / n));
              if (rate === previousRate) continue;
              previousRate = rate;
              const s = await measureStep({
                writer, clients, server, pgUrl: pg.url, table: system === 'tidewire' ? 'fan_tw' : 'fan_naive', rows: ROWS, set: ROW_UPDATE_SET,
                rate, warmSeconds: warm, seconds, drainMs: 300, maxProbes: 50, postgresPid,
              });
              run.steps.push(s);
              if (real && run.steps.length === 1) {
                if (realRows < s.writer.sent * 0.5) throw new Error(`a socket.io-client received ${realRows} rows while ${s.writer.sent} were written: the naive server is not working`);
                real.close();
              }
              const why = saturation(s);
              ctx.log(`fanout: ${system}, ${num(n)} clients, ${num(rate)} changes/s: ${num(s.deliveriesPerSecond)} deliveries/s (${(s.delivered * 100).toFixed(0)}%), p99 ${ms(s.window.latencyMs.p99)}, ${num(s.bytesPerDelivery, 0)} B/delivery; cores server ${s.cpu.cores.server} clients ${s.cpu.cores.clients}${why ? ` — saturated: ${why}` : ''}`);
              if (why) {
                run.saturatedBy = why;
                break;
              }
            }
          } finally {
            await clients.stop();
            await server.stop();
          }
        }
      }

      const peak = (r: Run) => r.steps.reduce((best, s) => (s.deliveriesPerSecond > best.deliveriesPerSecond ? s : best), r.steps[0]);
      const get = (system: System, n: number) => runs.find((r) => r.system === system && r.clients === n)!;
      const summaryRows = clientCounts.map((n) => {
        const tw = get('tidewire', n);
        const nv = get('naive', n);
        const pt = peak(tw);
        const pn = peak(nv);
        // Latency compared at the highest rate both sustained without saturating.
        const common = tw.steps.filter((s) => !saturation(s)).map((s) => s.rate).filter((r) => nv.steps.some((x) => x.rate === r && !saturation(x)));
        const cr = common.length ? Math.max(...common) : NaN;
        const lt = tw.steps.find((s) => s.rate === cr);
        const ln = nv.steps.find((s) => s.rate === cr);
        return {
          n, pt, pn, cr, lt, ln,
          row: [
            num(n),
            `${num(pt.deliveriesPerSecond)}${tw.saturatedBy ? '' : ' (not saturated)'}`,
            `${num(pn.deliveriesPerSecond)}${nv.saturatedBy ? '' : ' (not saturated)'}`,
            ratio(pt.deliveriesPerSecond, pn.deliveriesPerSecond),
            num(pt.bytesPerDelivery, 0),
            num(pn.bytesPerDelivery, 0),
            `${num((pt.bytesPerDelivery / pn.bytesPerDelivery) * 100, 0)}%`,
            lt && ln ? `${num(cr)}/s: ${ms(lt.window.latencyMs.p99)} vs ${ms(ln.window.latencyMs.p99)}` : '–',
          ],
        };
      });
      const stepRows = runs.flatMap((r) =>
        r.steps.map((s) => [
          r.system,
          num(r.clients),
          num(s.writer.rate),
          num(s.deliveriesPerSecond),
          `${(s.delivered * 100).toFixed(0)}%`,
          ms(s.window.latencyMs.p50),
          ms(s.window.latencyMs.p99),
          num(s.bytesPerDelivery, 0),
          s.cpu.cores.server.toFixed(2),
          s.cpu.cores.clients.toFixed(2),
          s.cpu.cores.postgres?.toFixed(2) ?? '–',
          s.cpu.otherCores.toFixed(2),
          saturation(s) ?? loadGeneratorLimit(s) ?? '',
        ]),
      );
      const memRows = runs.map((r) => [r.system, num(r.clients), mib(r.serverRssIdle), mib(r.serverRssBefore), `${num((r.serverRssBefore - r.serverRssIdle) / r.clients / 1024, 1)} KiB`]);
      const caveats = [
        'Both servers share the two cores with Postgres, the writer and the load generator; when the load generator is at a full core the peak is a floor for the server, not its ceiling.',
        ...runs.flatMap((r) => r.steps.filter((s) => loadGeneratorLimit(s)).slice(0, 1).map((s) => `${r.system}, ${num(r.clients)} clients: ${loadGeneratorLimit(s)} from ${num(s.writer.rate)} changes/s on.`)),
      ];
      return {
        summary:
          `A ${ROWS}-row, 12-column order-like table (about 330 bytes of JSON per row) per system (the same shape; \`fan_tw\` is in tidewire's publication, \`fan_naive\` has the trigger), on Postgres ${pgVersion}. ` +
          `The writer process updates rows round robin at a steady rate (3 columns per update, as in the latency suite); each system's offered rate is stepped up — ${targets.map((t) => num(t)).join(', ')} ` +
          `deliveries/s offered (rate × clients) — until it saturates. The naive build: trigger \`pg_notify('rows', row_to_json(NEW)::text)\`, one Node process with \`pg\` LISTEN and socket.io 4 (\`io.emit('row', row)\`, websocket transport, no compression). ` +
          `tidewire: TidewireService with default settings. Clients: one process, a raw WebSocket each (socket.io's engine.io v4 framing for the naive server), subscribed to every row; probes (clients that parse every message: 100,000 ÷ rate of them, between 5 and 50) record latency and count messages; one real socket.io-client also connects to the naive server and must receive the rows of the first step. ` +
          `Bytes are TCP bytes read by the clients (WebSocket framing included) per delivered row change. ${seconds} s per step after ${warm} s of warm-up; each server is restarted for each client count.`,
        command: `npm run bench -- --only fanout${ctx.quick ? ' --quick' : ''}`,
        tables: [
          {
            title: 'Peak deliveries/s, bytes per delivery and latency',
            columns: ['clients', 'tidewire deliveries/s', 'naive deliveries/s', 'tidewire ÷ naive', 'tidewire bytes/delivery', 'naive bytes/delivery', 'tidewire bytes ÷ naive', 'p99 at a rate both sustained (tidewire vs naive)'],
            rows: summaryRows.map((r) => r.row),
          },
          {
            title: 'Every step',
            columns: ['system', 'clients', 'changes/s', 'deliveries/s', 'delivered', 'p50', 'p99', 'bytes/delivery', 'cores: server', 'clients', 'Postgres', 'other jobs', 'limit'],
            rows: stepRows,
          },
          {
            title: 'Server memory with the clients connected and subscribed (before any update, after a full GC)',
            columns: ['system', 'clients', 'server RSS idle', 'server RSS with clients', 'per connection'],
            rows: memRows,
            notes: ['RSS after a full GC; memory the process took while sending each client its initial values may not have gone back to the OS.'],
          },
        ],
        targets: summaryRows.map((r) => ({
          description: `tidewire ≥ 3× the naive build's deliveries/s at ${num(r.n)} clients, at a fraction of the bytes`,
          met: r.pt.deliveriesPerSecond >= 3 * r.pn.deliveriesPerSecond && r.pt.bytesPerDelivery < r.pn.bytesPerDelivery,
          measured: `${ratio(r.pt.deliveriesPerSecond, r.pn.deliveriesPerSecond)} deliveries/s, ${num((r.pt.bytesPerDelivery / r.pn.bytesPerDelivery) * 100, 0)}% of the bytes`,
        })),
        caveats,
        data: { postgres: pgVersion, rows: ROWS, runs },
      };
    } finally {
      await writer?.stop();
      await pg.stop();
    }
  },
};
