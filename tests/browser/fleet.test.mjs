// The dashboard with a fleet of 300 devices, in headless Debian Chromium against the whole local
// stack: batches posted to the handler as the host delivers them (some devices silent for half an
// hour, some with rejected readings); the summary counts what was sent, the table is the default
// layout, filtering finds a device, sorting orders the rows, and picking a device charts it (and
// only the picked devices), by mouse and keyboard, across a reload.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT, hostBatch, invoke } from '../lib/harness.mjs';
import { connState, launchBrowser, openPage, readingSender, startStack, waitUntil } from './stack.mjs';

const N = 300;
const SHOTS = path.resolve(process.env.ENVIROMON_SCREENSHOTS || path.join(ROOT, 'build/screenshots'));
const STALE_S = 600;
const ids = Array.from({ length: N }, (_, i) => `fleet-${String(i + 1).padStart(3, '0')}`);
const isStaleDev = (i) => i % 60 === 7; // 5 devices whose readings are 30 minutes old
const rejectsOf = (i) => (i % 40 === 3 ? 1 + (i % 3) : 0); // 8 devices with 1 to 3 rejected readings
const tempOf = (i, k) => Math.round((18 + ((i * 37) % 97) / 8 + k * 0.5) * 100) / 100; // k-th reading

let stack;
let browser;
let page;
let send;
const sent = {}; // id -> { temperature (the latest), count, rejected, stale }

before(async () => {
  stack = await startStack();
  // Two good readings per device, and the bad ones, in batches of 100 on three partitions.
  const now = Date.now();
  const events = [[], [], []];
  let seq = now * 1000;
  for (const [i, id] of ids.entries()) {
    const p = events[i % 3];
    const t0 = isStaleDev(i) ? now - 30 * 60000 : now - 5000;
    for (let k = 0; k < 2; k++) {
      p.push({ deviceId: id, seq: ++seq, enqueued: new Date(t0 + k * 1000).toISOString(),
        body: { temperature: tempOf(i, k), humidity: 50 + (i % 40), pressure: 1000 + (i % 20) } });
    }
    for (let k = 0; k < rejectsOf(i); k++) {
      p.push({ deviceId: id, seq: ++seq, enqueued: new Date(t0 + 2000 + k).toISOString(), body: { temperature: 500 } });
    }
    sent[id] = { temperature: tempOf(i, 1), count: 2, rejected: rejectsOf(i), stale: isStaleDev(i) };
  }
  for (const [p, list] of events.entries()) {
    for (let o = 0; o < list.length; o += 100) {
      const r = await invoke(stack.handler.url, 'EnvironmentEventTrigger', hostBatch(list.slice(o, o + 100), { partition: String(p) }));
      assert.equal(r.status, 200, r.text);
    }
  }
  send = readingSender(stack.handler.url, '9');
  browser = await launchBrowser();
  page = await openPage(browser, `${stack.handler.url}/?stale=${STALE_S}`);
  await waitUntil('the page to connect', async () => (await connState(page)) === 'connected',
    { describe: () => page.textContent('#conn') });
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

const visibleRows = () => page.evaluate(() => [...document.querySelectorAll('#rows > tr:not([hidden])')].map((tr) => tr.dataset.deviceId));
const charted = () => page.evaluate(() => window.enviromon.charted());
const legend = () => page.evaluate(() => [...document.querySelectorAll('#legend button')].map((b) => b.dataset.deviceId));
/** Per chart: the series classes (s0..s9) of its lines and last-point marks. */
const chartMarks = () => page.evaluate(() => [...document.querySelectorAll('#charts svg')].map((svg) => ({
  lines: [...svg.querySelectorAll('polyline.series')].map((e) => [...e.classList].find((c) => /^s\d$/.test(c))),
  last: [...svg.querySelectorAll('circle.series.last')].map((e) => [...e.classList].find((c) => /^s\d$/.test(c))),
})));
const ofSent = (pred) => ids.filter((id) => pred(sent[id]));

test('the summary counts what was sent, and a fleet this size is shown as a table', async () => {
  const num = (sel) => page.$eval(sel, (e) => Number(e.textContent.replace(/,/g, '')));
  await waitUntil(`${N} devices in the summary`, async () => (await num('#n-all')) === N &&
    (await num('#n-messages')) === 2 * N, { describe: () => page.textContent('.fleet-bar') });
  const expected = {
    all: N,
    live: ofSent((d) => !d.stale).length,
    stale: ofSent((d) => d.stale).length,
    rejects: ofSent((d) => d.rejected > 0).length,
    messages: 2 * N,
    rejected: ids.reduce((a, id) => a + sent[id].rejected, 0),
  };
  assert.deepEqual(expected, { all: 300, live: 295, stale: 5, rejects: 8, messages: 600, rejected: expected.rejected });
  const shown = {};
  for (const k of Object.keys(expected)) shown[k] = await num(`#n-${k}`);
  assert.deepEqual(shown, expected);
  assert.equal(await page.textContent('#summary'), '300 devices · 295 live · 5 stale · 8 with rejects');

  assert.equal(await page.evaluate(() => window.enviromon.view()), 'table');
  assert.equal(await page.isVisible('#cards'), false);
  assert.equal(await page.$$eval('#cards > li', (l) => l.length), 0, 'no cards are made for the table layout');
  assert.deepEqual(await visibleRows(), ids, 'every device has a row, by id');
  // The rows are laid out as grids (so off-screen rows skip layout); Chromium's accessibility
  // tree must still see a table: a row per device, sortable column headers, and a device's id as
  // its row's header, also for a row far below the scrolled view.
  const cdp = await page.context().newCDPSession(page);
  const { nodes } = await cdp.send('Accessibility.getFullAXTree');
  const roles = {};
  for (const n of nodes) roles[n.role?.value] = (roles[n.role?.value] ?? 0) + 1;
  const { root } = await cdp.send('DOM.getDocument');
  const far = await cdp.send('Accessibility.queryAXTree', { nodeId: root.nodeId, accessibleName: 'fleet-287', role: 'rowheader' });
  const farBox = await cdp.send('Accessibility.queryAXTree', { nodeId: root.nodeId, accessibleName: 'Chart fleet-287', role: 'checkbox' });
  const farMore = await cdp.send('Accessibility.queryAXTree', { nodeId: root.nodeId, accessibleName: 'History of fleet-287', role: 'button' });
  await cdp.detach();
  assert.equal(roles.table, 1, JSON.stringify(roles));
  assert.equal(roles.columnheader, 11, JSON.stringify(roles)); // the last one: each row's History button
  assert.equal(roles.row, N + 1, JSON.stringify(roles));
  assert.equal(far.nodes.length, 1, 'the row header of a row off screen');
  assert.equal(farBox.nodes.length, 1, 'the pick box of a row off screen');
  assert.equal(farMore.nodes.length, 1, 'the History button of a row off screen');
  // What one row says, field by field, against what was sent.
  const row = await page.$eval('#rows > tr[data-device-id="fleet-044"]', (tr) =>
    Object.fromEntries([...tr.querySelectorAll('[data-field]')].map((td) => [td.dataset.field, td.textContent])));
  const d = sent['fleet-044'];
  assert.equal(row.temperature, String(d.temperature));
  assert.equal(row.count, '2');
  assert.equal(row.rejected, String(d.rejected));
  assert.ok(d.rejected > 0);
  assert.deepEqual(page.problems, []);
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, 'dashboard-fleet.png'), fullPage: true }); // to look at; nothing asserted
});

test('filtering by id or by state finds the devices', async () => {
  await page.fill('#find', 'fleet-123');
  await waitUntil('only fleet-123', async () => JSON.stringify(await visibleRows()) === '["fleet-123"]', { describe: visibleRows });
  assert.equal(await page.textContent('#shown'), 'Showing 1 of 300 devices');
  await page.fill('#find', '12');
  const twelve = ids.filter((id) => id.includes('12'));
  await waitUntil('the ids containing 12', async () => JSON.stringify(await visibleRows()) === JSON.stringify(twelve), { describe: visibleRows });
  await page.fill('#find', 'no-such-device');
  await waitUntil('no row and a way back', async () => (await visibleRows()).length === 0 && page.isVisible('#no-match'));
  await page.click('#clear-filter');
  await waitUntil('every row again', async () => (await visibleRows()).length === N);

  for (const [state, pred] of [['stale', (d) => d.stale], ['rejects', (d) => d.rejected > 0], ['live', (d) => !d.stale]]) {
    await page.click(`#tiles button[data-state="${state}"]`);
    const want = ofSent(pred);
    await waitUntil(`the ${state} devices`, async () => JSON.stringify(await visibleRows()) === JSON.stringify(want), { describe: visibleRows });
    assert.equal(await page.getAttribute(`#tiles button[data-state="${state}"]`, 'aria-pressed'), 'true');
  }
  // Text and state together, and the choice is kept in the URL.
  await page.fill('#find', '-00');
  await waitUntil('live devices with -00', async () => JSON.stringify(await visibleRows()) ===
    JSON.stringify(ofSent((d) => !d.stale).filter((id) => id.includes('-00'))), { describe: visibleRows });
  assert.match(page.url(), /[?&]q=-00(&|$)/);
  assert.match(page.url(), /[?&]state=live(&|$)/);
  await page.click('#tiles button[data-state="all"]');
  await page.fill('#find', '');
  await waitUntil('every row again', async () => (await visibleRows()).length === N);
});

test('sorting by a column orders the rows, and a second click reverses', async () => {
  const byTemp = [...ids].sort((a, b) => sent[b].temperature - sent[a].temperature || (a < b ? -1 : 1));
  await page.click('#table thead button[data-sort="temperature"]');
  await waitUntil('rows by temperature, highest first', async () => JSON.stringify(await visibleRows()) === JSON.stringify(byTemp),
    { describe: async () => (await visibleRows()).slice(0, 10) });
  assert.equal(await page.$eval('#table thead button[data-sort="temperature"]', (b) => b.parentElement.getAttribute('aria-sort')), 'descending');
  const temps = await page.$$eval('#rows > tr [data-field="temperature"]', (l) => l.map((td) => Number(td.textContent)));
  assert.deepEqual(temps, [...temps].sort((a, b) => b - a), 'the temperatures shown go down');

  await page.click('#table thead button[data-sort="temperature"]');
  const asc = [...ids].sort((a, b) => sent[a].temperature - sent[b].temperature || (a < b ? -1 : 1));
  await waitUntil('rows by temperature, lowest first', async () => JSON.stringify(await visibleRows()) === JSON.stringify(asc),
    { describe: async () => (await visibleRows()).slice(0, 10) });

  await page.click('#table thead button[data-sort="rejected"]');
  const rej = ofSent((d) => d.rejected > 0).sort((a, b) => sent[b].rejected - sent[a].rejected || (a < b ? -1 : 1));
  await waitUntil('the devices with rejects first, most first', async () =>
    JSON.stringify((await visibleRows()).slice(0, rej.length)) === JSON.stringify(rej), { describe: async () => (await visibleRows()).slice(0, 10) });
  assert.match(page.url(), /[?&]sort=rejected-desc(&|$)/);

  await page.click('#table thead button[data-sort="deviceId"]');
  await waitUntil('rows by id again', async () => JSON.stringify(await visibleRows()) === JSON.stringify(ids));
});

test('with nothing picked the charts show the few that need attention, never the whole fleet', async () => {
  const rej = ofSent((d) => d.rejected > 0).sort((a, b) => sent[b].rejected - sent[a].rejected || (a < b ? -1 : 1));
  const stale = ofSent((d) => d.stale);
  const want = [...rej, ...stale].slice(0, 10);
  const c = await waitUntil('the attention set', async () => {
    const x = await charted();
    return x.reason === 'attention' && JSON.stringify(x.ids) === JSON.stringify(want) && x;
  }, { describe: charted });
  assert.equal(c.needing, rej.length + stale.length);
  assert.deepEqual(await legend(), want);
  await waitUntil('the charts drawn', async () => (await chartMarks()).every((m) => m.last.length > 0));
  for (const m of await chartMarks()) assert.ok(m.lines.length + m.last.length <= 2 * want.length, 'at most the palette is drawn');
  assert.match(await page.textContent('#chart-note'), /No device picked: charting 10 of the 13 devices that need attention/);
});

test('picking a device charts it, and only the picked devices; the picks survive a reload', async () => {
  await page.click('#rows > tr[data-device-id="fleet-150"] [data-field="humidity"]');
  await waitUntil('fleet-150 alone in the charts', async () => {
    const c = await charted();
    return c.reason === 'picked' && JSON.stringify(c.ids) === '["fleet-150"]';
  }, { describe: charted });
  assert.deepEqual(await legend(), ['fleet-150']);
  await waitUntil('its latest reading marked in each chart', async () =>
    (await chartMarks()).every((x) => JSON.stringify(x.last) === '["s0"]'), { describe: chartMarks });
  // The page holds one reading of it (from getdevicestate); one more, pushed live, makes a line.
  await send('fleet-150', { temperature: 21.75, humidity: 55, pressure: 1004 });
  sent['fleet-150'] = { ...sent['fleet-150'], temperature: 21.75, count: 3 };
  const one = await waitUntil('one line in each chart', async () => {
    const m = await chartMarks();
    return m.every((x) => JSON.stringify(x.lines) === '["s0"]' && JSON.stringify(x.last) === '["s0"]') && m;
  }, { describe: chartMarks });
  assert.equal(one.length, 3);
  assert.equal(await page.isChecked('#rows > tr[data-device-id="fleet-150"] input[type="checkbox"]'), true);
  assert.equal(await page.$eval('#rows > tr[data-device-id="fleet-150"] .swatch', (e) => e.classList.contains('s0')), true);
  // The chart's text alternative names the device's latest value (the line may already be there
  // from the stored readings read on load, so wait for the pushed one).
  await waitUntil('the pushed value in the text alternative', async () =>
    new RegExp(`fleet-150 ${sent['fleet-150'].temperature} °C`).test(await page.textContent('#chart-temperature-desc')),
  { describe: () => page.textContent('#chart-temperature-desc') });

  // Keyboard: the row's box takes focus and Space picks.
  await page.focus('#rows > tr[data-device-id="fleet-151"] input[type="checkbox"]');
  await page.keyboard.press('Space');
  await waitUntil('two devices charted', async () => JSON.stringify((await charted()).ids) === '["fleet-150","fleet-151"]', { describe: charted });
  // fleet-151: its mark, in the second colour (whether its stored reading, read on load through
  // gethistory, and its state make a line depends on the minute it was sent in).
  await waitUntil('two devices in each chart', async () => (await chartMarks()).every((x) =>
    JSON.stringify(x.last) === '["s0","s1"]' && x.lines.includes('s0')), { describe: chartMarks });
  assert.deepEqual(await page.evaluate(() => window.enviromon.picked()), ['fleet-150', 'fleet-151']);
  assert.match(page.url(), /[?&]pick=fleet-150&pick=fleet-151(&|$)/);

  // Picking again unpicks.
  await page.keyboard.press('Space');
  await waitUntil('fleet-151 unpicked', async () => JSON.stringify((await charted()).ids) === '["fleet-150"]', { describe: charted });

  await page.reload();
  await waitUntil('the page back, with its pick', async () => (await connState(page)) === 'connected' &&
    JSON.stringify((await charted()).ids) === '["fleet-150"]' &&
    page.isChecked('#rows > tr[data-device-id="fleet-150"] input[type="checkbox"]'), { describe: charted });
  await waitUntil('fleet-150 drawn after the reload', async () =>
    (await chartMarks()).every((x) => JSON.stringify(x.last) === '["s0"]'), { describe: chartMarks });
  assert.deepEqual(page.problems, []);
});

test('at most ten devices are picked; clearing the picks goes back to the attention set', async () => {
  for (let i = 151; i < 160; i++) await page.click(`#rows > tr[data-device-id="fleet-${i}"] th`);
  await waitUntil('ten picked', async () => (await charted()).ids.length === 10, { describe: charted });
  await page.click('#rows > tr[data-device-id="fleet-200"] th');
  await waitUntil('the eleventh refused, with a note', async () => /At most 10 devices/.test(await page.textContent('#pick-note')));
  assert.equal((await charted()).ids.includes('fleet-200'), false);
  assert.equal(await page.isChecked('#rows > tr[data-device-id="fleet-200"] input[type="checkbox"]'), false);
  // The same through the box itself, which the click ticks before the page refuses.
  await page.click('#rows > tr[data-device-id="fleet-201"] input[type="checkbox"]');
  await waitUntil('the box of the refused pick unticked', async () =>
    !(await page.isChecked('#rows > tr[data-device-id="fleet-201"] input[type="checkbox"]')));
  assert.equal((await charted()).ids.includes('fleet-201'), false);
  const marks = await chartMarks();
  assert.ok(marks.every((m) => new Set(m.last).size === 10), `ten colours: ${JSON.stringify(marks)}`);

  await page.click('#clear-picks');
  await waitUntil('the attention set again', async () => (await charted()).reason === 'attention', { describe: charted });
  assert.doesNotMatch(page.url(), /pick=/);
  assert.equal(await page.$$eval('#rows input[type="checkbox"]:checked', (l) => l.length), 0);
});

test('the layout toggle shows every device as a card, and back', async () => {
  await page.click('#view-cards');
  await waitUntil('300 cards', async () => (await page.$$eval('#cards > li:not([hidden])', (l) => l.length)) === N);
  assert.equal(await page.isVisible('#table-wrap'), false);
  assert.equal(await page.getAttribute('#view-cards', 'aria-pressed'), 'true');
  assert.match(page.url(), /[?&]view=cards(&|$)/);
  // A card's Chart button picks, as a row does.
  await page.click('#cards > li[data-device-id="fleet-007"] .pick-btn');
  await waitUntil('fleet-007 picked from its card', async () => JSON.stringify((await charted()).ids) === '["fleet-007"]', { describe: charted });
  assert.equal(await page.getAttribute('#cards > li[data-device-id="fleet-007"] .pick-btn', 'aria-pressed'), 'true');
  await page.click('#view-table');
  await waitUntil('the table again, with the pick', async () => (await visibleRows()).length === N &&
    page.isChecked('#rows > tr[data-device-id="fleet-007"] input[type="checkbox"]'));
  assert.deepEqual(page.problems, []);
});

test('hostile or malformed query parameters fall back to the defaults and never run as markup', async () => {
  const hostile = '<img src=x onerror="window.__pwned=1">';
  const q = new URLSearchParams([['stale', String(STALE_S)], ['pick', hostile], ['pick', ''], ['pick', 'fleet-010'],
    ['pick', 'fleet-010'], ['sort', '__proto__-asc'], ['state', '<b>x</b>'], ['view', 'constructor'], ['q', 'x'.repeat(5000)]]);
  const p2 = await openPage(browser, `${stack.handler.url}/?${q}`);
  try {
    await waitUntil('the page with every device and its picks', async () => (await connState(p2)) === 'connected' &&
      (await p2.evaluate(() => window.enviromon.devices().length === 300 && window.enviromon.view() === 'table')) &&
      JSON.stringify((await p2.evaluate(() => window.enviromon.charted())).ids) === JSON.stringify([hostile, 'fleet-010']),
    { describe: () => p2.evaluate(() => window.enviromon.charted()) });
    const seen = await p2.evaluate(() => ({
      pwned: window.__pwned ?? null,
      markup: document.querySelectorAll('#legend img, #legend b, main img, main b').length,
      legend: [...document.querySelectorAll('#legend button')].map((b) => b.textContent),
      view: window.enviromon.view(),
      state: document.querySelector('#tiles [aria-pressed="true"]').dataset.state,
      find: document.getElementById('find').value.length,
      sorted: document.querySelector('#table th[aria-sort]')?.querySelector('button').dataset.sort,
    }));
    assert.deepEqual(seen, { pwned: null, markup: 0, legend: [hostile, 'fleet-010'], view: 'table', state: 'all', find: 128, sorted: 'deviceId' });
    assert.deepEqual(p2.problems, []);
  } finally {
    await p2.context().close();
  }
});

test("a row's History button opens that device's detail view (without picking it), and a row click still picks", async () => {
  const p2 = await openPage(browser, `${stack.handler.url}/?stale=${STALE_S}`);
  try {
    const id = 'fleet-042';
    const btn = `#rows > tr[data-device-id="${id}"] .detail-btn`;
    await waitUntil('the table with its History buttons', () => p2.$(btn));
    await p2.click(btn);
    const d = await waitUntil('the detail view of the row\'s device', async () => {
      const x = await p2.evaluate(() => window.enviromon.detail());
      return x?.loaded && x;
    }, { describe: () => p2.evaluate(() => window.enviromon.detail()) });
    assert.equal(d.device, id);
    assert.equal(d.readings, 2); // the two good readings the fleet sent in the last hour
    assert.equal(await p2.textContent('#detail-title'), id);
    assert.ok(await p2.evaluate(() => document.getElementById('detail').open));
    assert.match(p2.url(), /[?&]detail=fleet-042/);
    assert.deepEqual(await p2.evaluate(() => window.enviromon.picked()), [], 'the button does not pick');
    // the keyboard way: the dialog closes with Escape, Tab reaches the button, Enter opens it
    await p2.keyboard.press('Escape');
    await waitUntil('the dialog closed', async () => !(await p2.evaluate(() => document.getElementById('detail').open)));
    await p2.focus(`#rows > tr[data-device-id="fleet-043"] .detail-btn`);
    await p2.keyboard.press('Enter');
    await waitUntil('the detail view of fleet-043', async () => (await p2.evaluate(() => window.enviromon.detail()))?.device === 'fleet-043');
    await p2.keyboard.press('Escape');
    await p2.click(`#rows > tr[data-device-id="${id}"] td[data-field="count"]`);
    await waitUntil('the clicked row picked', async () =>
      JSON.stringify(await p2.evaluate(() => window.enviromon.picked())) === JSON.stringify([id]));
    assert.deepEqual(p2.problems, []);
  } finally {
    await p2.context().close();
  }
});
