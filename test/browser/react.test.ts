// client/react.ts in a real browser: the example app (examples/react, useTopics + useTopic under
// React's StrictMode) against a real Postgres shows rows written, changed and deleted there.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { type OrdersService, ensureBuilt, launchChromium, openPage, screenshotOnFailure, startOrdersService } from '../support/browser.ts';

let orders: OrdersService;
let browser: Browser;
let page: Page;

before(async () => {
  const dist = await ensureBuilt('examples/react');
  orders = await startOrdersService(dist);
  browser = await launchChromium();
  page = await openPage(browser);
}, { timeout: 180_000 });

after(async () => {
  await browser?.close();
  await orders?.stop();
}, { timeout: 60_000 });

const item = (path: string) => `[data-testid="orders"] li[data-path="${path}"]`;

test('useTopics: rows inserted, updated and deleted in Postgres appear, change and disappear in the React app', { timeout: 60_000 }, async (t) => {
  await screenshotOnFailure(t, page, async () => {
    const { rows: before } = await orders.db.query<{ id: number }>(`INSERT INTO orders (customer_id, item, qty, price, status) VALUES (4, 'kettle', 1, 30, 'new') RETURNING id`);
    await page.goto(orders.baseUrl);
    await page.waitForSelector('[data-testid="state"][data-live="true"]', { timeout: 10_000 });
    // The snapshot value was there before the page subscribed.
    await page.waitForSelector(item(`orders/4/${before[0].id}`));

    const { rows } = await orders.db.query<{ id: number }>(`INSERT INTO orders (customer_id, item, qty, price, status) VALUES (9, 'scale', 2, 12.5, 'new') RETURNING id`);
    const path = `orders/9/${rows[0].id}`;
    await page.waitForSelector(item(path), { timeout: 10_000 });
    assert.equal(await page.textContent('[data-testid="count"]'), '2 topics match orders/**');

    await orders.db.query(`UPDATE orders SET status = 'shipped' WHERE id = $1`, [rows[0].id]);
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === 'shipped', `${item(path)} [data-field="status"]`, { timeout: 10_000 });

    await orders.db.query(`DELETE FROM orders WHERE id = $1`, [rows[0].id]);
    await page.waitForSelector(item(path), { state: 'detached', timeout: 10_000 });
    assert.equal(await page.textContent('[data-testid="count"]'), '1 topics match orders/**');
  });
});

test('useTopic: one topic with its version follows updates and reports its removal', { timeout: 60_000 }, async (t) => {
  await screenshotOnFailure(t, page, async () => {
    const { rows } = await orders.db.query<{ id: number }>(`INSERT INTO orders (customer_id, item, qty, price, status) VALUES (2, 'grinder', 1, 99, 'new') RETURNING id`);
    const path = `orders/2/${rows[0].id}`;
    await page.click(`${item(path)} button`, { timeout: 10_000 });
    await page.waitForSelector('[data-testid="detail-value"]');
    assert.equal(JSON.parse((await page.textContent('[data-testid="detail-value"]'))!).status, 'new');
    const v1 = Number((await page.textContent('[data-testid="detail-version"]'))!.slice(1));

    await orders.db.query(`UPDATE orders SET qty = 3 WHERE id = $1`, [rows[0].id]);
    await page.waitForFunction(() => JSON.parse(document.querySelector('[data-testid="detail-value"]')?.textContent ?? '{}').qty === 3, undefined, { timeout: 10_000 });
    assert.equal(await page.textContent('[data-testid="detail-version"]'), `v${v1 + 1}`);

    await orders.db.query(`DELETE FROM orders WHERE id = $1`, [rows[0].id]);
    await page.waitForSelector('[data-testid="detail-gone"]', { timeout: 10_000 });
    assert.equal(await page.textContent('[data-testid="detail-gone"]'), 'This order no longer exists.');
  });
});
