// Helpers of the browser tests: the local stack (Azurite, SignalR stand-in, handler serving a
// freshly built dashboard), the simulator, headless Debian Chromium, and reading the page's cards.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import {
  ROOT, handlerEnv, hostBatch, invoke, sleep, startAzurite, startHandler, startStandin,
} from '../lib/harness.mjs';

export const CHROMIUM = process.env.ENVIROMON_CHROMIUM || '/usr/bin/chromium';
export const OUT_DIR = path.join(ROOT, 'tests/out');

/** Starts Azurite, the stand-in and the handler (serving the dashboard); stop() undoes all of it. */
export async function startStack() {
  const started = [];
  const stack = {
    async stop() {
      for (const s of started.reverse()) {
        try { await s(); } catch { /* keep stopping the rest */ }
      }
    },
  };
  try {
    stack.dashDir = mkdtempSync(path.join(os.tmpdir(), 'enviromon-dashboard-'));
    started.push(() => rmSync(stack.dashDir, { recursive: true, force: true }));
    execFileSync(process.execPath, [path.join(ROOT, 'dashboard/build.mjs'), '--out', stack.dashDir], { stdio: 'pipe' });
    stack.az = await startAzurite();
    started.push(() => stack.az.close());
    stack.standin = await startStandin();
    started.push(() => stack.standin.stop());
    stack.handler = await startHandler(handlerEnv(stack.az, {
      AzureSignalRConnectionString: stack.standin.connectionString,
      EnviromonDashboardDir: stack.dashDir,
    }));
    started.push(() => stack.handler.stop());
  } catch (err) {
    await stack.stop();
    throw err;
  }
  return stack;
}

/** Runs tools/simulator.mjs against url. done resolves with { code, stdout, stderr }. */
export function startSimulator(url, args = []) {
  const proc = spawn(process.execPath, [path.join(ROOT, 'tools/simulator.mjs'), '--url', url, '--summary-ms', '0', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  const done = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return {
    proc,
    done,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return done;
    },
  };
}

export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: tools/install-deps.sh installs Debian's chromium`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic'],
  });
}

/** A page in a fresh context; console errors and page errors are collected in page.problems. */
export async function openPage(browser, url, { viewport = { width: 1280, height: 900 } } = {}) {
  const context = await browser.newContext({ viewport, locale: 'en-US', timezoneId: 'UTC', colorScheme: 'light' });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to|MIME type/i.test(m.text())) page.problems.push(`console: ${m.text()}`);
  });
  await page.goto(url);
  return page;
}

/** Sends readings for one device the way the host delivers them, with growing sequence numbers. */
export function readingSender(handlerUrl, partition = '7') {
  let seq = Date.now() * 1000;
  return async (deviceId, body) => {
    const r = await invoke(handlerUrl, 'EnvironmentEventTrigger', hostBatch([{ deviceId, body, seq: ++seq }], { partition }));
    if (r.status !== 200) throw new Error(`EnvironmentEventTrigger answered ${r.status}: ${r.text}`);
    return r;
  };
}

/** What the page shows: one entry per card, each field as the text a person sees. */
export function readCards(page) {
  return page.evaluate(() => [...document.querySelectorAll('#cards > li')].map((li) => {
    const text = (sel) => li.querySelector(sel)?.textContent ?? null;
    return {
      id: li.dataset.deviceId,
      name: text('.card-name'),
      stale: li.dataset.stale === 'true',
      badge: text('.badge'),
      temperature: text('[data-metric="temperature"] .value'),
      humidity: text('[data-metric="humidity"] .value'),
      pressure: text('[data-metric="pressure"] .value'),
      count: text('[data-field="count"] > *'),
      rejected: text('[data-field="rejected"] > *'),
      lastSeen: text('[data-field="lastSeen"] > *'),
    };
  }));
}

export const connState = (page) => page.evaluate(() => document.getElementById('conn').dataset.state);

/**
 * Polls check() until it returns a truthy value (which is returned) or the time is up, then
 * fails with describe() (what was seen last), so a failure says what the page showed.
 */
export async function waitUntil(what, check, { timeout = 30000, describe = null } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) {
      const seen = describe ? await describe() : last;
      throw new Error(`timed out waiting for ${what}; last seen: ${JSON.stringify(seen, null, 1)}`);
    }
    await sleep(100);
  }
}

export function ensureOutDir() {
  mkdirSync(OUT_DIR, { recursive: true });
  return OUT_DIR;
}
