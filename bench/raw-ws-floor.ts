/**
 * The floor under bench/fanout-idle-profile.ts: what raw `ws` costs to write one small frame
 * (a ~255-byte delta message, shared Buffer) 10 times a second to each of N clients (the same
 * ws-clients worker), so the cost of one frame per delivery is known without tidewire in it.
 * This process is the server; its user and system CPU are printed separately.
 *
 *   node --import tsx bench/raw-ws-floor.ts 5000
 */
import { WebSocketServer } from 'ws';
import { Worker } from './lib/worker.ts';
import { CpuWindow } from './lib/proc.ts';
import { readFileSync } from 'node:fs';
const n = Number(process.argv[2] ?? 5000);
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
await new Promise((r) => wss.once('listening', r));
const port = (wss.address() as { port: number }).port;
wss.on('connection', (ws) => ws.on('message', () => ws.send(JSON.stringify([{ type: 'subscribed', id: 's' }]))));
const clients = await Worker.start('ws-clients', [], {});
await clients.call('connect', { url: `ws://127.0.0.1:${port}/ws`, n, protocol: 'tidewire', selector: 'x', probes: 50, concurrency: 200 });
const st = () => { const r = readFileSync('/proc/self/stat', 'utf8'); const f = r.slice(r.lastIndexOf(')') + 2).split(' '); return [Number(f[11]), Number(f[12])]; };
const s0 = st(); const cpu = new CpuWindow({ self: process.pid, clients: clients.child.pid! });
const msg = JSON.stringify([{ type: 'delta', path: 'items/1', version: 1, patch: [{ op: 'replace', path: '/qty', value: 1 }, { op: 'replace', path: '/v', value: 12345 }, { op: 'replace', path: '/sent_us', value: Date.now() * 1000 }] }, { type: 'position', position: 'x'.repeat(20) }]);
const t0 = performance.now();
while (performance.now() - t0 < 10_000) {
  const buf = Buffer.from(msg);
  for (const ws of wss.clients) ws.send(buf, { binary: false });
  await new Promise((r) => setTimeout(r, 100));
}
const s1 = st(); const u = cpu.end();
console.log(`raw ws, ${n} clients, 10 frames/s each: cores self ${u.cores.self} (user ${((s1[0] - s0[0]) / 100 / u.seconds).toFixed(2)}, system ${((s1[1] - s0[1]) / 100 / u.seconds).toFixed(2)}), clients ${u.cores.clients}, other ${u.otherCores}, msg ${msg.length} B`);
await clients.stop(); wss.close(); process.exit(0);
