/**
 * The operator console in a real browser (Debian's Chromium through playwright-core, no browser
 * download) against `oncely ui` and real workers on the real broker and database: lag visibly
 * falls to 0 while a worker catches up; a rewind is planned, its plan checked against
 * `oncely offsets reset`'s dry run, executed, and its records re-applied once; a dead letter is
 * requeued and applied once; a form posted from another origin changes nothing. Screenshots of
 * every page go to test-results/console/ (docs/console.md links them).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applicationCounts, FIXTURES, makeProjectionTables, oncely, producePayments, ROOT, startOncely } from '../cli/support.js';
import { cleanup } from '../support/cleanup.js';
import { createTopic, freshSchema, kafkaClient, pgPool, randomName } from '../support/fixtures.js';
import { until } from '../support/oncely.js';
import { freePort } from '../support/ports.js';

const CHROMIUM = process.env.ONCELY_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = resolve(ROOT, 'test-results/console');
const V1 = resolve(FIXTURES, 'projection-v1.ts');
const ORDERS_FIXED = resolve(ROOT, 'test/failure/fixtures/orders-fixed.ts');
const ORDERS_BUGGY = resolve(ROOT, 'test/failure/fixtures/orders-buggy.ts');
const TOKEN = 'browser-write-token-42424242';
/** Page loads under a loaded CI machine can take seconds: poll generously (a hang guard, not a timing). */
const POLL = { timeout: 60_000, interval: 200 };

let browser: Browser | undefined;
beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `No Chromium at ${CHROMIUM}: install Debian's package (apt-get install chromium; .ci/run does) or set ONCELY_CHROMIUM.`,
    );
  }
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // As root Chromium needs --no-sandbox; the others keep it off this machine's closed network.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});
afterAll(async () => {
  await browser?.close();
});

const shot = (page: Page, name: string) => page.screenshot({ path: resolve(SHOTS, `${name}.png`), fullPage: true });

describe('the console in Chromium', () => {
  it('watches lag fall to 0, rewinds with a checked plan, requeues a dead letter, and refuses another origin', async () => {
    const topic = await createTopic(2);
    const schema = freshSchema('web');
    const group = randomName('web');
    expect((await oncely(['migrate', '--schema', schema])).code).toBe(0);
    const tables = await makeProjectionTables(schema);
    await producePayments(topic, 2, 150);
    // A second group with dead letters, for the requeue: orders with a negative quantity fail.
    const ordersTopic = await createTopic(1);
    const ordersGroup = randomName('orders');
    const ordersTable = `${schema}.orders`;
    await pgPool().query(`create table ${ordersTable} (order_id text not null, qty int not null, "offset" bigint not null)`);
    const producer = kafkaClient().producer();
    await producer.connect();
    await producer.send({
      topic: ordersTopic,
      messages: [3, -2, 4].map((qty, i) => ({ value: JSON.stringify({ id: `o${i}`, qty }) })),
    });
    await producer.disconnect();
    const env = {
      ONCELY_SCHEMA: schema,
      APP_SCHEMA: schema,
      APP_TOPIC: topic,
      APP_GROUP: group,
      ORDERS_GROUP: ordersGroup,
      ORDERS_TOPIC: ordersTopic,
      ORDERS_TABLE: ordersTable,
    };
    const orders = await oncely(['run', ORDERS_BUGGY, '--until', 'caught-up', '--no-progress'], env);
    expect(orders.code, orders.stderr).toBe(0);
    // The first positions, then the console (it refreshes its live pages every second).
    const firstRun = await oncely(['run', V1, '--until', 'caught-up', '--no-progress', '--batch-max-records', '50'], env);
    expect(firstRun.code, firstRun.stderr).toBe(0);
    await producePayments(topic, 2, 150, 150);

    const port = await freePort();
    const ui = startOncely(['ui', '--port', String(port), '--refresh', '1', '--app', ORDERS_FIXED], {
      ...env,
      ONCELY_UI_TOKEN: TOKEN,
    });
    cleanup(async () => {
      if (ui.child.exitCode === null) {
        ui.child.kill('SIGTERM');
        await ui.result;
      }
    });
    const base = `http://127.0.0.1:${port}`;
    await until(async () => (await fetch(base).catch(() => undefined))?.status === 200, 'the console answers');
    const context = await browser!.newContext({ viewport: { width: 1280, height: 800 } });
    cleanup(() => context.close());
    const page = await context.newPage();

    // Lag: 300 behind, then a slow worker catches up while the page refreshes itself.
    await page.goto(base);
    await shot(page, 'groups');
    await page.getByRole('link', { name: group }).click();
    await expect.poll(async () => Number(await page.locator('#total-lag').textContent()), POLL).toBe(300);
    const worker = startOncely(['run', V1, '--until', 'caught-up', '--no-progress', '--batch-max-records', '5'], {
      ...env,
      APP_DELAY_MS: '20',
    });
    const seen = new Set<number>();
    await until(
      async () => {
        const text = await page
          .locator('#total-lag')
          .textContent()
          .catch(() => null);
        if (text !== null && /^\d+$/.test(text)) seen.add(Number(text));
        return seen.has(0);
      },
      'the lag shown reaches 0',
      120_000,
    );
    expect(
      [...seen].some((v) => v > 0 && v < 300),
      `values seen: ${[...seen].join(', ')}`,
    ).toBe(true);
    expect((await worker.result).code).toBe(0);
    await page.waitForTimeout(1200); // one more refresh draws the sparkline's last point
    await shot(page, 'group');

    // Rewind: reading needs no session; the plan is offsets reset's dry run; executing needs one.
    await page.goto(`${base}/login`);
    await page.getByLabel('Write token').fill(TOKEN);
    await page.getByRole('button', { name: 'Start a session' }).click();
    await page.goto(`${base}/groups/${encodeURIComponent(group)}/rewind`);
    await page.getByLabel('Move to').selectOption('shift');
    await page.getByLabel(/^Value/).fill('-40');
    await page.getByRole('button', { name: 'Show the plan' }).click();
    await expect.poll(() => page.locator('#plan-summary').textContent(), POLL).toContain('80 record(s) to reprocess, 0 to skip');
    const dry = await oncely(['offsets', 'reset', '--group', group, '--shift-by', '-40', '--json'], env);
    const dryPlan = JSON.parse(dry.stdout) as {
      reprocess: string;
      entries: Array<{ partition: number; current: string; next: string }>;
    };
    expect(dryPlan.reprocess).toBe('80');
    for (const e of dryPlan.entries) {
      const row = page.locator('tbody tr').filter({ has: page.locator(`td:nth-child(2):text-is("${e.partition}")`) });
      await expect.poll(() => row.locator('td:nth-child(4)').textContent(), POLL).toBe(e.next);
    }
    await shot(page, 'rewind-plan');
    await page.getByLabel('Your name (audit)').fill('alice');
    await page.getByRole('button', { name: 'Execute this plan' }).click();
    await expect
      .poll(() => page.locator('#result').textContent(), POLL)
      .toContain('Executed: 80 record(s) to reprocess, 0 skipped.');
    await shot(page, 'rewind-done');
    const reapply = await oncely(['run', V1, '--until', 'caught-up', '--no-progress'], env);
    expect(reapply.code, reapply.stderr).toBe(0);
    const counts = await applicationCounts(tables.applications);
    for (const p of [0, 1]) for (let o = 0; o < 300; o++) expect(counts.get(`${p}:${o}`), `${p}:${o}`).toBe(o >= 260 ? 2 : 1);
    await page.goto(`${base}/groups/${encodeURIComponent(group)}/history`);
    expect(await page.locator('td', { hasText: 'ui:alice' }).count()).toBe(1);
    await shot(page, 'history');
    await page.goto(`${base}/explain?group=${encodeURIComponent(group)}&record=${encodeURIComponent(`${topic}/0/270`)}`);
    expect(await page.locator('#verdict').textContent()).toBe('applied');
    await shot(page, 'explain');
    await page.goto(`${base}/groups/${encodeURIComponent(group)}/checkpoints`);
    await shot(page, 'checkpoints');

    // The dead letter, requeued with the fixed handler: applied once, no longer pending.
    await page.goto(`${base}/groups/${encodeURIComponent(ordersGroup)}/dlq`);
    await shot(page, 'dead-letters');
    await page.locator('tbody a').first().click();
    await shot(page, 'dead-letter');
    await page.getByRole('button', { name: "Requeue with the app's current handler" }).click();
    await expect.poll(() => page.locator('#result').textContent(), POLL).toBe('Applied once with the current handler.');
    const applied = await pgPool().query(`select order_id, qty from ${ordersTable} order by "offset"`);
    expect(applied.rows).toEqual([
      { order_id: 'o0', qty: 3 },
      { order_id: 'o1', qty: -2 },
      { order_id: 'o2', qty: 4 },
    ]);
    await page.goto(`${base}/groups/${encodeURIComponent(ordersGroup)}/dlq`);
    expect(await page.locator('tbody tr').count()).toBe(0); // nothing pending any more

    // On a phone: the page itself never scrolls sideways (wide tables scroll in their own box).
    const phone = await browser!.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    cleanup(() => phone.close());
    const phonePage = await phone.newPage();
    for (const path of ['/', `/groups/${encodeURIComponent(group)}`, `/groups/${encodeURIComponent(group)}/rewind`]) {
      await phonePage.goto(`${base}${path}`);
      expect(Number(await phonePage.evaluate('document.documentElement.scrollWidth')), path).toBeLessThanOrEqual(390);
    }
    await shot(phonePage, 'phone-group');

    // Another origin: a page elsewhere posts a rewind form to the console; nothing moves.
    const before = (
      await pgPool().query(`select partition, next_offset::text from ${schema}.partitions where group_id = $1 order by 1`, [
        group,
      ])
    ).rows;
    const csrf = await (async () => {
      await page.goto(`${base}/groups/${encodeURIComponent(group)}/rewind?plan=1&kind=earliest`);
      return page.locator('input[name="csrf"]').first().getAttribute('value');
    })();
    const evil = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(`<form id="f" method="post" action="${base}/groups/${encodeURIComponent(group)}/rewind">
        <input name="kind" value="earliest"><input name="value" value=""><input name="topics" value="">
        <input name="csrf" value="${csrf}"><input name="confirm" value="${group}"><button>go</button></form>`);
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', () => r()));
    cleanup(() => new Promise<void>((r) => evil.close(() => r())));
    const evilPage = await context.newPage();
    await evilPage.goto(`http://localhost:${(evil.address() as AddressInfo).port}/`);
    const [response] = await Promise.all([evilPage.waitForNavigation(), evilPage.click('button')]);
    expect(response?.status()).toBe(403);
    expect(await evilPage.textContent('#error')).toMatch(/refused/);
    const after = (
      await pgPool().query(`select partition, next_offset::text from ${schema}.partitions where group_id = $1 order by 1`, [
        group,
      ])
    ).rows;
    expect(after).toEqual(before);
    // And without a session (a fresh browser context): no execute button, and a post is refused.
    const stranger = await browser!.newContext();
    cleanup(() => stranger.close());
    const strangerPage = await stranger.newPage();
    await strangerPage.goto(`${base}/groups/${encodeURIComponent(group)}/rewind?plan=1&kind=earliest`);
    expect(await strangerPage.getByRole('button', { name: 'Execute this plan' }).count()).toBe(0);
    const refused = await strangerPage.request.post(`${base}/groups/${encodeURIComponent(group)}/rewind`, {
      form: { kind: 'earliest', value: '', topics: '', csrf: csrf ?? '' },
      headers: { origin: base },
    });
    expect(refused.status()).toBe(403);
  });
});
