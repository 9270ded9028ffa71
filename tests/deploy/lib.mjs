// Helpers for the deployment tests: a sandbox with the stand-in `az` and `func` first on PATH,
// a fake staged app, and runners for the deploy scripts.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '../..');
export const STANDINS = path.join(HERE, 'standins');
export const DEPLOY = path.join(ROOT, 'deploy/deploy.sh');
export const START = path.join(ROOT, 'deploy/start.sh');
export const SECRET = 'STANDIN-SECRET';

/** A private folder holding the stand-ins' logs and state, a TMPDIR, and a dashboard output. */
export function sandbox() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'enviromon-deploy-test-'));
  const box = {
    dir,
    azLog: path.join(dir, 'az.jsonl'),
    funcLog: path.join(dir, 'func.jsonl'),
    state: path.join(dir, 'az-state.json'),
    tmp: path.join(dir, 'tmp'),
    dashboardOut: path.join(dir, 'dashboard'),
    app: path.join(dir, 'app'),
    azCalls() { return readJsonl(this.azLog); },
    funcCalls() { return readJsonl(this.funcLog); },
    resetLogs() { rmSync(this.azLog, { force: true }); rmSync(this.funcLog, { force: true }); },
    setState(fn) {
      const s = existsSync(this.state) ? JSON.parse(readFileSync(this.state, 'utf8')) : {};
      fn(s);
      writeFileSync(this.state, JSON.stringify(s));
    },
    cleanup() { rmSync(dir, { recursive: true, force: true }); },
  };
  mkdirSync(box.tmp);
  fakeApp(box.app);
  return box;
}

function readJsonl(file) {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** A staged-looking app folder: host.json, one function, an executable handler, one library. */
export function fakeApp(dir) {
  mkdirSync(path.join(dir, 'EnvironmentEventTrigger'), { recursive: true });
  mkdirSync(path.join(dir, 'lib'));
  writeFileSync(path.join(dir, 'host.json'), '{"version":"2.0"}\n');
  writeFileSync(path.join(dir, 'EnvironmentEventTrigger/function.json'), '{"bindings":[]}\n');
  writeFileSync(path.join(dir, 'enviromon-handler'), '#!/bin/sh\nexit 0\n');
  chmodSync(path.join(dir, 'enviromon-handler'), 0o755);
  writeFileSync(path.join(dir, 'lib/libfake.so.1'), 'not really a library\n');
  writeFileSync(path.join(dir, 'local.settings.json'), `{"Values":{"Secret":"${SECRET}-local-settings"}}\n`);
}

/** The environment the scripts run in: stand-ins first on PATH, no Azure settings of the user. */
export function scriptEnv(box, { standins = true, extra = {} } = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('AZURE_') && !k.startsWith('AZ_') && !k.startsWith('FUNC')) env[k] = v;
  }
  return {
    ...env,
    PATH: standins ? `${STANDINS}:${process.env.PATH}` : withoutFunc(process.env.PATH),
    TMPDIR: box.tmp,
    AZ_STANDIN_LOG: box.azLog,
    AZ_STANDIN_STATE: box.state,
    FUNC_STANDIN_LOG: box.funcLog,
    ...extra,
  };
}

/** PATH without any folder that holds a `func` executable. */
export function withoutFunc(p) {
  return p.split(':').filter((d) => d && !existsSync(path.join(d, 'func'))).join(':');
}

/** Runs a bash script synchronously. Returns { status, stdout, stderr }. */
export function runScript(script, args, { box, env, input = '', cwd = ROOT, timeout = 120000 } = {}) {
  const r = spawnSync('bash', [script, ...args], {
    cwd, env: env ?? scriptEnv(box), input, encoding: 'utf8', timeout,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The deploy script against the sandbox, with the fake app and a private dashboard output.
 * Without the end-of-deploy verification (it needs a live API) unless opts.verify. */
export function deploy(box, args = [], { verify = false, ...opts } = {}) {
  return runScript(DEPLOY, [
    '--app-dir', box.app, '--dashboard-out', box.dashboardOut, '--suffix', 'test01',
    ...(verify ? [] : ['--no-verify']), ...args,
  ], { box, ...opts });
}

/** "az group show", "az iot hub device-identity create": the command words of a call. */
export function head(call) {
  const words = [];
  for (const a of call.args) {
    if (a.startsWith('-')) break;
    words.push(a);
  }
  return words.join(' ');
}

/** The value after an option in a recorded call, or undefined. */
export function opt(call, name) {
  const i = call.args.indexOf(name);
  return i < 0 ? undefined : call.args[i + 1];
}

export const MUTATING = /\b(create|add|register|update|set|delete|credentials)$/;
