/** Summarises a V8 .cpuprofile (from node --cpu-prof): self time by function and by file. */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  readonly functions: Array<{ name: string; where: string; selfMs: number; percent: number }>;
  readonly files: Array<{ file: string; selfMs: number; percent: number }>;
}

function shortUrl(url: string): string {
  if (!url) return '(native)';
  const u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) return u.slice(nm + 'node_modules/'.length);
  const m = /\/(core|connectors|services|bench|client)\/.*/.exec(u);
  return m ? m[0].slice(1) : u;
}

export function summarizeProfile(file: string, top = 15): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const self = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0));
  const byFn = new Map<string, { name: string; where: string; us: number }>();
  const byFile = new Map<string, number>();
  let total = 0;
  for (const n of prof.nodes) {
    const us = self.get(n.id) ?? 0;
    if (us === 0) continue;
    const fn = n.callFrame.functionName || '(anonymous)';
    if (fn === '(idle)' || fn === '(program)') continue;
    total += us;
    const where = `${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
    const key = `${fn}@${where}`;
    const e = byFn.get(key) ?? { name: fn, where, us: 0 };
    e.us += us;
    byFn.set(key, e);
    const f = fn === '(garbage collector)' ? '(garbage collector)' : shortUrl(n.callFrame.url);
    byFile.set(f, (byFile.get(f) ?? 0) + us);
  }
  const pct = (us: number) => Math.round((us / total) * 1000) / 10;
  return {
    totalMs: Math.round(total / 1000),
    functions: [...byFn.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ name: e.name, where: e.where, selfMs: Math.round(e.us / 1000), percent: pct(e.us) })),
    files: [...byFile.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([file, us]) => ({ file, selfMs: Math.round(us / 1000), percent: pct(us) })),
  };
}
