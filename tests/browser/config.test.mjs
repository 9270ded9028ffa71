// dashboard/build.mjs and where the page sends its API calls: the API base the build writes into
// the page (and config.json, which an unbuilt site folder reads), the ?api= override, and refusal
// of anything that is not http(s). The API is played by Playwright routes,
// so no stack is needed.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT } from '../lib/harness.mjs';
import { launchBrowser, waitUntil } from './stack.mjs';

const BUILD = path.join(ROOT, 'dashboard/build.mjs');
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json', '.svg': 'image/svg+xml' };

let dir;
let rawDir; // dashboard/site as it is, with a config.json: served under /raw/
let server;
let site;
let browser;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'enviromon-dash-'));
  execFileSync(process.execPath, [BUILD, '--out', dir, '--api-base', 'http://api.example.test/'], { stdio: 'pipe' });
  rawDir = mkdtempSync(path.join(os.tmpdir(), 'enviromon-dash-raw-'));
  cpSync(path.join(ROOT, 'dashboard/site'), rawDir, { recursive: true });
  writeFileSync(path.join(rawDir, 'config.json'), JSON.stringify({ apiBaseUrl: 'http://raw.example.test' }));
  server = http.createServer((req, res) => {
    let p = new URL(req.url, 'http://x').pathname;
    let from = dir;
    if (p.startsWith('/raw/')) {
      from = rawDir;
      p = p.slice(4);
    }
    const file = path.join(from, p === '/' ? 'index.html' : path.basename(p));
    if (!existsSync(file)) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  site = `http://127.0.0.1:${server.address().port}`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(rawDir, { recursive: true, force: true });
});

test('the build copies the site and the pinned SignalR client, puts boot.js in the page, and writes the API base', () => {
  for (const f of ['index.html', 'app.js', 'model.js', 'fleet.js', 'chart.js', 'style.css', 'favicon.svg', 'signalr.min.js']) {
    assert.ok(existsSync(path.join(dir, f)), f);
  }
  assert.deepEqual(JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')), { apiBaseUrl: 'http://api.example.test' });
  const html = readFileSync(path.join(dir, 'index.html'), 'utf8');
  assert.match(html, /<meta name="enviromon-api-base" content="http:\/\/api\.example\.test">\s*<meta name="viewport"/);
  // boot.js in the page, allowed by its hash alone (no 'unsafe-inline'); then the modules
  assert.deepEqual([...html.matchAll(/<script[^>]*>/g)].map((m) => m[0]), ['<script>', '<script type="module" src="app.js">']);
  const inline = /<script>([^]*?)<\/script>/.exec(html)[1];
  assert.equal(inline, readFileSync(path.join(ROOT, 'dashboard/site/boot.js'), 'utf8'));
  const csp = /http-equiv="Content-Security-Policy"\s+content="([^"]*)"/.exec(html)[1];
  assert.match(csp, new RegExp(`script-src 'self' 'sha256-${createHash('sha256').update(inline).digest('base64').replace(/[+/=]/g, '\\$&')}';`));
  assert.doesNotMatch(csp, /unsafe/);
  assert.doesNotMatch(html, /rel="preload"/); // the SignalR client is fetched when the page connects
  const same = mkdtempSync(path.join(os.tmpdir(), 'enviromon-dash-'));
  try {
    execFileSync(process.execPath, [BUILD, '--out', same, '--api-base', 'http://a.example.test/"><script>']);
    assert.match(readFileSync(path.join(same, 'index.html'), 'utf8'), /<meta name="enviromon-api-base" content="http:\/\/a\.example\.test\/%22%3E%3Cscript%3E">/);
    execFileSync(process.execPath, [BUILD, '--out', same], { stdio: 'pipe' });
    assert.deepEqual(JSON.parse(readFileSync(path.join(same, 'config.json'), 'utf8')), { apiBaseUrl: '' });
    assert.match(readFileSync(path.join(same, 'index.html'), 'utf8'), /<meta name="enviromon-api-base" content="">/);
  } finally {
    rmSync(same, { recursive: true, force: true });
  }
  const bad = spawnSync(process.execPath, [BUILD, '--out', path.join(dir, 'x'), '--api-base', 'javascript:alert(1)'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /must be http/);
});

/** Opens the page with every request to *.example.test answered 503, and returns where they went. */
async function apiCalls(query, at = '/') {
  const context = await browser.newContext({ locale: 'en-US' });
  const page = await context.newPage();
  const calls = [];
  await page.route((url) => url.hostname.endsWith('example.test'), (route) => {
    calls.push(`${route.request().method()} ${route.request().url()}`);
    return route.fulfill({ status: 503, headers: { 'Access-Control-Allow-Origin': site }, body: 'down' });
  });
  await page.goto(`${site}${at}${query}`);
  await waitUntil('a negotiate attempt', async () => calls.length > 0 &&
    (await page.evaluate(() => document.getElementById('conn').dataset.state)) === 'disconnected');
  const result = {
    // the first look (the devices and their last hour) is read in parallel on load
    calls: calls.filter((c) => !c.includes('/api/getdevicestate?history=1h')),
    firstLook: calls.filter((c) => c.includes('/api/getdevicestate?history=1h')),
    detail: await page.textContent('#conn-detail'),
    footer: await page.textContent('#settings-text'),
    retryVisible: await page.isVisible('#retry'),
  };
  await context.close();
  return result;
}

test('the page calls the API named at build, and says why it cannot connect', async () => {
  const r = await apiCalls('');
  assert.equal(r.calls[0], 'POST http://api.example.test/api/negotiate');
  assert.equal(r.firstLook[0], 'GET http://api.example.test/api/getdevicestate?history=1h');
  assert.ok(r.calls.every((c) => !c.includes('/api/gethistory')), r.calls.join(', '));
  assert.match(r.detail, /negotiate answered HTTP 503/);
  assert.match(r.footer, /API: http:\/\/api\.example\.test\./);
  assert.equal(r.retryVisible, true);
});

test('an unbuilt site folder takes the API base from config.json', async () => {
  const r = await apiCalls('', '/raw/');
  assert.equal(r.calls[0], 'POST http://raw.example.test/api/negotiate');
  assert.equal(r.firstLook[0], 'GET http://raw.example.test/api/getdevicestate?history=1h');
  const r2 = await apiCalls('?api=http://other.example.test:8080/', '/raw/');
  assert.equal(r2.firstLook[0], 'GET http://other.example.test:8080/api/getdevicestate?history=1h');
});

test('?api= overrides the API base; a non-http value is ignored', async () => {
  const r = await apiCalls('?api=http://other.example.test:8080/');
  assert.equal(r.calls[0], 'POST http://other.example.test:8080/api/negotiate');
  assert.equal(r.firstLook[0], 'GET http://other.example.test:8080/api/getdevicestate?history=1h');
  const r2 = await apiCalls(`?api=${encodeURIComponent('javascript:alert(1)')}`);
  assert.equal(r2.calls[0], 'POST http://api.example.test/api/negotiate');
});
