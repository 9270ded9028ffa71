// The dashboard in headless Debian Chromium against the whole local stack: simulated devices
// appear, a known reading shows its exact value, the page comes back after the SignalR stand-in
// restarts, a silent device goes stale. Saves screenshots under build/screenshots/ (or the folder
// ENVIROMON_SCREENSHOTS names); ENVIROMON_DOCS_SCREENSHOT=1 also refreshes docs/dashboard.png,
// the README's picture, which a plain test run leaves alone so the checkout stays clean.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { mkdirSync } from 'node:fs';
import { ROOT } from '../lib/harness.mjs';
import {
  connState, launchBrowser, openPage, readCards, readingSender, startSimulator, startStack, waitUntil,
} from './stack.mjs';

const SIM_DEVICES = 6;
const STALE_S = 4;
const PROBE = 'greenhouse-probe';
const SHOTS = path.resolve(process.env.ENVIROMON_SCREENSHOTS || path.join(ROOT, 'build/screenshots'));
const DOCS_SHOT = process.env.ENVIROMON_DOCS_SCREENSHOT === '1';

let stack;
let sim;
let browser;
let page;
let send;

before(async () => {
  stack = await startStack();
  sim = startSimulator(stack.handler.url, ['--devices', String(SIM_DEVICES), '--interval-ms', '700',
    '--partitions', '2', '--prefix', 'sim-', '--seed', '2026']);
  send = readingSender(stack.handler.url, '5');
  browser = await launchBrowser();
  page = await openPage(browser, `${stack.handler.url}/?stale=${STALE_S}`);
});

after(async () => {
  await browser?.close();
  await sim?.stop();
  await stack?.stop();
});

const cards = () => readCards(page);
const card = async (id) => (await cards()).find((c) => c.id === id);

test('the page connects and shows every simulated device with values', async () => {
  await waitUntil('the connection state "connected"', async () => (await connState(page)) === 'connected',
    { describe: async () => ({ state: await connState(page), detail: await page.textContent('#conn-detail') }) });
  const shown = await waitUntil(`${SIM_DEVICES} simulated devices with values`, async () => {
    const sims = (await cards()).filter((c) => c.id.startsWith('sim-'));
    const full = sims.filter((c) => /^\d+(\.\d+)?$/.test(c.temperature) && /^\d+(\.\d+)?$/.test(c.humidity) &&
      /^\d+(\.\d+)?$/.test(c.pressure) && Number(c.count) > 0);
    return full.length === SIM_DEVICES && sims;
  }, { describe: cards });
  for (const c of shown) {
    assert.ok(Number(c.temperature) >= 20 && Number(c.temperature) <= 32, `${c.id} temperature ${c.temperature}`);
    assert.ok(Number(c.humidity) >= 60 && Number(c.humidity) <= 80, `${c.id} humidity ${c.humidity}`);
    assert.equal(c.name, c.id);
  }
  assert.deepEqual(shown.map((c) => c.id), shown.map((c) => c.id).sort(), 'cards are ordered by device id');
});

test('a known reading shows its exact value on that device\'s card', async () => {
  await send(PROBE, { temperature: 23.45, humidity: 67.8, pressure: 1009.6 });
  const c = await waitUntil(`${PROBE} showing 23.45 °C`, async () => {
    const p = await card(PROBE);
    return p?.temperature === '23.45' && p;
  }, { describe: () => card(PROBE) });
  assert.equal(c.humidity, '67.8');
  assert.equal(c.pressure, '1009.6');
  assert.equal(c.count, '1');
  assert.equal(c.rejected, '0');
  assert.equal(c.stale, false);
});

test('the page reconnects after the SignalR stand-in restarts, and shows later readings', async () => {
  const before = await page.evaluate(() => window.enviromon.connectionId());
  assert.ok(before, 'connected with a connection id');
  await stack.standin.stop();
  await waitUntil('the page to notice that the stand-in is gone', async () => (await connState(page)) !== 'connected',
    { describe: () => connState(page) });
  await stack.standin.start();
  await waitUntil('the page to reconnect', async () => (await connState(page)) === 'connected',
    { timeout: 60000, describe: async () => ({ state: await connState(page), detail: await page.textContent('#conn-detail') }) });
  const afterId = await page.evaluate(() => window.enviromon.connectionId());
  assert.notEqual(afterId, before, 'a new connection');

  await send(PROBE, { temperature: 24.56, humidity: 66.1, pressure: 1010.2 });
  const c = await waitUntil(`${PROBE} showing 24.56 °C after the restart`, async () => {
    const p = await card(PROBE);
    return p?.temperature === '24.56' && p;
  }, { describe: () => card(PROBE) });
  assert.equal(c.count, '2');
  // Live pushes flow again too: the simulated devices keep counting.
  const counts = Object.fromEntries((await cards()).map((x) => [x.id, Number(x.count)]));
  await waitUntil('simulated devices updating after the restart', async () =>
    (await cards()).some((x) => x.id.startsWith('sim-') && Number(x.count) > counts[x.id]), { describe: cards });
});

test('a device that falls silent is shown as stale, the others stay live', async () => {
  const c = await waitUntil(`${PROBE} to go stale`, async () => {
    const p = await card(PROBE);
    return p?.stale && p;
  }, { describe: () => card(PROBE) });
  assert.equal(c.badge, 'Stale');
  await waitUntil('the simulated devices to be live', async () =>
    (await cards()).filter((x) => x.id.startsWith('sim-') && !x.stale).length === SIM_DEVICES, { describe: cards });
  const summary = await page.textContent('#summary');
  assert.match(summary, /\d+ devices · \d+ live · [1-9]\d* stale/);
});

test('charts draw every device, and the screenshots are saved', async () => {
  await waitUntil('a line per simulated device in each chart', async () => {
    const lines = await page.evaluate(() => [...document.querySelectorAll('#charts svg')].map((s) => s.querySelectorAll('polyline').length));
    return lines.length === 3 && lines.every((n) => n >= SIM_DEVICES);
  });
  assert.deepEqual(page.problems, []);
  // For a picture worth showing, let the history grow to about a minute (nothing is asserted here).
  await waitUntil('a minute of history', () => page.evaluate(() => {
    const h = window.enviromon.history('sim-01', 'temperature');
    return h.length > 1 && h.at(-1)[0] - h[0][0] >= 60000;
  }), { timeout: 120000 });
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, 'dashboard.png'), fullPage: true });
  if (DOCS_SHOT) await page.screenshot({ path: path.join(ROOT, 'docs/dashboard.png'), fullPage: true });
  const out = SHOTS;
  const phone = await openPage(browser, `${stack.handler.url}/?stale=${STALE_S}`, { viewport: { width: 390, height: 844 } });
  await waitUntil('the phone page to show the devices', async () => (await readCards(phone)).length >= SIM_DEVICES + 1);
  await phone.waitForTimeout(3000); // a few points of history for the picture; nothing is asserted on it
  await phone.screenshot({ path: path.join(out, 'dashboard-phone.png'), fullPage: true });
  assert.deepEqual(phone.problems, []);
  await phone.context().close();
});
