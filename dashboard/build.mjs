#!/usr/bin/env node
// Builds the static dashboard: copies dashboard/site/ and the pinned SignalR browser client from
// node_modules into one folder and writes the API base URL into config.json and into index.html
// (a <meta name="enviromon-api-base">, which boot.js reads without a request, so that the page's
// first API call leaves at once instead of after config.json's answer).
//   node dashboard/build.mjs [--out DIR] [--api-base URL]
// DIR defaults to build/dashboard; an empty or absent --api-base means "same origin as the page".
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const SITE = path.join(here, 'site');
const SIGNALR_DIR = path.join(root, 'node_modules/@microsoft/signalr/dist/browser');
const SIGNALR_FILES = ['signalr.min.js', 'signalr.min.js.map'];

function usage(msg) {
  if (msg) console.error(`build.mjs: ${msg}`);
  console.error('usage: node dashboard/build.mjs [--out DIR] [--api-base URL]');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { out: path.join(root, 'build/dashboard'), apiBase: '' };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => {
      if (inline !== undefined) return inline;
      if (i + 1 >= argv.length) usage(`${flag} needs a value`);
      return argv[++i];
    };
    if (flag === '--out') opts.out = path.resolve(value());
    else if (flag === '--api-base') opts.apiBase = value().trim();
    else if (flag === '--help' || flag === '-h') usage();
    else usage(`unknown argument ${argv[i]}`);
  }
  if (opts.apiBase) {
    let u;
    try {
      u = new URL(opts.apiBase);
    } catch {
      usage(`--api-base is not a URL: ${opts.apiBase}`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') usage('--api-base must be http(s)');
    opts.apiBase = u.href.replace(/\/+$/, '');
  }
  return opts;
}

function copyTree(from, to) {
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from)) {
    const src = path.join(from, name);
    const dst = path.join(to, name);
    if (statSync(src).isDirectory()) copyTree(src, dst);
    else copyFileSync(src, dst);
  }
}

const opts = parseArgs(process.argv.slice(2));
if (!existsSync(path.join(SIGNALR_DIR, SIGNALR_FILES[0]))) {
  console.error(`build.mjs: ${SIGNALR_DIR} is missing; run npm ci (make deps) first`);
  process.exit(1);
}
copyTree(SITE, opts.out);
for (const f of SIGNALR_FILES) {
  if (existsSync(path.join(SIGNALR_DIR, f))) copyFileSync(path.join(SIGNALR_DIR, f), path.join(opts.out, f));
}
const attr = (v) => v.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
let html = readFileSync(path.join(SITE, 'index.html'), 'utf8');
// boot.js goes into the page itself: its request (the first look) then leaves while the page is
// parsed, not after a round trip for boot.js. The Content-Security-Policy allows that one script
// by its hash ('sha256-<base64 of the SHA-256 of the element's text>', a hash-source: W3C Content
// Security Policy Level 3, Working Draft of 2024-10-14, https://www.w3.org/TR/CSP3/, the
// hash-source grammar and "Does element match source list for type and source?"), so script-src
// stays without 'unsafe-inline'.
const bootTag = '<script src="boot.js"></script>';
const cspScripts = "script-src 'self';";
const boot = readFileSync(path.join(SITE, 'boot.js'), 'utf8');
if (!html.includes(bootTag) || html.split(cspScripts).length !== 2 || /<\/script|<!--/i.test(boot)) {
  console.error(`build.mjs: site/index.html needs ${bootTag} and one "${cspScripts}", and boot.js no "</script" or "<!--"`);
  process.exit(1);
}
const bootHash = createHash('sha256').update(boot, 'utf8').digest('base64');
html = html.replace(bootTag, () => `<script>${boot}</script>`)
  .replace(cspScripts, `script-src 'self' 'sha256-${bootHash}';`);
const at = html.indexOf('<meta charset="utf-8">');
if (at < 0) {
  console.error('build.mjs: site/index.html has no <meta charset="utf-8"> to put the API base after');
  process.exit(1);
}
const end = at + '<meta charset="utf-8">'.length;
writeFileSync(path.join(opts.out, 'index.html'),
  `${html.slice(0, end)}\n  <meta name="enviromon-api-base" content="${attr(opts.apiBase)}">${html.slice(end)}`);
writeFileSync(path.join(opts.out, 'config.json'), `${JSON.stringify({ apiBaseUrl: opts.apiBase }, null, 2)}\n`);
const version = JSON.parse(readFileSync(path.join(SIGNALR_DIR, '../../package.json'), 'utf8')).version;
const shown = path.relative(process.cwd(), opts.out);
console.log(`dashboard: built ${shown && !shown.startsWith('..') ? shown : opts.out} ` +
  `(@microsoft/signalr ${version}, API ${opts.apiBase || 'same origin'})`);
