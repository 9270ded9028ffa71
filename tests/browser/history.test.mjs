// The dashboard's charts filled from storage in headless Debian Chromium against the whole local
// stack: readings sent through the handler before the page opens (enqueued over the last 40
// minutes, as the host would deliver a backlog) are on the charts at once, from the first look
// (getdevicestate?history=1h: the minute slots of each device's row), and again after a reload;
// a reading sent while the page is open still arrives live; the detail view and its CSV read
// gethistory.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { hostBatch, invoke } from '../lib/harness.mjs';
import { connState, launchBrowser, openPage, startStack, waitUntil } from './stack.mjs';

const DEV = 'hist-probe';
let stack, browser, page;
const t0 = Date.now() - 40 * 60000;

before(async () => {
  stack = await startStack();
  // 40 readings a minute apart, temperature 10 + i, ending a minute ago
  const evs = Array.from({ length: 40 }, (_, i) => ({
    deviceId: DEV, seq: 500 + i, enqueued: new Date(t0 + i * 60000).toISOString(),
    body: { temperature: 10 + i, humidity: 40, pressure: 1000 },
  }));
  const r = await invoke(stack.handler.url, 'EnvironmentEventTrigger', hostBatch(evs, { partition: '1' }));
  assert.equal(r.status, 200, r.text);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

const history = () => page.evaluate((id) => window.enviromon.history(id, 'temperature'), DEV);

async function chartsShowBacklog() {
  await waitUntil('connected', async () => (await connState(page)) === 'connected');
  const pts = await waitUntil('40 points read from storage', async () => {
    const h = await history();
    return h.length >= 40 && h;
  }, { describe: history });
  // one per-minute mean per reading (and the latest state's own point at its lastSeen)
  const before = pts.filter(([t]) => t < Date.now() - 30000);
  assert.deepEqual([...new Set(before.map(([, v]) => v))], Array.from({ length: 40 }, (_, i) => 10 + i));
  // drawn: the temperature chart has a line for the device
  await waitUntil('a drawn line', () => page.evaluate(() => document.querySelectorAll('#charts path, #charts polyline').length > 0));
  assert.deepEqual(page.problems, []);
}

test('on load, the charts hold the readings sent before the page opened, from getdevicestate alone; again after a reload', async () => {
  const api = []; // every request to our API: path and query, in order
  const watch = (p) => p.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/api/')) api.push(`${u.pathname}${u.search}`);
  });
  page = await openPage(browser, 'about:blank');
  watch(page);
  await page.goto(`${stack.handler.url}/`);
  await chartsShowBacklog();
  const firstLoad = [...api];
  api.length = 0;
  await page.reload();
  await chartsShowBacklog();
  for (const seen of [firstLoad, [...api]]) {
    // negotiate and getdevicestate?history=1h, nothing else (the read a little after connecting
    // comes 10 s later); no gethistory
    assert.ok(seen.length <= 2, `at most two API requests a load: ${seen.join(', ')}`);
    assert.deepEqual(seen.filter((x) => x.startsWith('/api/getdevicestate')), ['/api/getdevicestate?history=1h']);
    assert.ok(seen.every((x) => !x.startsWith('/api/gethistory')), seen.join(', '));
  }
  const drawnAt = await page.evaluate(() => window.enviromon.firstLookDrawn());
  assert.equal(typeof drawnAt, 'number'); // when (figures: tests/bench/history.mjs)
});

test('a reading sent now still arrives live next to the stored ones', async () => {
  const r = await invoke(stack.handler.url, 'EnvironmentEventTrigger',
    hostBatch([{ deviceId: DEV, seq: 900, body: { temperature: 77, humidity: 40, pressure: 1000 } }], { partition: '1' }));
  assert.equal(r.status, 200, r.text);
  const h = await waitUntil('the live point', async () => {
    const x = await history();
    return x.some(([, v]) => v === 77) && x;
  }, { describe: history });
  assert.ok(h.length >= 41);
});

test("a device's detail view: a day the test wrote, over 24 h, as mean and band, and its CSV", async () => {
  // 720 readings two minutes apart over the last day, through the handler (enqueued times spread
  // over the day, as a backlog would arrive)
  const DAYDEV = 'hist-day';
  const start = Date.now() - 24 * 3600000 + 120000;
  const evs = Array.from({ length: 720 }, (_, i) => ({
    deviceId: DAYDEV, seq: 10000 + i, enqueued: new Date(start + i * 120000).toISOString(),
    body: { temperature: 15 + (i % 10), humidity: 50, pressure: 1010 },
  }));
  for (let i = 0; i < evs.length; i += 100) {
    const r = await invoke(stack.handler.url, 'EnvironmentEventTrigger', hostBatch(evs.slice(i, i + 100), { partition: '2' }));
    assert.equal(r.status, 200, r.text);
  }
  page = await openPage(browser, `${stack.handler.url}/`);
  await waitUntil('its card', () => page.$(`#cards > li[data-device-id="${DAYDEV}"] .detail-btn`));
  await page.click(`#cards > li[data-device-id="${DAYDEV}"] .detail-btn`);
  await waitUntil('the detail view, 1 h', async () => (await page.evaluate(() => window.enviromon.detail()))?.loaded);
  // 30 readings in the hour; summaries are by whole minutes, so the minute the hour starts in
  // may add one
  assert.ok([30, 31].includes((await page.evaluate(() => window.enviromon.detail())).readings));
  await page.click('#detail [data-range="24h"]');
  const d = await waitUntil('the day loaded', async () => {
    const x = await page.evaluate(() => window.enviromon.detail());
    return x?.range === '24h' && x.loaded && x;
  });
  assert.equal(d.readings, 720);
  assert.match(page.url(), /[?&]detail=hist-day&range=24h/);
  const drawn = await page.evaluate(() => [...document.querySelectorAll('#detail-charts figure')].map((f) => ({
    line: f.querySelectorAll('polyline').length, band: f.querySelectorAll('polygon.band').length,
  })));
  assert.deepEqual(drawn.map((x) => x.line > 0 && x.band > 0), [true, true, true], JSON.stringify(drawn));
  assert.match(await page.textContent('#detail-status'), /720 reading\(s\) over the last 24h/);

  // the CSV link downloads every reading of that day
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#detail-csv')]);
  const file = await download.path();
  const { readFileSync } = await import('node:fs');
  const lines = readFileSync(file, 'utf8').trimEnd().split('\r\n');
  assert.equal(lines[0], 'deviceId,time,celsius,humidity,hPa,light,partition,sequenceNumber');
  assert.equal(lines.length, 721);
  assert.ok(lines.slice(1).every((l) => l.startsWith('hist-day,')));

  // a reload keeps the view open on the same device and range
  await page.reload();
  await waitUntil('the view back after a reload', async () => {
    const x = await page.evaluate(() => window.enviromon.detail());
    return x?.device === DAYDEV && x.range === '24h' && x.loaded && x.readings === 720;
  });
  assert.deepEqual(page.problems, []);
});
