/**
 * Security through the real process: `tidewire start` with a security file and Postgres; a token
 * decides what a client sees; SIGHUP reloads the file and live subscriptions follow at once.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { type TestPostgres, freePort, startPostgres } from '../support/postgres.ts';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.ts';
import { waitFor } from '../support/wait.ts';

const SECRET = 'a-test-secret-that-is-at-least-32-characters';
let db: TestPostgres;
let svc: ServiceProcess | undefined;
const securityFile = join(tmpdir(), `tidewire-security-${process.pid}.yaml`);

function securityYaml(analyticsFields: string): string {
  return `jwt:
  algorithms: [HS256]
  secret: ${SECRET}
  issuer: test
roles:
  regulator: { read: ['orders/**'] }
  analytics:
    read:
      - pattern: orders/**
        fields: { exclude: [${analyticsFields}] }
`;
}

before(async () => {
  db = await startPostgres();
  await db.query(`CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, email text, qty int)`);
  await db.query(`INSERT INTO orders VALUES (1, 7, 'a@x.io', 1), (2, 8, 'b@x.io', 2)`);
  writeFileSync(securityFile, securityYaml('email'));
});

after(async () => {
  await svc?.kill();
  await db?.stop();
});

async function token(roles: string[]): Promise<string> {
  return new SignJWT({ roles, tenant: 'default' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('u1')
    .setIssuer('test')
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(SECRET));
}

function connect(port: number, tok: string | null): Promise<{ ws: WebSocket; messages: Array<Record<string, unknown>> } | number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws${tok ? `?access_token=${tok}` : ''}`);
    const messages: Array<Record<string, unknown>> = [];
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('message', (d) => messages.push(...JSON.parse(String(d))));
    ws.on('open', () => {
      ws.send(JSON.stringify({ type: 'subscribe', id: 's', selector: 'orders/**' }));
      resolve({ ws, messages });
    });
  });
}

test('tokens decide what is seen; SIGHUP reloads field permissions on live sessions', async () => {
  const port = await freePort();
  svc = await startServiceProcess(
    {
      log: { level: 'warn' },
      security: { file: securityFile },
      postgres: { url: db.url, slot: 'sec', publication: 'sec', tables: [{ table: 'public.orders', path: 'orders/{customer_id}/{id}' }] },
    },
    port,
  );
  assert.equal(await connect(port, null), 401, 'no token: refused');
  assert.equal(await connect(port, 'not.a.token'), 401, 'garbage token: refused');

  const analytics = (await connect(port, await token(['analytics']))) as { ws: WebSocket; messages: Array<Record<string, unknown>> };
  await waitFor('analytics snapshot', () => analytics.messages.some((m) => m.type === 'subscribed'));
  const first = analytics.messages.find((m) => m.path === 'orders/7/1') as { value: Record<string, unknown> };
  assert.deepEqual(first.value, { id: 1, customer_id: 7, qty: 1 }, 'email hidden from analytics');

  // Hide qty instead of email, reload with SIGHUP: the live session follows without reconnecting.
  writeFileSync(securityFile, securityYaml('qty'));
  svc.child.kill('SIGHUP');
  await waitFor('the reload to reach the analytics session', () =>
    analytics.messages.some((m) => m.path === 'orders/7/1' && (m.value as Record<string, unknown> | undefined)?.email === 'a@x.io'),
  );
  const latest = analytics.messages.filter((m) => m.path === 'orders/7/1' && m.type === 'value').at(-1) as { value: Record<string, unknown> };
  assert.ok(!('qty' in latest.value), 'qty now hidden');
  analytics.ws.close();
});
