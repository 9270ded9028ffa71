// `make run` itself: started in its own process group with free ports, it prints a URL that
// answers, the dashboard loads there and shows live devices, and after SIGINT (what Ctrl-C sends
// to the whole foreground group) nothing it started is left. A port in use is refused clearly.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ROOT, freePort, sleep } from '../lib/harness.mjs';
import { connState, launchBrowser, openPage, readCards, waitUntil } from '../browser/stack.mjs';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** The environment of a fresh shell: without the outer make's jobserver and test settings. */
function cleanEnv(extra) {
  const env = { ...process.env };
  for (const k of ['MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'MAKEOVERRIDES', 'ENVIROMON_BUILD', 'NODE_TEST_CONTEXT']) delete env[k];
  return { ...env, ...extra };
}

function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    if (err.code === 'ESRCH') return false;
    throw err;
  }
}

function pidAlive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

test('make run: the URL answers, the page shows live devices, and Ctrl-C leaves nothing behind', { timeout: 600000 }, async () => {
  const ports = {
    ENVIROMON_PORT: await freePort(),
    AZURITE_TABLE_PORT: await freePort(),
    SIGNALR_PORT: await freePort(),
  };
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'enviromon-run-'));
  cleanups.push(() => rmSync(runDir, { recursive: true, force: true }));
  const env = cleanEnv({
    ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
    ENVIROMON_RUN_DIR: runDir, SIM_DEVICES: '3', SIM_INTERVAL_MS: '500',
  });
  const make = spawn('make', ['--no-print-directory', 'run'], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const pgid = make.pid;
  let out = '';
  make.stdout.on('data', (d) => { out += d; });
  make.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => make.once('exit', (code, signal) => resolve({ code, signal })));
  cleanups.push(async () => {
    if (groupAlive(pgid)) {
      process.kill(-pgid, 'SIGKILL');
      await sleep(200);
    }
  });

  // `make run` installs what is missing and builds first, so this wait can be long the first time.
  const url = await waitUntil('make run to print the URL', () => {
    if (make.exitCode !== null) throw new Error(`make run exited ${make.exitCode}:\n${out}`);
    return out.match(/Open (http:\/\/\S+)/)?.[1];
  }, { timeout: 540000, describe: () => out });
  assert.equal(url, `http://127.0.0.1:${ports.ENVIROMON_PORT}/`);

  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/html/);
  assert.match(await res.text(), /<title>Enviromon/);

  const browser = await launchBrowser();
  try {
    const page = await openPage(browser, url);
    await waitUntil('the page to connect', async () => (await connState(page)) === 'connected',
      { timeout: 60000, describe: () => page.textContent('#conn') });
    await waitUntil('three simulated devices with readings', async () =>
      (await readCards(page)).filter((c) => /^sim-/.test(c.id) && /^\d/.test(c.temperature)).length === 3,
    { timeout: 60000, describe: () => readCards(page) });
    // A fresh start fills the last hour (the simulator's --backfill, through the handler): once it
    // is in storage, a page shows the whole hour on load.
    const filled = await waitUntil('the last hour of sim-01 in storage', async () => {
      const r = await fetch(`${url}api/gethistory?device=sim-01&last=1h&resolution=minute`);
      const body = r.ok ? await r.json() : null;
      const n = (body?.points ?? []).reduce((a, p) => a + p.count, 0);
      return n >= 7000 && body;
    }, { timeout: 120000, describe: () => out.slice(-500) });
    assert.ok(Date.parse(filled.points[0].time) < Date.now() - 55 * 60000, filled.points[0].time);
    await page.reload();
    const oldest = await waitUntil('the hour on the charts', async () => {
      const h = await page.evaluate(() => window.enviromon.history('sim-01', 'temperature'));
      return h.length >= 55 && h[0][0];
    }, { timeout: 30000 });
    assert.ok(oldest < Date.now() - 55 * 60000, new Date(oldest).toISOString());
    assert.deepEqual(page.problems, []);
  } finally {
    await browser.close();
  }

  const started = readFileSync(path.join(runDir, 'pids'), 'utf8').trim().split('\n').map((l) => {
    const [name, pid] = l.split(' ');
    return { name, pid: Number(pid) };
  });
  assert.deepEqual(started.map((s) => s.name), ['azurite', 'signalr-standin', 'handler', 'simulator']);

  process.kill(-pgid, 'SIGINT'); // what Ctrl-C in a terminal does
  const { code, signal } = await exited;
  assert.ok(code !== null || signal !== null);

  // make exits after the script, which exits after stopping (and reaping) everything.
  await waitUntil('every process of the group to be gone', () => !groupAlive(pgid), { timeout: 15000 });
  for (const s of started) assert.equal(pidAlive(s.pid), false, `${s.name} (pid ${s.pid}) still running`);
  for (const [name, port] of Object.entries(ports)) assert.equal(await portFree(port), true, `${name} ${port} still taken`);
  assert.match(out, /run-local: stopped/);
});

test('a port in use is refused with the setting to change', async () => {
  const blocker = net.createServer();
  await new Promise((r) => blocker.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => blocker.close(r)));
  const port = blocker.address().port;
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'enviromon-run-'));
  cleanups.push(() => rmSync(runDir, { recursive: true, force: true }));
  const env = cleanEnv({
    SIGNALR_PORT: String(port), ENVIROMON_PORT: String(await freePort()),
    AZURITE_TABLE_PORT: String(await freePort()), ENVIROMON_RUN_DIR: runDir,
  });
  const proc = spawn(path.join(ROOT, 'tools/run-local.sh'), [], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const code = await new Promise((resolve) => proc.once('exit', resolve));
  assert.equal(code, 1);
  assert.match(err, new RegExp(`port ${port} is already in use; choose another with SIGNALR_PORT=`));
});
