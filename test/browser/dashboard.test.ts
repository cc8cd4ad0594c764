// The dashboard in a real Chromium against a real Postgres: rows written, updated and deleted in
// Postgres appear, change (with the changed cell highlighted) and disappear in the page, and the
// bandwidth counter shows deltas costing less than full values would have.
// The README's screenshot is made by `npm run screenshot` (test/browser/screenshot.ts), not here.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { type OrdersService, ensureBuilt, launchChromium, openPage, screenshotOnFailure, startOrdersService } from '../support/browser.ts';

let orders: OrdersService;
let browser: Browser;
let page: Page;

before(async () => {
  const dist = await ensureBuilt('dashboard');
  orders = await startOrdersService(dist);
  browser = await launchChromium();
  page = await openPage(browser);
}, { timeout: 180_000 });

after(async () => {
  await browser?.close();
  await orders?.stop();
}, { timeout: 60_000 });

async function insertOrder(customer: number, item: string, qty = 1, status = 'new'): Promise<number> {
  const { rows } = await orders.db.query<{ id: number }>(
    `INSERT INTO orders (customer_id, item, qty, price, status, note) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
    [customer, item, qty, (4.5 * qty).toFixed(2), status, `leave at the door, ring twice (order for customer ${customer})`],
  );
  return rows[0].id;
}

const row = (path: string) => `[data-testid="topic-row"][data-path="${path}"]`;
const cell = (path: string, field: string) => `${row(path)} td[data-field="${field}"]`;

async function waitLive(p: Page): Promise<void> {
  await p.waitForSelector('[data-testid="connection-state"][data-live="true"]', { timeout: 10_000 });
}

test('the page connects to its own host and goes live on the default selector orders/**', { timeout: 60_000 }, async (t) => {
  await screenshotOnFailure(t, page, async () => {
    await page.goto(orders.baseUrl);
    await waitLive(page);
    assert.equal(await page.inputValue('[data-testid="selector-input"]'), 'orders/**');
    assert.equal(await page.textContent('[data-testid="connection-state"]'), 'Live');
  });
});

let id = 0;

test('a row inserted in Postgres appears in the table', { timeout: 60_000 }, async (t) => {
  await screenshotOnFailure(t, page, async () => {
    id = await insertOrder(7, 'oat milk', 2);
    const path = `orders/7/${id}`;
    await page.waitForSelector(row(path), { timeout: 10_000 });
    assert.equal(await page.textContent(cell(path, 'item')), 'oat milk');
    assert.equal(await page.textContent(cell(path, 'status')), 'new');
    assert.equal(await page.textContent('[data-testid="topic-count"]'), '1');
  });
});

test('an UPDATE shows the new value and highlights exactly the changed cell, briefly', { timeout: 60_000 }, async (t) => {
  await screenshotOnFailure(t, page, async () => {
    const path = `orders/7/${id}`;
    await orders.db.query(`UPDATE orders SET status = 'paid' WHERE id = $1`, [id]);
    await page.waitForFunction(
      (sel) => {
        const td = document.querySelector(sel);
        return td?.textContent === 'paid' && td.classList.contains('changed');
      },
      cell(path, 'status'),
      { timeout: 10_000 },
    );
    const highlighted = await page.$$eval('.changed', (els) => els.map((e) => `${(e.closest('tr') as HTMLElement | null)?.dataset.path}:${(e as HTMLElement).dataset.field}`));
    assert.deepEqual(highlighted, [`${path}:status`]);
    // The highlight is a flash, not a permanent mark.
    await page.waitForSelector('.changed', { state: 'detached', timeout: 3_000 });
    assert.equal(await page.textContent(cell(path, 'status')), 'paid');
  });
});

test('a DELETE removes the row', { timeout: 60_000 }, async (t) => {
  await screenshotOnFailure(t, page, async () => {
    const keep = await insertOrder(3, 'stoneware mug');
    await page.waitForSelector(row(`orders/3/${keep}`), { timeout: 10_000 });
    await orders.db.query(`DELETE FROM orders WHERE id = $1`, [id]);
    await page.waitForSelector(row(`orders/7/${id}`), { state: 'detached', timeout: 10_000 });
    assert.equal(await page.locator('[data-testid="topic-row"]').count(), 1);
    await page.waitForFunction(() => document.querySelector('[data-testid="topic-count"]')?.textContent === '1');
  });
});

test('after updates, the bytes received as deltas are fewer than full values would have cost', { timeout: 60_000 }, async (t) => {
  await screenshotOnFailure(t, page, async () => {
    const ids = [await insertOrder(5, 'burr grinder'), await insertOrder(5, 'digital scale')];
    for (let i = 0; i < 6; i++) {
      await orders.db.query(`UPDATE orders SET qty = qty + 1 WHERE id = ANY($1)`, [ids]);
    }
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === '7', cell(`orders/5/${ids[1]}`, 'qty'), { timeout: 10_000 });
    // The counters are refreshed once a second.
    const bytes = await page.waitForFunction(
      () => {
        // No named helpers in here: tsx would wrap them in a __name() the page does not have.
        const [delivered, full] = ['bytes-delivered', 'bytes-full'].map((id) => Number((document.querySelector(`[data-testid="${id}"]`) as HTMLElement).dataset.bytes));
        return delivered > 0 && full > delivered ? { delivered, full } : false;
      },
      undefined,
      { timeout: 5_000 },
    );
    const { delivered, full } = (await bytes.jsonValue()) as { delivered: number; full: number };
    assert.ok(delivered < full, `deltas ${delivered} B < full ${full} B`);
    assert.match((await page.textContent('[data-testid="bytes-saved"]')) ?? '', /^\d+(\.\d)? %$/);
  });
});

test('?selector= chooses the topics, and ?token= reaches the server as access_token without staying in the address bar', { timeout: 60_000 }, async (t) => {
  const other = await openPage(browser);
  try {
    await screenshotOnFailure(t, other, async () => {
      const sockets: string[] = [];
      other.on('websocket', (ws) => sockets.push(ws.url()));
      await other.goto(`${orders.baseUrl}?selector=orders/5/*&token=s3cr%C3%A9t`);
      await waitLive(other);
      const paths = await other.$$eval('[data-testid="topic-row"]', (rows) => rows.map((r) => (r as HTMLElement).dataset.path));
      assert.ok(paths.length === 2 && paths.every((p) => p?.startsWith('orders/5/')), `only customer 5: ${paths}`);
      assert.equal(new URL(sockets[0]).searchParams.get('access_token'), 's3crét');
      assert.equal(new URL(other.url()).searchParams.get('token'), null);
      assert.equal(new URL(other.url()).searchParams.get('selector'), 'orders/5/*');
      // A new selector from the form replaces the table.
      await other.fill('[data-testid="selector-input"]', 'orders/3/**');
      await other.press('[data-testid="selector-input"]', 'Enter');
      await other.waitForFunction(() => Array.from(document.querySelectorAll<HTMLElement>('[data-testid="topic-row"]')).every((r) => r.dataset.path?.startsWith('orders/3/')));
      await other.waitForSelector('[data-testid="topic-row"]');
      // An invalid selector is refused in the page, with a message saying why.
      await other.fill('[data-testid="selector-input"]', 'orders/**/x');
      await other.press('[data-testid="selector-input"]', 'Enter');
      await other.waitForSelector('[data-testid="error"]:not([hidden])');
    });
  } finally {
    await other.context().close();
  }
});
