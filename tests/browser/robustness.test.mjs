// The simulator's out-of-range and malformed readings are rejected by the handler and never reach
// the dashboard; junk broadcast through sendsignalrmessage and hostile device ids neither break
// the page nor run as markup.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { tableAll } from '../lib/harness.mjs';
import {
  connState, launchBrowser, openPage, readCards, readingSender, startSimulator, startStack, waitUntil,
} from './stack.mjs';

let stack;
let browser;
let page;

before(async () => {
  stack = await startStack();
  browser = await launchBrowser();
  page = await openPage(browser, `${stack.handler.url}/`);
  await waitUntil('the page to connect', async () => (await connState(page)) === 'connected',
    { describe: () => page.textContent('#conn') });
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

test('out-of-range and malformed readings are rejected by the handler and do not reach the page', async () => {
  const sim = startSimulator(stack.handler.url, ['--devices', '4', '--prefix', 'bad-', '--partitions', '2',
    '--bad-fraction', '0.4', '--rate', '200', '--count', '400', '--seed', '99', '--json', '--quiet']);
  const r = await sim.done;
  const report = JSON.parse(r.stdout.trim().split('\n').at(-1));
  assert.equal(report.failedEvents, 0, `the handler refused batches: ${report.lastError}`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(report.delivered, 400);
  assert.ok(report.bad > 100, `enough bad readings: ${report.bad}`);
  for (const d of Object.values(report.devices)) {
    for (const kind of ['out-of-range', 'not-json', 'nan-string', 'missing-fields']) {
      assert.ok(d.badKinds[kind] > 0, `every kind of bad reading is sent: ${JSON.stringify(d)}`);
    }
  }

  // The handler's counts: good readings in count, bad ones in rejected, each kept with a reason.
  const state = await (await fetch(`${stack.handler.url}/api/getdevicestate`)).json();
  const rejectedRows = await tableAll(stack.az, 'RejectedTelemetry');
  for (const [id, d] of Object.entries(report.devices)) {
    const dev = state.find((x) => x.deviceId === id);
    assert.ok(dev, `${id} in getdevicestate`);
    assert.equal(dev.count, d.good, `${id} count`);
    assert.equal(dev.rejected, d.bad, `${id} rejected`);
    const rows = rejectedRows.filter((x) => x.DeviceId === id);
    assert.equal(rows.length, d.bad, `${id}: rejected readings kept`);
    assert.ok(rows.every((x) => typeof x.Reason === 'string' && x.Reason.length > 0));
  }

  // The page shows the same counts, and only values from the simulator's good range.
  const shown = await waitUntil('the page to show every bad-* device with the handler\'s counts', async () => {
    const cards = (await readCards(page)).filter((c) => c.id.startsWith('bad-'));
    const ok = Object.entries(report.devices).every(([id, d]) => {
      const c = cards.find((x) => x.id === id);
      return c && c.count === String(d.good) && c.rejected === String(d.bad);
    });
    return ok && cards;
  }, { describe: () => readCards(page) });
  for (const c of shown) {
    assert.ok(Number(c.temperature) >= 20 && Number(c.temperature) <= 32, `${c.id} shows temperature ${c.temperature}`);
    assert.ok(Number(c.humidity) >= 60 && Number(c.humidity) <= 80, `${c.id} shows humidity ${c.humidity}`);
    assert.ok(Number(c.pressure) >= 980 && Number(c.pressure) <= 1045, `${c.id} shows pressure ${c.pressure}`);
  }
  const seen = await page.evaluate((ids) => ids.map((id) => ({
    id,
    temperature: window.enviromon.history(id, 'temperature').map(([, v]) => v),
    humidity: window.enviromon.history(id, 'humidity').map(([, v]) => v),
    pressure: window.enviromon.history(id, 'pressure').map(([, v]) => v),
  })), Object.keys(report.devices));
  for (const h of seen) {
    assert.ok(h.temperature.length > 0);
    assert.ok(h.temperature.every((v) => v >= 20 && v <= 32), `${h.id} temperatures ${h.temperature}`);
    assert.ok(h.humidity.every((v) => v >= 60 && v <= 80), `${h.id} humidities ${h.humidity}`);
    assert.ok(h.pressure.every((v) => v >= 980 && v <= 1045), `${h.id} pressures ${h.pressure}`);
  }
  assert.equal(await page.evaluate(() => window.enviromon.ignored()), 0, 'the handler pushed nothing the page had to ignore');
  assert.deepEqual(page.problems, []);
});

test('junk broadcasts and hostile device ids neither break the page nor run as markup', async () => {
  const send = readingSender(stack.handler.url, '3');
  const hostile = '<img src=x onerror="window.__pwned=1">';
  await send(hostile, { temperature: 21.25 });
  await waitUntil('the hostile device id to show as text', async () =>
    (await readCards(page)).find((c) => c.id === hostile && c.temperature === '21.25'), { describe: () => readCards(page) });

  const broadcast = async (body) => {
    const res = await fetch(`${stack.handler.url}/api/sendsignalrmessage`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body,
    });
    assert.ok(res.status >= 200 && res.status < 300, `sendsignalrmessage answered ${res.status}`);
  };
  const before = await readCards(page);
  const note = '{"text":"<script>window.__pwned=2</script><b>bold?</b>"}';
  await broadcast('[1,"two",null,{"deviceId":5},{"deviceId":"bad-01","temperature":"NaN","count":999999}]');
  await broadcast('"just a string"');
  await broadcast('{"deviceId":"bad-02","temperature":500,"count":999999,"lastSeen":"2099-01-01T00:00:00Z"}');
  await broadcast('{"deviceId":"bad-03","count":-1}');
  await broadcast(note);
  await waitUntil('the last broadcast to show as text', async () =>
    (await page.textContent('#notice-text')) === note, { describe: () => page.textContent('#notice-text') });

  // A proper device object after the junk still shows, so the page kept working.
  await broadcast(JSON.stringify({ deviceId: 'broadcast-device', temperature: 19.5, humidity: 55, count: 1, lastSeen: new Date().toISOString() }));
  await waitUntil('the broadcast device card', async () =>
    (await readCards(page)).find((c) => c.id === 'broadcast-device' && c.temperature === '19.5'), { describe: () => readCards(page) });
  await send(hostile, { temperature: 22.5 });
  await waitUntil('a later reading of the hostile device', async () =>
    (await readCards(page)).find((c) => c.id === hostile && c.temperature === '22.5'), { describe: () => readCards(page) });

  const after = await readCards(page);
  const values = (cards, id) => {
    const c = cards.find((x) => x.id === id);
    return [c.temperature, c.humidity, c.pressure, c.count, c.rejected];
  };
  for (const id of ['bad-01', 'bad-02', 'bad-03']) {
    assert.deepEqual(values(after, id), values(before, id), `${id} untouched by junk`);
  }
  const dom = await page.evaluate(() => ({
    pwned: window.__pwned ?? null,
    injected: document.querySelectorAll('#cards img, #cards script, #cards b, #notice img, #notice script, #notice b, #legend img').length,
    name: [...document.querySelectorAll('#cards > li')].find((li) => li.dataset.deviceId.startsWith('<img'))?.querySelector('.card-name').textContent,
    legend: [...document.querySelectorAll('#legend button')].map((b) => b.textContent),
    ignored: window.enviromon.ignored(),
  }));
  assert.equal(dom.pwned, null);
  assert.equal(dom.injected, 0);
  assert.equal(dom.name, hostile);
  assert.ok(dom.legend.includes(hostile));
  assert.ok(dom.ignored >= 5, `junk items counted as ignored: ${dom.ignored}`);
  // The same in the table layout: the id is a row header's text, nothing in the table is markup.
  await page.click('#view-table');
  const row = await waitUntil('the hostile device\'s table row', () => page.evaluate((id) => {
    const tr = [...document.querySelectorAll('#rows > tr')].find((r) => r.dataset.deviceId === id);
    return tr && !tr.hidden && { name: tr.querySelector('th').textContent, temperature: tr.querySelector('[data-field="temperature"]').textContent };
  }, hostile));
  assert.deepEqual(row, { name: hostile, temperature: '22.5' });
  assert.equal(await page.$$eval('#rows img, #rows script, #rows b', (l) => l.length), 0);
  assert.equal(await page.evaluate(() => window.__pwned ?? null), null);
  await page.click('#view-cards');
  assert.equal(await connState(page), 'connected');
  assert.deepEqual(page.problems, []);
});

test('keyboard: the legend buttons hide and show a device in the charts', async () => {
  const cls = await page.evaluate(() =>
    [...document.querySelector('#legend button .swatch').classList].find((c) => /^s\d$/.test(c)));
  const marks = () => page.evaluate((c) => document.querySelector('#charts svg').querySelectorAll(`.series.${c}`).length, cls);
  const pressed = () => page.evaluate(() => document.activeElement.getAttribute('aria-pressed'));
  await waitUntil('the first legend device drawn in the chart', async () => (await marks()) > 0);
  await page.focus('#legend button');
  assert.equal(await pressed(), 'true');
  await page.keyboard.press('Enter');
  assert.equal(await pressed(), 'false');
  await waitUntil('the device hidden in the chart', async () => (await marks()) === 0, { describe: marks });
  await page.keyboard.press('Space');
  assert.equal(await pressed(), 'true');
  await waitUntil('the device shown again', async () => (await marks()) > 0, { describe: marks });
  // Landmarks and the live region a screen reader relies on.
  const a11y = await page.evaluate(() => ({
    main: !!document.querySelector('main'),
    banner: !!document.querySelector('body > header'),
    live: document.getElementById('conn').getAttribute('aria-live'),
    role: document.getElementById('conn').getAttribute('role'),
    lang: document.documentElement.lang,
    svgLabelled: [...document.querySelectorAll('#charts svg')].every((s) => s.getAttribute('role') === 'img' && s.getAttribute('aria-labelledby')),
  }));
  assert.deepEqual(a11y, { main: true, banner: true, live: 'polite', role: 'status', lang: 'en', svgLabelled: true });
});
