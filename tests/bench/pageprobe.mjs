// Benchmark helper (not a test): where the dashboard's first load goes, in the setting of
// history.mjs's page figure (a fresh context in a running Chromium, 50 devices with an hour,
// ten picked). Prints, per variant, the medians of navigation and resource timing, the page's
// own marks and paint entries, and a floor: an empty static page from the same server.
//   ENVIROMON_BUILD=$PWD/build flock /tmp/heavy.lock node tests/bench/pageprobe.mjs
// Options (env): PP_LOADS (7 loads a variant), PP_FILL_S (30, as HB_FILL_S), PP_TRACE=FILE
// (a Chromium trace of one load of the first variant), PP_PROFILE=FILE (a V8 CPU profile of one), PP_BASE=DIR (a second variant: a built
// dashboard folder served by a second handler on the same Azurite, loads interleaved),
// PP_BASE_BIN (that handler's binary, default the same).
import { cpSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as h from '../lib/harness.mjs';
import { launchBrowser, startStack } from '../browser/stack.mjs';

const LOADS = Number(process.env.PP_LOADS || 7);
const FILL_S = Number(process.env.PP_FILL_S || 30);

function readings(prefix, n, d, seq0, t0, stepMs) {
  return Array.from({ length: n }, (_, i) => ({
    deviceId: `${prefix}-${String(i % d).padStart(2, '0')}`, seq: seq0 + i, enqueued: new Date(t0 + i * stepMs).toISOString(),
    body: { temperature: 20 + (i % 50) / 10, humidity: 50 + (i % 7), pressure: 1000 + (i % 13) },
  }));
}

async function send(url, evs, partition) {
  for (let i = 0; i < evs.length; i += 100) {
    const body = h.hostBatch(evs.slice(i, i + 100), { partition });
    for (let attempt = 0; ; attempt++) {
      const r = await h.invoke(url, 'EnvironmentEventTrigger', body);
      if (r.status === 200) break;
      if (r.status !== 500 || attempt === 5) throw new Error(`${r.status} ${r.text}`);
      await h.sleep(200 * (attempt + 1));
    }
  }
}

const median = (xs) => {
  const s = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : null;
};

/** One load in a fresh context; returns the timing entries the page kept. */
async function load(browser, url, { full, trace = null, profile = null }) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  if (trace) await browser.startTracing(page, { path: trace, screenshots: true });
  let cdp = null;
  if (profile) {
    cdp = await context.newCDPSession(page);
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: Number(process.env.PP_INTERVAL || 100) });
    await cdp.send('Profiler.start');
  }
  await page.goto(url);
  if (full) {
    await page.waitForFunction(() => window.enviromon?.firstLookDrawn() != null &&
      [...document.querySelectorAll('#charts figure')].every((f) => f.querySelectorAll('polyline').length >= 10), null, { timeout: 60000, polling: 5 });
  }
  await page.waitForLoadState('load');
  await h.sleep(300);
  if (trace) await browser.stopTracing();
  if (cdp) writeFileSync(profile, JSON.stringify((await cdp.send('Profiler.stop')).profile));
  const t = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0].toJSON();
    const res = performance.getEntriesByType('resource').map((r) => ({
      name: new URL(r.name).pathname.replace(/^\//, '') || '/', start: r.startTime, reqStart: r.requestStart,
      respStart: r.responseStart, end: r.responseEnd, size: r.encodedBodySize,
    }));
    const marks = Object.fromEntries(performance.getEntriesByType('mark').map((m) => [m.name.replace('enviromon:', ''), m.startTime]));
    const paints = Object.fromEntries(performance.getEntriesByType('paint').map((p) => [p.name, p.startTime]));
    return { nav, res, marks, paints, drawn: window.enviromon?.firstLookDrawn?.() ?? null };
  });
  await context.close();
  return t;
}

function report(label, loads) {
  const row = (name, xs) => console.log(`  ${name.padEnd(34)} ${String(Math.round(median(xs) ?? -1)).padStart(5)} ms  (${xs.map((x) => (x == null ? '-' : Math.round(x))).join(', ')})`);
  console.log(`${label} (${loads.length} loads, medians):`);
  row('document responseStart', loads.map((l) => l.nav.responseStart));
  row('document responseEnd', loads.map((l) => l.nav.responseEnd));
  row('domInteractive', loads.map((l) => l.nav.domInteractive));
  row('DOMContentLoaded end', loads.map((l) => l.nav.domContentLoadedEventEnd));
  row('load event end', loads.map((l) => l.nav.loadEventEnd));
  row('first-paint', loads.map((l) => l.paints['first-paint']));
  row('first-contentful-paint', loads.map((l) => l.paints['first-contentful-paint']));
  const marks = new Set(loads.flatMap((l) => Object.keys(l.marks)));
  for (const m of marks) row(`mark ${m}`, loads.map((l) => l.marks[m]));
  if (loads[0].drawn !== null) row('firstLookDrawn()', loads.map((l) => l.drawn));
  const names = [...new Set(loads.flatMap((l) => l.res.map((r) => r.name)))];
  for (const n of names) {
    const of = loads.map((l) => l.res.find((r) => r.name === n)).filter(Boolean);
    console.log(`  res ${n.slice(0, 40).padEnd(40)} start ${Math.round(median(of.map((r) => r.start)))} reqStart ${Math.round(median(of.map((r) => r.reqStart)))} ` +
      `respStart ${Math.round(median(of.map((r) => r.respStart)))} end ${Math.round(median(of.map((r) => r.end)))} (${median(of.map((r) => r.size))} B)`);
  }
}

const stack = await startStack();
const browser = await launchBrowser();
let other = null;
try {
  const now = Date.now();
  const nfill = Math.floor(3600 / FILL_S) * 50;
  const fill = readings('pl', nfill, 50, 1, now - 3600000 + 100, (FILL_S * 1000) / 50);
  await Promise.all([0, 1].map((p) => send(stack.handler.url, fill.filter((_, i) => i % 2 === p), `p${p}`)));
  writeFileSync(path.join(stack.dashDir, 'floor.html'), '<!doctype html><html lang="en"><meta charset="utf-8"><title>floor</title><p>floor</p></html>\n');
  const variants = [{ label: 'this worktree', url: stack.handler.url, loads: [], floor: [] }];
  // PP_EXTRA=DIR: files copied next to the page; PP_PAGES=a.html,b.html: more static pages timed
  if (process.env.PP_EXTRA) cpSync(process.env.PP_EXTRA, stack.dashDir, { recursive: true });
  const extra = (process.env.PP_PAGES || '').split(',').filter(Boolean).map((p) => ({ page: p, loads: [] }));
  if (process.env.PP_BASE) {
    writeFileSync(path.join(process.env.PP_BASE, 'floor.html'), '<!doctype html><html lang="en"><meta charset="utf-8"><title>floor</title><p>floor</p></html>\n');
    other = await h.startHandler(h.handlerEnv(stack.az, {
      AzureSignalRConnectionString: stack.standin.connectionString, EnviromonDashboardDir: process.env.PP_BASE,
    }), process.env.PP_BASE_BIN ? { bin: process.env.PP_BASE_BIN } : {});
    variants.push({ label: `base ${process.env.PP_BASE}`, url: other.url, loads: [], floor: [] });
  }
  const picks = Array.from({ length: 10 }, (_, i) => `pick=pl-${String(i).padStart(2, '0')}`).join('&');
  // one warm-up load each (the first context of a browser pays for more than later ones)
  for (const v of variants) await load(browser, `${v.url}/?${picks}`, { full: true });
  if (process.env.PP_TRACE) {
    await load(browser, `${variants[0].url}/?${picks}`, { full: true, trace: process.env.PP_TRACE });
    console.log(`trace of one load in ${process.env.PP_TRACE}`);
  }
  if (process.env.PP_PROFILE) {
    await load(browser, `${variants[0].url}/?${picks}`, { full: true, profile: process.env.PP_PROFILE });
    console.log(`CPU profile of one load in ${process.env.PP_PROFILE}`);
  }
  for (let k = 0; k < LOADS; k++) {
    for (const v of (k % 2 ? [...variants].reverse() : variants)) {
      v.loads.push(await load(browser, `${v.url}/?${picks}`, { full: true }));
      v.floor.push(await load(browser, `${v.url}/floor.html`, { full: false }));
    }
    for (const x of extra) x.loads.push(await load(browser, `${variants[0].url}/${x.page}`, { full: false }));
  }
  for (const x of extra) report(`page ${x.page}`, x.loads);
  for (const v of variants) {
    report(`${v.label}: the dashboard`, v.loads);
    report(`${v.label}: floor (empty page)`, v.floor);
  }
} finally {
  await browser.close();
  await other?.stop();
  await stack.stop();
}
