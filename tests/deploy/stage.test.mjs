// make app's staging (deploy/stage-app.sh): the app folder's contents, the handler's libraries
// beside it with $ORIGIN RUNPATHs, the executable bit through a zip, and the staged handler
// starting and answering its readiness probe in a bare Debian 12 root (debootstrap --variant=
// minbase, entered with chroot), where none of our C libraries is installed, loading every
// library from the app folder or from glibc.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { HANDLER_BIN, freePort, sleep, startAzurite } from '../lib/harness.mjs';
import { ROOT } from './lib.mjs';

const STAGE = path.join(ROOT, 'deploy/stage-app.sh');
const ZIP = path.join(ROOT, 'deploy/zip-app.sh');
const ROOTFS_CACHE = path.join(ROOT, 'build/rootfs');
const ROOTFS = path.join(ROOTFS_CACHE, 'bookworm-minbase');
const ROOTFS_DONE = path.join(ROOTFS, '.enviromon-rootfs-complete');
const GLIBC = /^(ld-linux.*|libc|libm|libmvec|libpthread|libdl|librt|libresolv|libanl|libutil|libnsl|libnss_\w+|libBrokenLocale|libthread_db|libc_malloc_debug)\.so[.\d]*$/;
const OURS = ['libmicrohttpd.so', 'libjansson.so', 'libcurl.so', 'libcrypto.so', 'libssl.so'];

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error) throw r.error;
  return r;
}
const have = (cmd) => sh('sh', ['-c', `command -v ${cmd}`]).status === 0;
const rpath = (file) => sh('patchelf', ['--print-rpath', file]).stdout.trim();

function stage(appdir, handler = HANDLER_BIN) {
  const r = sh('bash', [STAGE, handler, appdir], { cwd: ROOT });
  assert.equal(r.status, 0, `stage-app.sh failed:\n${r.stdout}${r.stderr}`);
  return r;
}

test('make app stages host.json, the functions, the handler and the libraries it needs', () => {
  assert.ok(existsSync(HANDLER_BIN), `${HANDLER_BIN} is not built: run make`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'enviromon-stage-'));
  try {
    const app = path.join(dir, 'app');
    stage(app);
    assert.equal(readFileSync(path.join(app, 'host.json'), 'utf8'), readFileSync(path.join(ROOT, 'host.json'), 'utf8'));
    const host = JSON.parse(readFileSync(path.join(app, 'host.json'), 'utf8'));
    assert.equal(host.customHandler.description.defaultExecutablePath, 'enviromon-handler');
    const functions = readdirSync(path.join(ROOT, 'functions'))
      .filter((f) => existsSync(path.join(ROOT, 'functions', f, 'function.json')));
    assert.ok(functions.length > 0);
    for (const f of functions) {
      assert.equal(readFileSync(path.join(app, f, 'function.json'), 'utf8'),
        readFileSync(path.join(ROOT, 'functions', f, 'function.json'), 'utf8'), f);
      assert.deepEqual(readdirSync(path.join(app, f)), ['function.json'], f);
    }
    assert.deepEqual(readdirSync(app).sort(),
      ['.funcignore', 'enviromon-handler', 'host.json', 'lib', ...functions].sort());

    const handler = path.join(app, 'enviromon-handler');
    assert.equal(statSync(handler).mode & 0o777, 0o755);
    assert.equal(rpath(handler), '$ORIGIN/lib');
    const libs = readdirSync(path.join(app, 'lib'));
    for (const want of OURS) assert.ok(libs.some((l) => l.startsWith(want)), `${want} missing from lib/: ${libs}`);
    for (const lib of libs) {
      assert.doesNotMatch(lib, GLIBC, `${lib} is part of glibc and must not be shipped`);
      assert.equal(rpath(path.join(app, 'lib', lib)), '$ORIGIN', lib);
    }

    // Staging again replaces the folder; a folder that is not an app is never replaced.
    writeFileSync(path.join(app, 'stale.txt'), 'x');
    stage(app);
    assert.ok(!existsSync(path.join(app, 'stale.txt')));
    const other = path.join(dir, 'other');
    mkdirSync(other);
    writeFileSync(path.join(other, 'precious.txt'), 'x');
    const r = sh('bash', [STAGE, HANDLER_BIN, other], { cwd: ROOT });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /not replacing it/);
    assert.ok(existsSync(path.join(other, 'precious.txt')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the executable bit survives zipping the app and unzipping it elsewhere', () => {
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
    assert.equal(statSync(path.join(out, 'enviromon-handler')).mode & 0o777, 0o755);
    assert.ok(!existsSync(path.join(out, 'local.settings.json')), 'local.settings.json was zipped');
    assert.deepEqual(readdirSync(path.join(out, 'lib')).sort(), readdirSync(path.join(app, 'lib')).sort());
    // The unzipped handler still finds its libraries beside it.
    r = sh('ldd', [path.join(out, 'enviromon-handler')], { env: { PATH: process.env.PATH } });
    assert.match(r.stdout, new RegExp(`libcurl\\.so\\.4 => ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/lib/libcurl\\.so\\.4`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The Debian archive this machine's apt already uses, read from its sources; null if none. */
function debianMirror() {
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

/** build/rootfs/bookworm-minbase, made once by debootstrap and reused. Returns a skip reason or null. */
function ensureRootfs() {
  if (existsSync(ROOTFS_DONE)) return null;
  const mirror = debianMirror();
  if (!mirror) return 'no Debian archive in /etc/apt/sources.list{,.d}: cannot debootstrap';
  mkdirSync(ROOTFS_CACHE, { recursive: true });
  const tmp = mkdtempSync(path.join(ROOTFS_CACHE, '.debootstrap-'));
  const r = spawnSync('debootstrap', ['--variant=minbase', 'bookworm', tmp, mirror],
    { encoding: 'utf8', timeout: 15 * 60 * 1000 });
  if (r.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-3).join(' / ');
    return `debootstrap from ${mirror} failed (no network?): ${r.error?.message ?? tail}`;
  }
  writeFileSync(path.join(tmp, '.enviromon-rootfs-complete'), `debootstrap --variant=minbase bookworm ${mirror}\n`);
  rmSync(ROOTFS, { recursive: true, force: true });
  renameSync(tmp, ROOTFS);
  return null;
}

function chrootSkipReason() {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'debootstrap and chroot need root';
  for (const cmd of ['debootstrap', 'chroot', 'unshare', 'patchelf']) {
    if (!have(cmd)) return `${cmd} is not installed (make deps installs debootstrap and patchelf)`;
  }
  if (!existsSync(HANDLER_BIN)) return `${HANDLER_BIN} is not built`;
  return null;
}

test('the staged handler starts in a bare Debian 12 root and loads only the app\'s libraries and glibc', async (t) => {
  const why = chrootSkipReason();
  if (why) return t.skip(why);
  const started = Date.now();
  const rootfsWhy = ensureRootfs();
  if (rootfsWhy) return t.skip(rootfsWhy);
  t.diagnostic(`rootfs ${path.relative(ROOT, ROOTFS)} ready in ${Date.now() - started} ms`);

  // None of our C libraries is installed in the root: they can only come from the app folder.
  const sysLibs = ['usr/lib/x86_64-linux-gnu', 'lib/x86_64-linux-gnu', 'usr/lib', 'usr/local/lib']
    .flatMap((d) => (existsSync(path.join(ROOTFS, d)) ? readdirSync(path.join(ROOTFS, d)) : []));
  for (const lib of OURS) {
    assert.ok(!sysLibs.some((f) => f.startsWith(lib)),
      `${lib} is installed in ${ROOTFS}: delete build/rootfs to rebuild a bare root`);
  }

  // Can this machine make a mount namespace (for /proc inside the root)?
  const probe = sh('unshare', ['--mount', '--fork', 'true']);
  if (probe.status !== 0) return t.skip(`unshare --mount is not permitted here: ${probe.stderr.trim()}`);

  const inRoot = `/opt/enviromon-test-${process.pid}`;
  const app = path.join(ROOTFS, inRoot, 'app');
  const azurite = await startAzurite();
  let proc = null;
  let pid = null;
  try {
    stage(app);
    const port = await freePort();
    // A private mount namespace: /proc is mounted in the root for the handler (the loader reads
    // /proc/self/exe to expand $ORIGIN) and disappears with the namespace. The root shares this
    // machine's network, so Azurite on 127.0.0.1 is reachable from inside.
    proc = spawn('unshare', ['--mount', '--fork', '--kill-child', '--', 'sh', '-c',
      'mount -t proc proc "$0/proc" && exec chroot "$0" "$1"', ROOTFS, `${inRoot}/app/enviromon-handler`], {
      env: {
        PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
        FUNCTIONS_CUSTOMHANDLER_PORT: String(port),
        StorageConnectionString: azurite.connectionString,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let logs = '';
    proc.stdout.on('data', (d) => { logs += d; });
    proc.stderr.on('data', (d) => { logs += d; });

    // The readiness probe, as the Functions host sends it: any HTTP answer to GET /.
    const deadline = Date.now() + 20000;
    let status = null;
    while (status === null) {
      if (proc.exitCode !== null) assert.fail(`the handler exited (${proc.exitCode}) in the root:\n${logs}`);
      try {
        status = (await fetch(`http://127.0.0.1:${port}/`)).status;
      } catch {
        if (Date.now() > deadline) assert.fail(`no answer on 127.0.0.1:${port} after 20 s:\n${logs}`);
        await sleep(50);
      }
    }
    t.diagnostic(`GET / answered ${status}`);

    // The handler is unshare's child (sh and chroot exec into it).
    const children = readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').trim().split(/\s+/);
    assert.equal(children.length, 1, `children of unshare: ${children}`);
    pid = Number(children[0]);
    assert.equal(readlinkSync(`/proc/${pid}/exe`), path.join(app, 'enviromon-handler'));

    const loaded = [...new Set(readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')
      .map((l) => l.trim().split(/\s+/)[5]).filter((f) => f && /\.so(\.|$)/.test(f)))];
    const fromApp = loaded.filter((f) => f.startsWith(path.join(app, 'lib') + '/'));
    const other = loaded.filter((f) => !fromApp.includes(f));
    for (const f of other) {
      assert.ok(f.startsWith(ROOTFS + '/') && GLIBC.test(path.basename(f)),
        `${f} is neither in the app's lib/ nor glibc of the root`);
    }
    for (const want of OURS) {
      assert.ok(fromApp.some((f) => path.basename(f).startsWith(want)), `${want} not loaded from the app: ${loaded}`);
    }
    t.diagnostic(`${fromApp.length} libraries from the app's lib/, ${other.length} from glibc (${other.map((f) => path.basename(f)).join(', ')})`);

    // SIGTERM to the handler itself, as the host stops it; unshare ends with it.
    const exited = new Promise((resolve) => proc.once('exit', (c) => resolve(c)));
    process.kill(pid, 'SIGTERM');
    t.diagnostic(`handler stopped (unshare exit ${await exited})`);
  } finally {
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      if (pid) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      proc.kill('SIGKILL'); // --kill-child takes the handler along
      await exited;
    }
    await azurite.close();
    rmSync(path.join(ROOTFS, inRoot), { recursive: true, force: true });
  }
});
