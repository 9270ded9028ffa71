// deploy/verify.mjs, the logic behind `deploy/deploy.sh verify`, run against make run's stack:
// Azurite (Table Storage), the SignalR Service stand-in and the handler, all real and on free
// loopback ports. IoT Hub cannot run here, so the reading enters through the handler's
// POST /EnvironmentEventTrigger (--send local), as the Functions host would deliver it from the
// Event Hubs endpoint; the polling of getdevicestate, the negotiate check and every message are
// the real ones. Then each stage is broken in turn, and verify must name that stage.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { BUILD, ROOT, freePort, handlerEnv, sleep, startAzurite, startHandler, startStandin } from '../lib/harness.mjs';
import { sandbox, scriptEnv } from './lib.mjs';

const VERIFY = path.join(ROOT, 'deploy/verify.mjs');
const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** Runs verify.mjs; resolves { status, stdout, stderr }. */
function verify(args, env = process.env) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [VERIFY, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('error', reject);
    p.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

const local = (h, device, extra = []) => ['--api', h.url, '--device-id', device, '--send', 'local',
  '--trigger-url', `${h.url}/EnvironmentEventTrigger`, '--interval-ms', '100', '--request-timeout-ms', '3000', ...extra];

test('verify: a reading sent through the trigger is found by getdevicestate, negotiate answers', { timeout: 120000 }, async () => {
  const az = await startAzurite();
  cleanups.push(() => az.stop());
  const standin = await startStandin();
  cleanups.push(() => standin.stop());
  const h = await startHandler(handlerEnv(az, { AzureSignalRConnectionString: standin.connectionString }));
  cleanups.push(() => h.stop());

  const r = await verify(local(h, 'verify-dev-1', ['--timeout', '60']));
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /\[ok\] the function .* answers and Table Storage is readable/);
  assert.match(r.stdout, /\[ok\] the handler took the batch/);
  assert.match(r.stdout, /\[ok\] the reading is stored and served by getdevicestate: \d+\.\d s after sending \(count 1,/);
  assert.match(r.stdout, new RegExp(`\\[ok\\] SignalR negotiate hands out http://127\\.0\\.0\\.1:${standin.port}/client/`));
  assert.match(r.stdout, /Verified end to end in \d+\.\d s\./);

  // A second run finds its own new reading (not the first one's): the count moves on.
  const again = await verify(local(h, 'verify-dev-1', ['--timeout', '60']));
  assert.equal(again.status, 0, again.stdout + again.stderr);
  assert.match(again.stdout, /\(count 2,/);
});

test('verify against `make run` itself (tools/run-local.sh): passes, then names the function once the handler is stopped', { timeout: 180000 }, async () => {
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'enviromon-verify-run-'));
  cleanups.push(() => rmSync(runDir, { recursive: true, force: true }));
  const port = await freePort();
  const env = { ...process.env };
  for (const k of ['MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'NODE_TEST_CONTEXT']) delete env[k];
  Object.assign(env, {
    ENVIROMON_PORT: String(port), AZURITE_TABLE_PORT: String(await freePort()), SIGNALR_PORT: String(await freePort()),
    ENVIROMON_RUN_DIR: runDir, ENVIROMON_BUILD: BUILD, SIM_DEVICES: '0',
  });
  const run = spawn(path.join(ROOT, 'tools/run-local.sh'), [], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  run.stdout.on('data', (d) => { out += d; });
  run.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => run.once('exit', resolve));
  cleanups.push(async () => {
    try { process.kill(-run.pid, 'SIGINT'); } catch { /* gone already */ }
    await Promise.race([exited, sleep(15000)]);
  });
  for (let i = 0; !/Open http:\/\//.test(out); i++) {
    if (run.exitCode !== null || i > 1200) throw new Error(`make run's script did not start:\n${out}`);
    await sleep(100);
  }
  const api = { url: `http://127.0.0.1:${port}` };

  let r = await verify(local(api, 'verify-run-1', ['--timeout', '60']));
  assert.equal(r.status, 0, r.stdout + r.stderr + out);
  assert.match(r.stdout, /\[ok\] the reading is stored and served by getdevicestate/);
  assert.match(r.stdout, /\[ok\] SignalR negotiate hands out http:\/\/(localhost|127\.0\.0\.1):\d+\/client\//);

  // Stop only the handler (run-local.sh records what it started in $ENVIROMON_RUN_DIR/pids).
  const pids = readFileSync(path.join(runDir, 'pids'), 'utf8').trim().split('\n').map((l) => l.split(' '));
  const handler = Number(pids.find(([name]) => name === 'handler')[1]);
  process.kill(handler, 'SIGTERM');
  for (let i = 0; i < 100; i++) {
    try { process.kill(handler, 0); } catch { break; }
    await sleep(100);
  }
  r = await verify(local(api, 'verify-run-1', ['--timeout', '2']));
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /FAILED at the function \(EnvironmentEventTrigger and the app\)/);
  assert.match(r.stdout, /handler's own output/);
});

test('verify names the stage that does not answer: the function, Table Storage, SignalR negotiate', { timeout: 180000 }, async () => {
  const az = await startAzurite();
  cleanups.push(() => az.stop());

  // No SignalR configured: the reading is stored, negotiate answers 503.
  const noSignalr = await startHandler(handlerEnv(az));
  cleanups.push(() => noSignalr.stop());
  let r = await verify(local(noSignalr, 'verify-dev-2', ['--timeout', '30']));
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /\[ok\] the reading is stored/);
  assert.match(r.stdout, /FAILED at SignalR negotiate: POST \S+\/api\/negotiate: HTTP 503/);
  assert.match(r.stdout, /How to look:\n.*handler's own output/);

  // The handler stopped: nothing answers on its port; verify gives up after its timeout and
  // names the function stage.
  await noSignalr.stop();
  r = await verify(local(noSignalr, 'verify-dev-2', ['--timeout', '2']));
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /FAILED at the function \(EnvironmentEventTrigger and the app\): GET \S+\/api\/getdevicestate: no answer \(ECONNREFUSED\)/);

  // Table Storage stopped: the handler answers, the store does not.
  const h = await startHandler(handlerEnv(az));
  cleanups.push(() => h.stop());
  await az.stop();
  r = await verify(local(h, 'verify-dev-3', ['--timeout', '2']));
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /FAILED at Table Storage: getdevicestate could not read the DeviceState table: HTTP 50[23]/);
});

test('verify: a reading that never appears is the function stage, with the log query to run', { timeout: 120000 }, async () => {
  const az = await startAzurite();
  cleanups.push(() => az.stop());
  const h = await startHandler(handlerEnv(az));
  cleanups.push(() => h.stop());
  // The trigger URL goes to a function that takes the batch (any 2xx) but stores nothing: a
  // stand-in for "IoT Hub accepted it, the trigger never ran". getdevicestate is the real one.
  const http = await import('node:http');
  const sink = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end('{}')); });
  await new Promise((res) => sink.listen(0, '127.0.0.1', res));
  cleanups.push(() => new Promise((res) => sink.close(res)));
  const args = local(h, 'verify-dev-4', ['--timeout', '2']);
  args[args.indexOf('--trigger-url') + 1] = `http://127.0.0.1:${sink.address().port}/EnvironmentEventTrigger`;
  const r = await verify(args);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /FAILED at the function \(EnvironmentEventTrigger and the app\): the reading did not appear within 2 s \(the device has no row at all\)/);

  // --send az, with the stand-in az (tests/deploy/standins) on PATH in a subscription that has no
  // such hub: the send fails, and the stage is IoT Hub with its own hints.
  const box = sandbox();
  cleanups.push(() => box.cleanup());
  const bad = await verify(['--api', h.url, '--device-id', 'd', '--send', 'az', '--hub-name', 'hub',
    '--resource-group', 'g', '--app', 'myapp', '--timeout', '1', '--request-timeout-ms', '500'], scriptEnv(box));
  assert.equal(bad.status, 1, bad.stdout + bad.stderr);
  assert.match(bad.stdout, /FAILED at IoT Hub: IoT Hub did not accept the reading: .*IotHubNotFound/);
  assert.match(bad.stdout, /az iot hub show --name hub --resource-group g/);
});

test('verify refuses bad arguments before doing anything', async () => {
  for (const [args, message] of [
    [[], /--api must be/],
    [['--api', 'ftp://x', '--device-id', 'd'], /--api must be/],
    [['--api', 'http://x', '--device-id', 'a/b', '--send', 'local', '--trigger-url', 'http://x'], /--device-id/],
    [['--api', 'http://x', '--device-id', 'd', '--send', 'az'], /--hub-name and --resource-group/],
    [['--api', 'http://x', '--device-id', 'd', '--send', 'mqtt'], /--send is az or local/],
    [['--api', 'http://x', '--device-id', 'd', '--timeout', '-1'], /positive whole number/],
    [['--bogus', '1'], /unknown argument/],
  ]) {
    const r = await verify(args);
    assert.equal(r.status, 2, args.join(' '));
    assert.match(r.stderr, message);
  }
});
