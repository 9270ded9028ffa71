// Benchmark (figures, not pass/fail): the dashboard in headless Debian Chromium with a fleet of
// simulated devices pushing live through the local stack (Azurite, SignalR stand-in, handler).
// For each page variant, over BENCH_DASH_SECONDS after a warm-up:
//   - CPU used by Chromium (all its processes, /proc), as a share of one core
//   - main-thread busy share: Chromium's TaskDuration (CDP Performance.getMetrics) per second;
//     wall-clock, so it grows when the machine is busy
//   - script, layout and style time per second (same source)
//   - the page's own timings (window.enviromon.perf(), when it has them): ms per frame's render
//     and per chart redraw, p50 / p95 / max
//   - JS heap in use at the end
// Variants: the table layout (the default for a fleet this size), the cards layout (?view=cards),
// and, with BENCH_DASH_REF=<git ref>, the page as it was at that ref (e.g. the commit before the
// fleet view), served by the same stack to the same simulated fleet.
// Options (env): BENCH_DASH_DEVICES (300), BENCH_DASH_INTERVAL_MS (2000: each device sends every
// this many ms), BENCH_DASH_SECONDS (20), BENCH_DASH_REF (none).
//   ENVIROMON_BUILD=$PWD/build node tests/bench/dashboard.mjs
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, sleep } from '../lib/harness.mjs';
import { launchBrowser, openPage, startSimulator, startStack, waitUntil } from '../browser/stack.mjs';

const DEVICES = Number(process.env.BENCH_DASH_DEVICES || 300);
const INTERVAL_MS = Number(process.env.BENCH_DASH_INTERVAL_MS || 2000);
const SECONDS = Number(process.env.BENCH_DASH_SECONDS || 20);
const REF = process.env.BENCH_DASH_REF || '';

/** Builds the dashboard as it was at git ref into dir (replacing what is there). */
function buildAt(ref, dir) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'enviromon-dash-ref-'));
  try {
    const tar = execFileSync('git', ['-C', ROOT, 'archive', '--format=tar', ref, 'dashboard'], { maxBuffer: 64 << 20 });
    execFileSync('tar', ['-x', '-C', tmp], { input: tar });
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(tmp, 'node_modules'));
    const out = path.join(tmp, 'out');
    mkdirSync(out);
    execFileSync(process.execPath, [path.join(tmp, 'dashboard/build.mjs'), '--out', out], { stdio: 'pipe' });
    rmSync(dir, { recursive: true, force: true });
    cpSync(out, dir, { recursive: true });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * CPU seconds used so far by every Chromium process this script started (browser, renderers,
 * GPU and utility processes), from /proc: what the page costs in CPU, unlike Chromium's task
 * durations, which are wall-clock and grow when the machine is busy.
 */
function chromiumCpuSeconds() {
  const tick = 100; // USER_HZ on Linux
  const procs = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      procs.set(Number(name), { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / tick });
    } catch { /* gone */ }
  }
  const mine = (pid) => {
    for (let p = pid, n = 0; p > 1 && n < 20; p = procs.get(p)?.ppid ?? 0, n++) if (p === process.pid) return true;
    return false;
  };
  let total = 0;
  for (const [pid, p] of procs) {
    if (!mine(pid)) continue;
    let exe = '';
    try { exe = readlinkSync(`/proc/${pid}/exe`); } catch { continue; }
    if (/chrom/.test(path.basename(exe))) total += p.cpu;
  }
  return total;
}

const metricsOf = async (cdp) => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));

async function measure(browser, url, label) {
  const page = await openPage(browser, url);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  await waitUntil(`${label}: ${DEVICES} devices on the page`, () => page.evaluate((n) =>
    window.enviromon.devices().length >= n, DEVICES), { timeout: 60000 });
  // the first look: ms after navigation started when the charts were first drawn (pages before
  // getdevicestate?history=1h do not say)
  const firstLook = await page.evaluate(() => window.enviromon.firstLookDrawn?.() ?? null);
  await sleep(5000); // warm-up: the first full read, the first renders
  const hasPerf = await page.evaluate(() => typeof window.enviromon.perf === 'function');
  const m0 = await metricsOf(cdp);
  const c0 = chromiumCpuSeconds();
  const t0 = performance.now();
  const p0 = hasPerf ? await page.evaluate(() => window.enviromon.perf()) : null;
  await sleep(SECONDS * 1000);
  const m1 = await metricsOf(cdp);
  const c1 = chromiumCpuSeconds();
  const secs = (performance.now() - t0) / 1000;
  const perf = hasPerf ? await page.evaluate(() => window.enviromon.perf()) : null;
  const per = (k) => (1000 * (m1[k] - m0[k])) / secs; // ms per second
  const fmt = (x) => (x === null ? '-' : x.toFixed(2));
  console.log(`${label}:`);
  if (firstLook !== null) console.log(`  first look drawn        ${firstLook.toFixed(0)} ms after navigation started (devices and their last hour from one getdevicestate)`);
  console.log(`  Chromium CPU            ${((100 * (c1 - c0)) / secs).toFixed(1)} % of one core (all its processes, from /proc)`);
  console.log(`  main thread busy        ${(per('TaskDuration') / 10).toFixed(1)} % (${per('TaskDuration').toFixed(0)} ms/s)`);
  console.log(`  script / layout / style ${per('ScriptDuration').toFixed(0)} / ${per('LayoutDuration').toFixed(0)} / ${per('RecalcStyleDuration').toFixed(0)} ms/s`);
  console.log(`  layouts, style recalcs  ${((m1.LayoutCount - m0.LayoutCount) / secs).toFixed(1)} / ${((m1.RecalcStyleCount - m0.RecalcStyleCount) / secs).toFixed(1)} per second`);
  console.log(`  DOM nodes               ${m1.Nodes}`);
  console.log(`  JS heap used            ${(m1.JSHeapUsedSize / 1048576).toFixed(1)} MiB`);
  if (perf) {
    const frames = perf.render.count - (p0?.render.count ?? 0);
    console.log(`  renders                 ${frames} in ${secs.toFixed(1)} s (on animation frames, at most every 200 ms); ms each p50 ${fmt(perf.render.p50)}, p95 ${fmt(perf.render.p95)}, max ${fmt(perf.render.max)} (last ${perf.render.count})`);
    console.log(`  chart redraws           ms each p50 ${fmt(perf.draw.p50)}, p95 ${fmt(perf.draw.p95)}, max ${fmt(perf.draw.max)} (last ${perf.draw.count})`);
  }
  if (page.problems.length) console.log(`  page problems           ${page.problems.join('; ')}`);
  await page.context().close();
}

const stack = await startStack();
let sim;
let browser;
try {
  sim = startSimulator(stack.handler.url, ['--devices', String(DEVICES), '--interval-ms', String(INTERVAL_MS),
    '--partitions', '4', '--bad-fraction', '0.01', '--seed', '7', '--quiet']);
  browser = await launchBrowser();
  console.log(`fleet                   ${DEVICES} devices, a reading every ${INTERVAL_MS} ms each ` +
    `(${((DEVICES * 1000) / INTERVAL_MS).toFixed(0)} readings/s), pushed live through the stand-in; ${SECONDS} s per variant`);
  const base = `${stack.handler.url}/?stale=60`;
  await measure(browser, base, 'table layout (default above 12 devices)');
  await measure(browser, `${base}&view=cards`, 'cards layout (?view=cards)');
  if (REF) {
    buildAt(REF, stack.dashDir);
    await measure(browser, base, `the page at ${REF}`);
  }
} finally {
  await browser?.close();
  await sim?.stop();
  await stack.stop();
}
