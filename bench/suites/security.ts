/**
 * security — what authentication, role-based path and field permissions and tenant isolation
 * cost: the same workload through two TidewireService processes, one without a `security`
 * section and one with JWT sessions spread over 100 roles, half of them with a field mask.
 *
 * Each server has its own table (same shape, same rows) and its own clients, connected once;
 * every step the writer updates one of the two tables, alternating off/on/on/off… so both see
 * the same machine load over the run. Two rates: a moderate one for commit-to-client latency,
 * and a heavy one (1.5 million deliveries/s offered) for the server's CPU per delivery, i.e. the
 * deliveries per second one core of tidewire sustains. (Offered past saturation, the figure
 * would be the load generator's: on two cores its process reaches ~3 million deliveries/s.)
 *
 * The roles are written so that the permission machinery cannot share work between them: every
 * role has its own effective grants (so 100 permission sets, not 1), and each of the 50 masked
 * roles hides a different subset of 8 columns (so 50 different projections of every change).
 */
import { SignJWT } from 'jose';
import { mib, ms, num, ratio } from '../lib/format.ts';
import { postmasterPid, serverVersion, startBenchPostgres, waitForSlot } from '../lib/postgres.ts';
import { type StepResult, drain, loadGeneratorLimit, measureStep } from '../lib/step.ts';
import { median, pairRatios } from '../lib/stats.ts';
import { ROW_UPDATE_SET, createRowsTable } from '../lib/tables.ts';
import { Worker } from '../lib/worker.ts';
import type { Suite, SuiteResult, Target } from '../suite.ts';

const ROWS = 1000;
const SECRET = 'bench-only-secret-0123456789abcdef-0123456789';
const TENANT = 'bench';
/** The columns a masked role may hide; never `id`, `v`, `qty` or `sent_us`, which every update changes (latency reads `sent_us`). */
const MASKABLE = ['customer', 'status', 'price', 'currency', 'ship_to', 'note', 'flag', 'created_at'];
type Mode = 'off' | 'on';
type Kind = 'latency' | 'load';

function perServerCpuSecond(s: StepResult): number {
  return s.window.deliveries / Math.max(1e-9, s.cpu.cores.server * s.cpu.seconds);
}

/**
 * `roles` roles: the first half read `sec/**` with every field, each also with a grant of its own
 * (`extra/<n>/**`) so no two share a permission set; the second half read `sec/**` with
 * `exclude` = a distinct non-empty subset of MASKABLE.
 */
export function benchRoles(roles: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const half = roles >> 1;
  for (let r = 0; r < roles; r++) {
    if (r < half) {
      out[`r${r}`] = { read: ['sec/**', `extra/${r}/**`] };
    } else {
      const bits = r - half + 1;
      const exclude = MASKABLE.filter((_, i) => (bits >> i) & 1);
      out[`r${r}`] = { read: [{ pattern: 'sec/**', fields: { exclude } }] };
    }
  }
  return out;
}

async function tokens(sessions: number, roles: number): Promise<string[]> {
  const key = new TextEncoder().encode(SECRET);
  const exp = Math.floor(Date.now() / 1000) + 6 * 3600;
  return Promise.all(
    Array.from({ length: sessions }, (_, i) =>
      new SignJWT({ tenant: TENANT, roles: [`r${i % roles}`] }).setProtectedHeader({ alg: 'HS256' }).setSubject(`user-${i}`).setExpirationTime(exp).sign(key),
    ),
  );
}

export const suite: Suite = {
  name: 'security',
  title: 'Security on vs off: latency and deliveries/s with 100 roles, field masks on half the sessions',
  async run(ctx): Promise<SuiteResult> {
    const sessions = ctx.quick ? 100 : 1000;
    const roles = ctx.quick ? 10 : 100;
    const latencyRate = ctx.quick ? 200 : 300;
    const loadRate = ctx.quick ? 1000 : 1500;
    const seconds = ctx.quick ? 2 : 8;
    const warm = ctx.quick ? 0.5 : 2;
    // p99 of a 8-second window moves by tens of percent from run to run on a shared 2-core machine: 5 alternating pairs.
    const reps = ctx.quick ? 1 : 5;
    const tickMs = 20;
    const pg = await startBenchPostgres();
    const workers: Worker[] = [];
    const steps: Array<StepResult & { mode: Mode; kind: Kind }> = [];
    try {
      const pgVersion = await serverVersion(pg);
      const postgresPid = await postmasterPid(pg);
      const servers = {} as Record<Mode, Worker>;
      const ports = {} as Record<Mode, number>;
      const clients = {} as Record<Mode, Worker>;
      const security = { jwt: { algorithms: ['HS256'], secret: SECRET }, roles: benchRoles(roles) };
      const sessionTokens = await tokens(sessions, roles);
      for (const mode of ['off', 'on'] as Mode[]) {
        const table = `sec_${mode}`;
        await createRowsTable(pg, table, ROWS);
        // TIDEWIRE_BENCH_CPU_PROF=<dir>: each server writes a V8 CPU profile there when it stops (for looking into, not measured).
        const prof = process.env.TIDEWIRE_BENCH_CPU_PROF;
        const server = await Worker.start('service', [], { nodeArgs: ['--max-old-space-size=4096', ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}/${mode}`] : [])] });
        workers.push(server);
        servers[mode] = server;
        const { port } = await server.call<{ port: number }>('start', {
          config: {
            server: { host: '127.0.0.1', port: 0 },
            postgres: { url: pg.url, slot: `bench_sec_${mode}`, publication: `bench_sec_${mode}`, tables: [{ table: `public.${table}`, path: 'sec/{id}', tenant: TENANT }] },
            ...(mode === 'on' ? { security } : {}),
            log: { level: 'warn' },
          },
          logLevel: 'warn',
        });
        ports[mode] = port;
        const c = await Worker.start('ws-clients', [], { nodeArgs: ['--max-old-space-size=4096'] });
        workers.push(c);
        clients[mode] = c;
        const r = await c.call<{ seconds: number; probes: number }>('connect', {
          url: `ws://127.0.0.1:${port}/ws`, n: sessions, protocol: 'tidewire', selector: 'sec/**', probes: 100,
          ...(mode === 'on' ? { tokens: sessionTokens } : {}),
        });
        ctx.log(`security: ${mode}: ${num(sessions)} sessions connected and subscribed in ${r.seconds.toFixed(1)} s`);
      }
      const onStats = await servers.on.call<{ sessions: number }>('stats');
      if (onStats.sessions !== sessions) throw new Error(`security on: ${onStats.sessions} sessions, expected ${sessions}`);
      // The security really applies: no token is refused, a full role sees `customer`, the first
      // masked role (hiding only `customer`) does not.
      const fetchTopic = async (token?: string) => {
        const res = await fetch(`http://127.0.0.1:${ports.on}/topics/sec/1`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
        return { status: res.status, body: (await res.json()) as { value?: Record<string, unknown> } };
      };
      const anonymous = await fetchTopic();
      const full = await fetchTopic(sessionTokens[0]);
      const masked = await fetchTopic(sessionTokens[roles >> 1]);
      if (anonymous.status !== 401 || full.body.value?.customer === undefined || masked.status !== 200 || 'customer' in (masked.body.value ?? { customer: 1 })) {
        throw new Error(`security on does not apply: no token → ${anonymous.status}, role r0 → ${JSON.stringify(full.body)}, role r${roles >> 1} → ${JSON.stringify(masked.body)}`);
      }
      const writer = await Worker.start('writer');
      workers.push(writer);

      const kinds = [
        { kind: 'latency' as const, rate: latencyRate },
        { kind: 'load' as const, rate: loadRate },
      ];
      for (let rep = 0; rep < reps; rep++) {
        for (const { kind, rate } of kinds) {
          const order: Mode[] = rep % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
          for (const mode of order) {
            const s = await measureStep({
              writer, clients: clients[mode], server: servers[mode], pgUrl: pg.url, table: `sec_${mode}`, rows: ROWS,
              set: ROW_UPDATE_SET, rate, warmSeconds: warm, seconds, tickMs, postgresPid, maxProbes: 100,
            });
            steps.push({ ...s, mode, kind });
            ctx.log(
              `security: ${mode}, ${kind}, ${num(s.writer.rate)} changes/s × ${num(s.clients)} sessions: ${num(s.deliveriesPerSecond)} deliveries/s (${(s.delivered * 100).toFixed(1)}%), ` +
                `p50 ${ms(s.window.latencyMs.p50)}, p99 ${ms(s.window.latencyMs.p99)}; cores server ${s.cpu.cores.server} clients ${s.cpu.cores.clients}`,
            );
            if (s.window.closed.length > 0) throw new Error(`security ${mode}: ${s.window.closed.length} sessions were closed (codes ${[...new Set(s.window.closed)].join(', ')})`);
            if (s.delivered < 0.97) {
              await waitForSlot(pg, `bench_sec_${mode}`);
              await drain(clients[mode]);
            }
          }
        }
      }
      const stats = { off: await servers.off.call<{ rss: number }>('stats'), on: await servers.on.call<{ rss: number }>('stats') };
      const pick = (mode: Mode, kind: Kind) => steps.filter((s) => s.mode === mode && s.kind === kind);
      const med = (mode: Mode, kind: Kind, f: (s: StepResult) => number) => median(pick(mode, kind).map(f));
      const p99 = (m: Mode) => med(m, 'latency', (s) => s.window.latencyMs.p99);
      const p50 = (m: Mode) => med(m, 'latency', (s) => s.window.latencyMs.p50);
      /** Deliveries per CPU-second of the server process: what one core of it sustains. */
      const perCore = (m: Mode, kind: Kind) => med(m, kind, perServerCpuSecond);
      const dps = (m: Mode) => med(m, 'load', (s) => s.deliveriesPerSecond);
      const p99Pairs = pairRatios(pick('on', 'latency').map((s) => s.window.latencyMs.p99), pick('off', 'latency').map((s) => s.window.latencyMs.p99));
      const cpuPairs = pairRatios(pick('off', 'load').map(perServerCpuSecond), pick('on', 'load').map(perServerCpuSecond));
      const p99Ratio = median(p99Pairs);
      const coreRatio = median(cpuPairs);
      const delivered = Math.min(...steps.filter((s) => s.kind === 'load').map((s) => s.delivered));
      const targets: Target[] = [
        {
          description: `security on at most 10% slower: p99 commit-to-client latency at ${num(latencyRate)} changes/s × ${num(sessions)} sessions`,
          met: p99Ratio <= 1.1,
          measured: `${num(p99Ratio, 2)}× (median of the alternating pairs' ratios: ${p99Pairs.map((r) => num(r, 2)).join(', ')}); median p99 ${ms(p99('on'))} on vs ${ms(p99('off'))} off, ${reps} runs each`,
        },
        {
          description: `security on at most 10% slower: deliveries per second per server core at ${num(loadRate)} changes/s × ${num(sessions)} sessions`,
          met: coreRatio <= 1.1 && delivered >= 0.97,
          measured: `off ÷ on ${num(coreRatio, 2)}× (median of the alternating pairs' ratios: ${cpuPairs.map((r) => num(r, 2)).join(', ')}); ${num(perCore('on', 'load'))} on vs ${num(perCore('off', 'load'))} off deliveries per server CPU-second (medians of ${reps}); achieved ${num(dps('on'))} vs ${num(dps('off'))} deliveries/s`,
        },
      ];
      const caveats = (['off', 'on'] as Mode[]).flatMap((m) =>
        (['latency', 'load'] as const).flatMap((k) => {
          const why = pick(m, k).map(loadGeneratorLimit).find(Boolean);
          return why ? [`security ${m}, ${k} step: ${why}.`] : [];
        }),
      );
      const row = (m: Mode, kind: Kind) => {
        const runs = pick(m, kind);
        const f = (g: (s: StepResult) => number) => median(runs.map(g));
        return [
          m,
          kind === 'latency' ? 'latency' : 'load',
          num(f((s) => s.writer.rate)),
          num(f((s) => s.deliveriesPerSecond)),
          `${(f((s) => s.delivered) * 100).toFixed(1)}%`,
          ms(f((s) => s.window.latencyMs.p50)),
          ms(f((s) => s.window.latencyMs.p99)),
          ms(f((s) => s.window.latencyMs.p999)),
          num(f((s) => s.bytesPerDelivery), 0),
          f((s) => s.cpu.cores.server).toFixed(2),
          num(perCore(m, kind)),
          f((s) => s.cpu.cores.clients).toFixed(2),
          f((s) => s.cpu.otherCores).toFixed(2),
          runs.map((s) => (kind === 'latency' ? ms(s.window.latencyMs.p99) : num(perServerCpuSecond(s)))).join(', '),
        ];
      };
      return {
        summary:
          `Two TidewireService processes (Postgres ${pgVersion}, pgoutput), each with its own ${ROWS}-row order-like table and ${num(sessions)} WebSocket sessions subscribed to \`sec/**\` in a process of their own. ` +
          `"off": no \`security\` section. "on": HS256 JWT on every handshake, one tenant, ${roles} roles assigned round robin (${roles / 2} read every field, each with one more grant of its own so no two share a permission set; ` +
          `${roles / 2} read \`sec/**\` with a field mask, each hiding a different subset of 8 columns), so half the sessions get projected values and deltas and the fan-out checks ${roles} permission sets per change. ` +
          `The writer commits an UPDATE every ${tickMs} ms (3 columns per row: \`sent_us\`, \`v\`, \`qty\`, all visible to every role). Steps alternate off/on (${reps} of each per rate), ${seconds} s after ${warm} s of warm-up; ` +
          `latency = receive time − the writer's \`sent_us\`, on up to 100 probe sessions (half of them masked).`,
        command: `npm run bench -- --only security${ctx.quick ? ' --quick' : ''}`,
        tables: [
          {
            title: `Security off vs on, ${num(sessions)} sessions, ${roles} roles (median of ${reps} alternating runs)`,
            columns: ['security', 'step', 'changes/s', 'deliveries/s', 'delivered', 'p50', 'p99', 'p99.9', 'bytes/delivery', 'cores: server', 'deliveries per server CPU-second', 'clients', 'other jobs', 'each run (p99; deliveries per server CPU-second)'],
            rows: [row('off', 'latency'), row('on', 'latency'), row('off', 'load'), row('on', 'load')],
            notes: [
              `Ratios (median of the ${reps} alternating pairs): p99 at ${num(latencyRate)} changes/s on ÷ off ${num(p99Ratio, 2)}× (each pair: ${p99Pairs.map((r) => num(r, 2)).join(', ')}; p50 medians ${ratio(p50('on'), p50('off'), 2)}); deliveries per server CPU-second at ${num(loadRate)} changes/s off ÷ on ${num(coreRatio, 2)}× (each pair: ${cpuPairs.map((r) => num(r, 2)).join(', ')}).`,
              'deliveries per server CPU-second = deliveries received in the window ÷ CPU seconds the server process used meanwhile: the rate one core of tidewire sustains, which the 2-core machine cannot show directly (the load generator saturates first).',
              'bytes/delivery is smaller with security on because the masked half receive values without their hidden columns.',
              `Server RSS at the end: off ${mib(stats.off.rss)}, on ${mib(stats.on.rss)}.`,
            ],
          },
        ],
        targets,
        caveats,
        data: { postgres: pgVersion, sessions, roles, latencyRate, loadRate, steps },
      };
    } finally {
      for (const w of workers.reverse()) await w.stop();
      await pg.stop();
    }
  },
};
