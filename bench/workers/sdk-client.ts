/**
 * One SDK client (client/, TidewireClient) in its own process, as an application would run it:
 * it subscribes, loads (paged answers: `loading` progress, then `subscribed`), reconnects and
 * resumes across server restarts. The parent reads what it saw, with wall-clock times
 * (performance.timeOrigin + now, ms) comparable with the parent's own:
 * - `subscribe({ url, selector })` resolves once the subscription is live the first time;
 * - `events()` — every live, resume, progress and disconnect so far; removals, version
 *   regressions (a topic's version not above the one before it in the same epoch: a duplicate or
 *   an older state) and moments with no value at all after being live (a blank);
 * - `digest({ numeric })` — size, and sums over the values it holds, to compare with the table.
 */
import { TidewireClient, type Subscription } from '../../client/index.ts';
import { profileHandlers } from '../lib/profiler.ts';
import { emit, serve } from '../lib/serve.ts';

const wall = () => performance.timeOrigin + performance.now();

let client: TidewireClient | null = null;
let sub: Subscription | null = null;
const lastVersion = new Map<string, number>();
let epochAtVersion: string | null = null;
const ev = {
  lives: [] as number[],
  resumes: [] as Array<{ at: number; resumed: string; epochChanged: boolean; topics: number }>,
  progress: 0,
  firstProgressAt: 0,
  lastProgress: null as null | { sent: number; total: number },
  disconnects: [] as Array<{ at: number; code: number | null; reason: string }>,
  values: 0,
  removals: 0,
  regressions: 0,
  blanks: 0,
};

async function subscribe(p: { url: string; selector: string; timeoutMs?: number }) {
  client = new TidewireClient({ url: p.url, reconnect: { initialMs: 100, maxMs: 400 } });
  client.onDisconnect((d) => ev.disconnects.push({ at: wall(), code: d.code, reason: d.reason }));
  let wasLive = false;
  const live = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not live after ${p.timeoutMs ?? 600_000} ms (${ev.values} values, progress ${JSON.stringify(ev.lastProgress)})`)), p.timeoutMs ?? 600_000);
    sub = client!.subscribe(p.selector, {
      onValue: (path, _value, version) => {
        ev.values++;
        // A new epoch starts versions over: compare within one epoch only.
        if (client!.epoch !== epochAtVersion) {
          epochAtVersion = client!.epoch;
          lastVersion.clear();
        }
        const before = lastVersion.get(path);
        if (before !== undefined && version <= before) ev.regressions++;
        lastVersion.set(path, version);
      },
      onRemoval: (path) => {
        ev.removals++;
        lastVersion.delete(path);
        if (wasLive && sub!.values.size === 0) ev.blanks++;
      },
      onProgress: (sent, total) => {
        ev.progress++;
        ev.firstProgressAt ||= wall();
        ev.lastProgress = { sent, total };
      },
      onResume: (info) => {
        ev.resumes.push({ at: wall(), resumed: info.resumed, epochChanged: info.epochChanged, topics: info.topics });
        emit('resumed', ev.resumes.at(-1));
      },
      onLive: () => {
        const at = wall();
        ev.lives.push(at);
        wasLive = true;
        clearTimeout(timer);
        emit('live', { at, topics: sub!.values.size });
        resolve();
      },
      onError: (err) => reject(err),
    });
  });
  const t0 = wall();
  await client.connect();
  await live;
  return { startedAt: t0, liveAt: ev.lives[0], topics: sub!.values.size, pages: ev.progress, epoch: client.epoch };
}

function events() {
  return { ...ev, live: sub?.live ?? false, topics: sub?.values.size ?? 0, epoch: client?.epoch ?? null };
}

/** Size and sums of numeric fields over every value held (`weighted`: Σ field × (id mod 1000), catches values on the wrong row). */
function digest(p: { numeric: string[] }) {
  const sums: Record<string, number> = {};
  const weighted: Record<string, number> = {};
  for (const f of p.numeric) sums[f] = weighted[f] = 0;
  for (const v of sub!.values.values()) {
    const id = Number(v.id);
    for (const f of p.numeric) {
      const x = Number(v[f]);
      sums[f] += x;
      weighted[f] += x * (id % 1000);
    }
  }
  return { size: sub!.values.size, live: sub!.live, sums, weighted };
}

function rss() {
  globalThis.gc?.();
  return process.memoryUsage();
}

serve({ subscribe, events, digest, rss, close: () => client?.close(), ...profileHandlers }, () => client?.close());
