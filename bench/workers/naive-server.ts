/**
 * The build a user would write without tidewire: a trigger on the table calls
 * pg_notify('rows', row_to_json(NEW)::text) for every updated row; this process LISTENs on one
 * connection and broadcasts each row, whole, to every socket.io client with io.emit().
 * The trigger is created by the suite (see suites/fanout.ts).
 */
import { createServer } from 'node:http';
import pg from 'pg';
import { Server } from 'socket.io';
import { serve } from '../lib/serve.ts';

let io: Server | null = null;
let listener: pg.Client | null = null;
let notifications = 0;

async function start(p: { pgUrl: string; channel: string }) {
  const http = createServer();
  io = new Server(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  listener = new pg.Client({ connectionString: p.pgUrl });
  await listener.connect();
  listener.on('notification', (n) => {
    notifications++;
    io!.emit('row', JSON.parse(n.payload!));
  });
  await listener.query(`LISTEN ${p.channel}`);
  const address = http.address();
  return { port: typeof address === 'object' && address ? address.port : 0 };
}

function stats() {
  const mem = process.memoryUsage();
  return { notifications, sockets: io?.engine.clientsCount ?? 0, rss: mem.rss, heapUsed: mem.heapUsed };
}

serve({ start, stats, gc: () => (globalThis.gc?.(), process.memoryUsage()) }, async () => {
  await listener?.end().catch(() => {});
  io?.close();
});
