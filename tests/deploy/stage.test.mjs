// make app's staging (deploy/stage-app.sh) and the staged app started exactly as the Functions
// host starts it, in roots that share nothing with this machine but the kernel:
//   (a) Debian 11 minbase (glibc 2.31), (b) Debian 12 minbase (debootstrap --variant=minbase,
//   cached in build/rootfs/), (c) a root holding nothing but the app folder, where the handler
//   also reaches Table Storage over HTTPS (Azurite with a certificate made here) trusting only the
//   test CA given by EnviromonCaBundle.
// Azure itself cannot run here: the host's way of starting the handler is reproduced from its
// source (startAsHost below cites the files), and the zip's file modes from Core Tools' source.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import {
  chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync,
  rmSync, statSync, writeFileSync,
} from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
  DEV_ACCOUNT, DEV_KEY, HANDLER_BIN, freePort, hostBatch, invoke, sleep, startAzurite, tableGet, waitForPort,
} from '../lib/harness.mjs';
import { ROOT } from './lib.mjs';

const STAGE = path.join(ROOT, 'deploy/stage-app.sh');
const ZIP = path.join(ROOT, 'deploy/zip-app.sh');
const ROOTFS_CACHE = path.join(ROOT, 'build/rootfs');
const LOADER = 'ld-linux-x86-64.so.2';
// What host.json must say for this layout (deploy/stage-app.sh checks it too).
const DESCRIPTION = {
  defaultExecutablePath: `lib/${LOADER}`,
  workingDirectory: '',
  arguments: ['--inhibit-cache', './enviromon-handler'],
};
const GLIBC = /^(ld-linux.*|libc|libm|libmvec|libpthread|libdl|librt|libresolv|libanl|libutil|libnsl|libnss_\w+|libBrokenLocale|libthread_db|libc_malloc_debug)\.so[.\d]*$/;
const OURS = ['libmicrohttpd.so', 'libjansson.so', 'libcurl.so', 'libcrypto.so', 'libssl.so'];
const CARRIED = [LOADER, 'libc.so.6', 'libgcc_s.so.1'];

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw r.error;
  return r;
}
const have = (cmd) => sh('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** DT_RPATH and DT_RUNPATH of an ELF file ('' when absent). */
function searchPaths(file) {
  const out = sh('readelf', ['-d', file]).stdout;
  const tag = (t) => out.match(new RegExp(`\\(${t}\\)\\s+Library (?:rpath|runpath): \\[([^\\]]*)\\]`))?.[1] ?? '';
  return { rpath: tag('RPATH'), runpath: tag('RUNPATH') };
}

/** Symbol versions an ELF file needs, by the library that must define them: { 'libc.so.6': Set }. */
function versionsNeeded(file) {
  const need = {};
  let from = null;
  for (const line of sh('objdump', ['-p', file]).stdout.split('\n')) {
    const m = line.match(/^\s+required from (\S+):$/);
    if (m) { from = m[1]; need[from] ??= new Set(); continue; }
    const v = line.match(/^\s+0x[0-9a-f]+ 0x[0-9a-f]+ \d+ (\S+)$/);
    if (from && v) need[from].add(v[1]); else if (!/^\s/.test(line)) from = null;
  }
  return need;
}

/** Symbol versions an ELF file defines. */
function versionsDefined(file) {
  const out = sh('objdump', ['-p', file]).stdout;
  const defs = out.split('Version definitions:')[1]?.split(/\n\s*\n/)[0] ?? '';
  return new Set([...defs.matchAll(/^\d+ 0x[0-9a-f]+ 0x[0-9a-f]+ (\S+)$/gm)].map((m) => m[1]));
}

function stage(appdir, handler = HANDLER_BIN) {
  const r = sh('bash', [STAGE, handler, appdir], { cwd: ROOT });
  assert.equal(r.status, 0, `stage-app.sh failed:\n${r.stdout}${r.stderr}`);
  return r;
}

test('make app stages host.json, the functions, the handler, glibc with its loader, the libraries and a CA bundle', () => {
  assert.ok(existsSync(HANDLER_BIN), `${HANDLER_BIN} is not built: run make`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'enviromon-stage-'));
  try {
    const app = path.join(dir, 'app');
    stage(app);
    assert.equal(readFileSync(path.join(app, 'host.json'), 'utf8'), readFileSync(path.join(ROOT, 'host.json'), 'utf8'));
    const host = JSON.parse(readFileSync(path.join(app, 'host.json'), 'utf8'));
    assert.deepEqual(host.customHandler.description, DESCRIPTION);
    const functions = readdirSync(path.join(ROOT, 'functions'))
      .filter((f) => existsSync(path.join(ROOT, 'functions', f, 'function.json')));
    assert.ok(functions.length > 0);
    for (const f of functions) {
      assert.equal(readFileSync(path.join(app, f, 'function.json'), 'utf8'),
        readFileSync(path.join(ROOT, 'functions', f, 'function.json'), 'utf8'), f);
      assert.deepEqual(readdirSync(path.join(app, f)), ['function.json'], f);
    }
    assert.deepEqual(readdirSync(app).sort(),
      ['.funcignore', 'ca-certificates.crt', 'enviromon-handler', 'host.json', 'lib', ...functions].sort());
    assert.equal(readFileSync(path.join(app, 'ca-certificates.crt'), 'utf8'),
      readFileSync('/etc/ssl/certs/ca-certificates.crt', 'utf8'));

    // The handler: DT_RPATH (searched before LD_LIBRARY_PATH), not DT_RUNPATH.
    const handler = path.join(app, 'enviromon-handler');
    assert.deepEqual(searchPaths(handler), { rpath: '$ORIGIN/lib', runpath: '' });
    const libs = readdirSync(path.join(app, 'lib'));
    for (const want of [...OURS, ...CARRIED]) {
      assert.ok(libs.some((l) => l.startsWith(want)), `${want} missing from lib/: ${libs}`);
    }
    // Only the loader is started; every other file is read or mapped and needs no execute bit.
    assert.equal(statSync(path.join(app, 'lib', LOADER)).mode & 0o777, 0o755);
    for (const lib of libs) {
      const file = path.join(app, 'lib', lib);
      if (lib !== LOADER) assert.equal(statSync(file).mode & 0o777, 0o644, lib);
      // glibc's own files are copied untouched; every other library finds its neighbours first.
      assert.deepEqual(searchPaths(file), GLIBC.test(lib) ? { rpath: '', runpath: '' } : { rpath: '$ORIGIN', runpath: '' }, lib);
    }
    // Every symbol version any staged object needs from a carried library is defined by it: the
    // app needs nothing of the image's glibc, whatever its version.
    for (const file of [handler, ...libs.map((l) => path.join(app, 'lib', l))]) {
      for (const [lib, versions] of Object.entries(versionsNeeded(file))) {
        assert.ok(libs.includes(lib), `${path.basename(file)} needs ${lib}, which is not in lib/`);
        const defined = versionsDefined(path.join(app, 'lib', lib));
        for (const v of versions) assert.ok(defined.has(v), `${path.basename(file)} needs ${lib} ${v}, which it does not define`);
      }
    }

    // Staging again replaces the folder; a folder that is not an app is never replaced.
    writeFileSync(path.join(app, 'stale.txt'), 'x');
    stage(app);
    assert.ok(!existsSync(path.join(app, 'stale.txt')));
    const other = path.join(dir, 'other');
    mkdirSync(other);
    writeFileSync(path.join(other, 'precious.txt'), 'x');
    let r = sh('bash', [STAGE, HANDLER_BIN, other], { cwd: ROOT });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /not replacing it/);
    assert.ok(existsSync(path.join(other, 'precious.txt')));
    // No CA bundle to carry: staging stops and the staged app is left as it was.
    writeFileSync(path.join(dir, 'no-cert.pem'), 'not a certificate\n');
    r = sh('bash', [STAGE, HANDLER_BIN, app], { cwd: ROOT, env: { ...process.env, CA_BUNDLE: path.join(dir, 'no-cert.pem') } });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /holds no certificate/);
    assert.ok(existsSync(path.join(app, 'ca-certificates.crt')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the zip keeps the loader executable, and the unzipped app resolves every library to its own lib/', () => {
  assert.ok(existsSync(HANDLER_BIN), `${HANDLER_BIN} is not built: run make`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'enviromon-zip-'));
  try {
    const app = path.join(dir, 'app');
    stage(app);
    writeFileSync(path.join(app, 'local.settings.json'), '{"Values":{}}');
    const zip = path.join(dir, 'app.zip');
    let r = sh('bash', [ZIP, app, zip]);
    assert.equal(r.status, 0, r.stderr);
    const out = path.join(dir, 'unzipped');
    r = sh('unzip', ['-q', zip, '-d', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(statSync(path.join(out, DESCRIPTION.defaultExecutablePath)).mode & 0o777, 0o755);
    assert.equal(statSync(path.join(out, 'lib/libc.so.6')).mode & 0o777, 0o644);
    assert.ok(!existsSync(path.join(out, 'local.settings.json')), 'local.settings.json was zipped');
    assert.deepEqual(readdirSync(path.join(out, 'lib')).sort(), readdirSync(path.join(app, 'lib')).sort());
    // An app whose loader lost its execute bit is not zipped: the host could not start it.
    chmodSync(path.join(app, DESCRIPTION.defaultExecutablePath), 0o644);
    r = sh('bash', [ZIP, app, path.join(dir, 'broken.zip')]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /not executable/);
    assert.ok(!existsSync(path.join(dir, 'broken.zip')));
    // The carried loader, started from the unzipped folder as host.json says, finds every library
    // (glibc's included) in that folder's lib/, with no environment at all.
    r = sh(path.join(out, DESCRIPTION.defaultExecutablePath), ['--inhibit-cache', '--list', './enviromon-handler'], { cwd: out, env: {} });
    assert.equal(r.status, 0, r.stderr);
    const resolved = [...r.stdout.matchAll(/^\s*(\S+) => (\S+) \(/gm)];
    assert.ok(resolved.length >= 20, r.stdout);
    for (const [, name, file] of resolved) {
      assert.equal(path.resolve(out, file), path.join(out, 'lib', path.basename(name)), `${name} => ${file}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- Roots: Debian 11 and 12 minbase (debootstrap, cached), and a bare root ------------------------

/** The Debian archive this machine's apt already uses, read from its sources; null if none.
 * ENVIROMON_DEBIAN_MIRROR overrides it (e.g. once a release has moved to Debian's archive host). */
function debianMirror() {
  if (process.env.ENVIROMON_DEBIAN_MIRROR) return process.env.ENVIROMON_DEBIAN_MIRROR;
  const files = [];
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list');
  if (existsSync('/etc/apt/sources.list.d')) {
    for (const f of readdirSync('/etc/apt/sources.list.d').sort()) {
      if (f.endsWith('.list') || f.endsWith('.sources')) files.push(path.join('/etc/apt/sources.list.d', f));
    }
  }
  const entries = []; // { uri, suites: [], components: [] }
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    if (f.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name) => (stanza.match(new RegExp(`^${name}:\\s*(.*)$`, 'mi'))?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
        if (!field('Types').includes('deb') || /^Enabled:\s*no/mi.test(stanza)) continue;
        for (const uri of field('URIs')) entries.push({ uri, suites: field('Suites'), components: field('Components') });
      }
    } else {
      for (const line of text.split('\n')) {
        const m = line.replace(/#.*/, '').trim().match(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)$/);
        if (m) entries.push({ uri: m[1], suites: [m[2]], components: m[3].split(/\s+/) });
      }
    }
  }
  // The main archive: a plain codename suite (not -security, -updates) with main.
  const main = entries.filter((e) => /^https?:\/\//.test(e.uri) && e.components.includes('main') &&
    e.suites.some((s) => /^[a-z]+$/.test(s)) && !/security/.test(e.uri));
  const bookworm = main.find((e) => e.suites.includes('bookworm'));
  return (bookworm ?? main[0])?.uri ?? null;
}

/** build/rootfs/<suite>-minbase, made once by debootstrap and reused. Returns [dir, skip reason]. */
function ensureRootfs(suite) {
  const dir = path.join(ROOTFS_CACHE, `${suite}-minbase`);
  if (existsSync(path.join(dir, '.enviromon-rootfs-complete'))) return [dir, null];
  const mirror = debianMirror();
  if (!mirror) return [dir, 'no Debian archive in /etc/apt/sources.list{,.d} (or ENVIROMON_DEBIAN_MIRROR): cannot debootstrap'];
  mkdirSync(ROOTFS_CACHE, { recursive: true });
  const tmp = mkdtempSync(path.join(ROOTFS_CACHE, '.debootstrap-'));
  // Debian 12's debian-archive-keyring holds the bullseye keys, so both suites are verified
  // with debootstrap's default keyring.
  const r = spawnSync('debootstrap', ['--variant=minbase', suite, tmp, mirror],
    { encoding: 'utf8', timeout: 15 * 60 * 1000 });
  if (r.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-3).join(' / ');
    return [dir, `debootstrap ${suite} from ${mirror} failed (no network? set ENVIROMON_DEBIAN_MIRROR): ${r.error?.message ?? tail}`];
  }
  writeFileSync(path.join(tmp, '.enviromon-rootfs-complete'), `debootstrap --variant=minbase ${suite} ${mirror}\n`);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return [dir, null];
}

function rootSkipReason() {
  if (process.platform !== 'linux' || process.arch !== 'x64') return 'not x86-64 Linux';
  if (process.getuid?.() !== 0) return 'debootstrap and entering a root need root';
  for (const cmd of ['debootstrap', 'unshare', 'patchelf', 'readelf', 'objdump', 'openssl']) {
    if (!have(cmd)) return `${cmd} is not installed (make deps installs it)`;
  }
  if (!existsSync(HANDLER_BIN)) return `${HANDLER_BIN} is not built`;
  const probe = sh('unshare', ['--root=/', '--wd=/', 'true']);
  if (probe.status !== 0) return `unshare --root is not permitted here: ${probe.stderr.trim()}`;
  return null;
}

/** The file modes of a publish zip made by Core Tools: the execute bit on the file host.json
 * names as defaultExecutablePath and on no other (Azure/azure-functions-core-tools,
 * src/Cli/func/Helpers/ZipHelper.cs, CreateZip: 100777 for the executables, 100666 for the rest;
 * commit 3ee97a6337055edd6afe48f9a51786a09772f427). */
function asPublished(app) {
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p); else chmodSync(p, 0o666);
    }
  };
  walk(app);
  const exe = JSON.parse(readFileSync(path.join(app, 'host.json'), 'utf8')).customHandler.description.defaultExecutablePath;
  chmodSync(path.join(app, exe), 0o777);
}

/**
 * Starts the staged app inside `root` exactly as the Functions host starts a custom handler
 * (Azure/azure-functions-host at commit 89dc438d476542786f2fc4070f553423213a6223):
 * - the executable is defaultExecutablePath combined with the app folder when that file exists
 *   (src/WebJobs.Script/Workers/Http/HttpWorkerDescription.cs, ApplyDefaultsAndValidate);
 * - the working directory is the app folder when workingDirectory is empty, else that path
 *   combined with the app folder (.../Http/Configuration/HttpWorkerOptionsSetup.cs);
 * - the arguments are host.json's, joined with spaces after %NAME% is replaced by the variables
 *   below, and split again at whitespace by .NET (.../ProcessManagement/DefaultWorkerProcessFactory.cs);
 * - the environment gains FUNCTIONS_CUSTOMHANDLER_PORT, FUNCTIONS_HTTPWORKER_PORT, the worker id
 *   in FUNCTIONS_CUSTOMHANDLER_WORKER_ID and FUNCTIONS_HTTPWORKER_ID, and FUNCTIONS_APP_ROOT_PATH
 *   (.../Http/HttpWorkerProcess.cs, HttpWorkerConstants.cs).
 * `unshare --root --wd` is chroot plus chdir: no namespace, nothing mounted (no /proc, /dev, /sys
 * in the root), nothing to undo. The root shares this machine's network, so services on
 * 127.0.0.1 are reachable.
 */
async function startAsHost(root, appInRoot, settings) {
  const desc = JSON.parse(readFileSync(path.join(root, appInRoot, 'host.json'), 'utf8')).customHandler.description;
  const port = await freePort();
  const hostEnv = {
    FUNCTIONS_HTTPWORKER_PORT: String(port),
    FUNCTIONS_HTTPWORKER_ID: 'stage-test-worker',
    FUNCTIONS_CUSTOMHANDLER_PORT: String(port),
    FUNCTIONS_CUSTOMHANDLER_WORKER_ID: 'stage-test-worker',
    FUNCTIONS_APP_ROOT_PATH: appInRoot,
  };
  let exe = desc.defaultExecutablePath;
  if (!path.isAbsolute(exe) && existsSync(path.join(root, appInRoot, exe))) exe = path.posix.join(appInRoot, exe);
  const wd = !desc.workingDirectory ? appInRoot : path.posix.resolve(appInRoot, desc.workingDirectory);
  let line = (desc.arguments ?? []).map((a) => ` ${a}`).join('');
  for (const [k, v] of Object.entries(hostEnv)) line = line.replaceAll(`%${k}%`, v);
  line = line.replace(/%(.+?)%/g, '');
  assert.doesNotMatch(line, /["\\]/, 'arguments with quotes or backslashes: this emulation splits at whitespace only');
  const args = line.split(/\s+/).filter(Boolean);

  const proc = spawn('unshare', [`--root=${root}`, `--wd=${wd}`, exe, ...args], {
    env: { ...settings, ...hostEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let logs = '';
  proc.stdout.on('data', (d) => { logs += d; });
  proc.stderr.on('data', (d) => { logs += d; });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal)));
  const h = {
    proc, port, exe, url: `http://127.0.0.1:${port}`, logs: () => logs, exited,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill('SIGTERM'); // unshare execs: proc is the handler itself, as the host's child is
      const t = setTimeout(() => proc.kill('SIGKILL'), 35000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
  // The readiness probe, as the host sends it: any HTTP answer to GET /.
  const deadline = Date.now() + 20000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) assert.fail(`the handler exited (${proc.exitCode ?? proc.signalCode}) in ${root}:\n${logs}`);
    try {
      h.ready = (await fetch(`${h.url}/`)).status;
      return h;
    } catch {
      if (Date.now() > deadline) { await h.stop(); assert.fail(`no answer on 127.0.0.1:${port} after 20 s:\n${logs}`); }
      await sleep(50);
    }
  }
}

/** Every shared object the process has mapped. */
function mappedObjects(pid) {
  return [...new Set(readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')
    .map((l) => l.trim().split(/\s+/)[5]).filter((f) => f && /\.so(\.|$)/.test(f)))];
}

/** A batch for two readings of one device, as the host delivers it from IoT Hub. */
function batch(deviceId) {
  return hostBatch([
    { body: { deviceId, temperature: 21.5, humidity: 40, pressure: 1013 }, deviceId, seq: 1 },
    { body: { deviceId, temperature: 22.5, humidity: 41, pressure: 1012 }, deviceId, seq: 2 },
  ]);
}

/** The staged app, in `root` with its loader the only executable file, answers GET / and commits a
 * batch to Azurite, loading no shared object from outside the app's lib/. The storage endpoint
 * is a name the root's /etc/hosts gives (as an image's would), so the carried libc's own `files`
 * lookup is what finds it. */
async function runInRoot(t, root, { label, extraEnv = {} }) {
  const inRoot = `/opt/enviromon-test-${process.pid}`;
  const app = path.join(root, inRoot, 'app');
  const hostsFile = path.join(root, 'etc/hosts');
  const hostsBefore = existsSync(hostsFile) ? readFileSync(hostsFile, 'utf8') : null;
  // No dot: Azurite reads a dotted host name as <account>.<service>... (product-style URLs).
  const storageName = `enviromon-storage-${process.pid}`;
  const azurite = await startAzurite();
  let h = null;
  try {
    writeFileSync(hostsFile, `${hostsBefore ?? ''}127.0.0.1\t${storageName}\n`);
    stage(app);
    asPublished(app);
    h = await startAsHost(root, `${inRoot}/app`, {
      StorageConnectionString: azurite.connectionString.replace('//127.0.0.1:', `//${storageName}:`),
      BackoffAttempts: '2', ...extraEnv,
    });
    t.diagnostic(`${label}: GET / answered ${h.ready}`);
    assert.equal(readlinkSync(`/proc/${h.proc.pid}/exe`), path.join(root, h.exe));

    const device = `pack-${label.replace(/\W+/g, '-')}`;
    const r = await invoke(h.url, 'EnvironmentEventTrigger', batch(device));
    assert.equal(r.status, 200, `${r.text}\n${h.logs()}`);
    const row = await tableGet(azurite, 'DeviceState', 'Sydney', device);
    assert.ok(row, `no DeviceState row for ${device}:\n${h.logs()}`);
    assert.equal(Number(row.Count), 2);
    assert.equal(row.Celsius, 22.5);

    const loaded = mappedObjects(h.proc.pid);
    const outside = loaded.filter((f) => !f.startsWith(path.join(app, 'lib') + '/'));
    assert.deepEqual(outside, [], `shared objects from outside the app's lib/ (the image's): ${outside}`);
    for (const want of [...OURS, 'libc.so.6', LOADER]) {
      assert.ok(loaded.some((f) => path.basename(f).startsWith(want)), `${want} not loaded from the app: ${loaded}`);
    }
    t.diagnostic(`${label}: ${loaded.length} shared objects, all from the app's lib/`);
    // Minbase roots have no ca-certificates: the handler says it uses the app's bundle.
    if (!existsSync(path.join(root, 'etc/ssl/certs/ca-certificates.crt'))) {
      assert.match(h.logs(), new RegExp(`https: CA bundle ${inRoot}/app/ca-certificates\\.crt \\(the app's: the system has none\\)`));
    }
    assert.equal(await h.stop(), 0, h.logs());
  } finally {
    if (h) await h.stop();
    await azurite.close();
    rmSync(path.join(root, inRoot), { recursive: true, force: true });
    if (hostsBefore === null) rmSync(hostsFile, { force: true }); else writeFileSync(hostsFile, hostsBefore);
  }
}

for (const [suite, name] of [['bullseye', 'Debian 11'], ['bookworm', 'Debian 12']]) {
  test(`the staged app starts as the host starts it in a ${name} minbase root and commits a batch`, async (t) => {
    const why = rootSkipReason();
    if (why) return t.skip(why);
    const started = Date.now();
    const [root, rootWhy] = ensureRootfs(suite);
    if (rootWhy) return t.skip(rootWhy);
    t.diagnostic(`rootfs ${path.relative(ROOT, root)} ready in ${Date.now() - started} ms`);
    // None of our C libraries is installed in the root (by soname: Debian 11 has libcrypto.so.1.1,
    // not .so.3): they can only come from the app folder.
    const sonames = [...sh('ldd', [HANDLER_BIN]).stdout.matchAll(/^\s*(\S+) =>/gm)].map((m) => m[1])
      .filter((n) => OURS.some((o) => n.startsWith(o)));
    assert.equal(sonames.length, OURS.length, `sonames of ${OURS}: ${sonames}`);
    const sysLibs = ['usr/lib/x86_64-linux-gnu', 'lib/x86_64-linux-gnu', 'usr/lib', 'usr/local/lib']
      .flatMap((d) => (existsSync(path.join(root, d)) ? readdirSync(path.join(root, d)) : []));
    for (const lib of sonames) {
      assert.ok(!sysLibs.includes(lib), `${lib} is installed in ${root}: delete it to rebuild a bare root`);
    }
    // The image's own glibc is first on LD_LIBRARY_PATH, and must still not be loaded.
    await runInRoot(t, root, {
      label: suite,
      extraEnv: { LD_LIBRARY_PATH: '/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu' },
    });
  });
}

// ---- (c) nothing but the app, and HTTPS to Table Storage with a test CA ----------------------------

/** A test CA and a certificate for 127.0.0.1 signed by it, made with openssl in dir. */
function makeCerts(dir) {
  const run = (...args) => {
    const r = sh('openssl', args, { cwd: dir });
    assert.equal(r.status, 0, `openssl ${args.join(' ')}:\n${r.stderr}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Enviromon test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  run('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(path.join(dir, 'server.ext'),
    'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext');
  return { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'server.pem'), key: path.join(dir, 'server.key') };
}

/** Azurite's Table service over HTTPS with the given certificate, on a free port. */
async function startTlsAzurite(certs, dir) {
  const port = await freePort();
  const proc = spawn(path.join(ROOT, 'node_modules/.bin/azurite-table'), ['--tableHost', '127.0.0.1', '--tablePort', String(port),
    '--cert', certs.cert, '--key', certs.key, '--silent', '--disableTelemetry', '--skipApiVersionCheck', '--loose',
    '--location', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  proc.stdout.on('data', (d) => { logs += d; });
  proc.stderr.on('data', (d) => { logs += d; });
  await waitForPort(port, 30000, proc);
  const endpoint = `https://127.0.0.1:${port}/${DEV_ACCOUNT}`;
  return {
    port, endpoint, logs: () => logs,
    connectionString: `DefaultEndpointsProtocol=https;AccountName=${DEV_ACCOUNT};AccountKey=${DEV_KEY};TableEndpoint=${endpoint};`,
    async close() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const gone = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGINT');
        await gone;
      }
    },
  };
}

/** The test's own read of one entity over HTTPS, trusting only the test CA (Shared Key). */
function tlsEntity(az, ca, table, pk, rk) {
  const url = new URL(`${az.endpoint}/${table}(PartitionKey='${pk}',RowKey='${rk}')`);
  const date = new Date().toUTCString();
  const sts = `GET\n\n\n${date}\n/${DEV_ACCOUNT}${url.pathname}`;
  const sig = createHmac('sha256', Buffer.from(DEV_KEY, 'base64')).update(sts, 'utf8').digest('base64');
  return new Promise((resolve, reject) => {
    const req = https.get(url, {
      ca: readFileSync(ca),
      headers: {
        'x-ms-date': date, 'x-ms-version': '2019-02-02', Accept: 'application/json;odata=nometadata',
        DataServiceVersion: '3.0;NetFx', MaxDataServiceVersion: '3.0;NetFx', Authorization: `SharedKey ${DEV_ACCOUNT}:${sig}`,
      },
    }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve(res.statusCode === 200 ? JSON.parse(text) : null));
    });
    req.on('error', reject);
  });
}

test('in a root holding nothing but the app, the handler commits over HTTPS trusting the CA EnviromonCaBundle names', async (t) => {
  const why = rootSkipReason();
  if (why) return t.skip(why);
  mkdirSync(path.join(ROOT, 'build'), { recursive: true });
  const root = mkdtempSync(path.join(ROOT, 'build', '.bare-root-'));
  const work = mkdtempSync(path.join(os.tmpdir(), 'enviromon-tls-'));
  const app = path.join(root, 'app');
  let az = null;
  const handlers = [];
  try {
    const certs = makeCerts(work);
    az = await startTlsAzurite(certs, path.join(work, 'azurite'));
    stage(app);
    // The user's own CA travels in the app folder; the setting names it relative to the app.
    copyFileSync(certs.ca, path.join(app, 'test-ca.pem'));
    asPublished(app);
    assert.deepEqual(readdirSync(root), ['app'], 'the root holds more than the app folder');
    const settings = { StorageConnectionString: az.connectionString, BackoffAttempts: '1' };

    // Without the setting, the app's own bundle (public CAs) is used, and the test CA's
    // certificate is refused: the batch is not committed and the host is told to retry.
    let h = await startAsHost(root, '/app', settings);
    handlers.push(h);
    assert.match(h.logs(), /https: CA bundle \/app\/ca-certificates\.crt \(the app's: the system has none\)/);
    let r = await invoke(h.url, 'EnvironmentEventTrigger', batch('pack-tls'));
    assert.equal(r.status, 500, `${r.text}\n${h.logs()}`);
    assert.match(h.logs(), /certificate/i);
    assert.equal(await tlsEntity(az, certs.ca, 'DeviceState', 'Sydney', 'pack-tls'), null);
    assert.equal(await h.stop(), 0, h.logs());

    // With EnviromonCaBundle, the same batch is committed over HTTPS.
    h = await startAsHost(root, '/app', { ...settings, EnviromonCaBundle: 'test-ca.pem' });
    handlers.push(h);
    assert.match(h.logs(), /https: CA bundle \/app\/test-ca\.pem \(from EnviromonCaBundle\)/);
    r = await invoke(h.url, 'EnvironmentEventTrigger', batch('pack-tls'));
    assert.equal(r.status, 200, `${r.text}\n${h.logs()}`);
    const row = await tlsEntity(az, certs.ca, 'DeviceState', 'Sydney', 'pack-tls');
    assert.ok(row, `no row over HTTPS:\n${h.logs()}\n${az.logs()}`);
    assert.equal(Number(row.Count), 2);
    const outside = mappedObjects(h.proc.pid).filter((f) => !f.startsWith(path.join(app, 'lib') + '/'));
    assert.deepEqual(outside, [], `shared objects from outside the app's lib/: ${outside}`);
    assert.equal(await h.stop(), 0, h.logs());

    // A setting naming a file that is not there stops the handler at start, naming the setting.
    const bad = spawnSync('unshare', [`--root=${root}`, '--wd=/app', `/app/${DESCRIPTION.defaultExecutablePath}`, ...DESCRIPTION.arguments],
      { encoding: 'utf8', env: { ...settings, FUNCTIONS_CUSTOMHANDLER_PORT: String(await freePort()), EnviromonCaBundle: 'missing.pem' }, timeout: 20000 });
    assert.equal(bad.status, 2, `${bad.stdout}${bad.stderr}`);
    assert.match(bad.stderr, /EnviromonCaBundle: cannot use 'missing\.pem' as a CA bundle: No such file/);
  } finally {
    for (const h of handlers) await h.stop();
    if (az) await az.close();
    rmSync(root, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
});
