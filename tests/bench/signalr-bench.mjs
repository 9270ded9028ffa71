// SignalR benchmarks (figures, not pass/fail), on this machine with Azurite and the stand-in:
//   1. negotiate requests per second with keep-alive (wrk -t2 -c32 -d10s), and every sampled token
//      checked (signature with the stand-in's key, audience, lifetime) plus one used to connect;
//   2. from posting a telemetry batch to an official @microsoft/signalr client receiving the
//      device's update: median and p99 over BENCH_LATENCY_BATCHES (300) batches, one at a time;
//   3. what a batch's pushes cost the handler: one call per device (concurrent and sequential)
//      against one call with every device as arguments (tests/bench/signalr_rest.c).
// Run: make && node tests/bench/signalr-bench.mjs   (ENVIROMON_BUILD picks the build folder)
import { execFileSync, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as h from '../lib/harness.mjs';
import { connectClient, claims } from '../signalr/lib.mjs';

const BATCHES = Number(process.env.BENCH_LATENCY_BATCHES || 300);
const WRK_SECONDS = Number(process.env.BENCH_WRK_SECONDS || 10);
const BENCH_DIR = path.join(h.BUILD, 'bench');

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

function checkToken(body, standin, now) {
  const n = JSON.parse(body);
  const [hd, pl, sig] = n.accessToken.split('.');
  const good = createHmac('sha256', Buffer.from(standin.accessKey, 'utf8')).update(`${hd}.${pl}`).digest('base64url');
  const c = claims(n.accessToken);
  const expectUrl = `${standin.endpoint}/client/?hub=enviromon`;
  if (sig !== good) return 'bad signature';
  if (n.url !== expectUrl || c.aud !== expectUrl) return `bad url/aud ${n.url} ${c.aud}`;
  if (!(c.nbf <= now + 1 && c.exp > now && c.exp - c.iat === 3600)) return 'bad times';
  return null;
}

async function negotiateBench(handler, standin) {
  const samples = path.join(os.tmpdir(), `enviromon-negotiate-${process.pid}.txt`);
  const lua = path.join(h.ROOT, 'tests/bench/negotiate-sample.lua');
  const url = `${handler.url}/api/negotiate`;
  // Plain run for the rate; a second, shorter run through the sampling script for the tokens.
  const plain = execFileSync('wrk', ['-t2', '-c32', `-d${WRK_SECONDS}s`, '--latency', url], { encoding: 'utf8' });
  const sampled = execFileSync('wrk', ['-t2', '-c32', '-d5s', '-s', lua, url], {
    encoding: 'utf8', env: { ...process.env, NEGOTIATE_SAMPLES: samples },
  });
  const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(plain)[1]);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(plain + sampled);
  const lines = readFileSync(samples, 'utf8').split('\n').filter(Boolean);
  rmSync(samples, { force: true });
  const now = Math.floor(Date.now() / 1000);
  let bad = 0;
  for (const line of lines) {
    const sp = line.indexOf(' ');
    const problem = line.slice(0, sp) !== '200' ? `status ${line.slice(0, sp)}` : checkToken(line.slice(sp + 1), standin, now);
    if (problem) {
      bad++;
      console.log(`  bad token: ${problem}`);
    }
  }
  // One sampled token is used for real: a client connects to the stand-in with it.
  const tok = JSON.parse(lines[lines.length - 1].slice(4));
  const c = await connectClient(handler.url);
  await c.stop();
  console.log('negotiate (wrk -t2 -c32, keep-alive):');
  console.log(plain.split('\n').filter((l) => /Latency|Req\/Sec|requests in|Requests\/sec|50%|99%/.test(l)).map((l) => `  ${l.trim()}`).join('\n'));
  console.log(`  => ${Math.round(rate)} requests/s (target >= 20000); non-2xx: ${non2xx ? non2xx[1] : 0}`);
  console.log(`  tokens sampled under load: ${lines.length}, invalid: ${bad}; a client connected with a negotiated token (url ${tok.url})`);
  return { rate, sampled: lines.length, bad };
}

async function latencyBench(handler, az) {
  const client = await connectClient(handler.url);
  const devices = 10;
  const counts = new Array(devices).fill(0);
  let seq = Date.now() * 1000;
  const lat = [];
  const inv = [];
  // warm-up: every device's row exists and is cached by the handler
  for (let d = 0; d < devices; d++) {
    const r = await h.invoke(handler.url, 'EnvironmentEventTrigger', h.hostBatch([{ deviceId: `lat-${d}`, body: { temperature: 20 }, seq: ++seq }]));
    if (r.status !== 200) throw new Error(r.text);
    counts[d] = 1;
  }
  await h.sleep(200);
  for (let i = 0; i < BATCHES; i++) {
    const d = i % devices;
    const want = ++counts[d];
    const from = client.inbox.length;
    const got = client.waitFor((args) => args[0]?.deviceId === `lat-${d}` && args[0]?.count === want, 5000, from);
    const body = h.hostBatch([{ deviceId: `lat-${d}`, body: { temperature: 20 + (i % 10), humidity: 50 }, seq: ++seq }]);
    const t0 = performance.now();
    const r = await h.invoke(handler.url, 'EnvironmentEventTrigger', body);
    const t1 = performance.now();
    if (r.status !== 200) throw new Error(r.text);
    const m = await got;
    lat.push(m.at - t0);
    inv.push(t1 - t0);
  }
  await client.stop();
  lat.sort((x, y) => x - y);
  inv.sort((x, y) => x - y);
  const f = (v) => v.toFixed(1);
  console.log(`batch posted -> client received (${BATCHES} batches, one device each, one at a time):`);
  console.log(`  median ${f(pct(lat, 50))} ms, p90 ${f(pct(lat, 90))} ms, p99 ${f(pct(lat, 99))} ms, max ${f(lat[lat.length - 1])} ms (target p99 <= 50 ms)`);
  console.log(`  invocation answered: median ${f(pct(inv, 50))} ms, p99 ${f(pct(inv, 99))} ms`);
  return { median: pct(lat, 50), p99: pct(lat, 99) };
}

async function restBench(standin, handler) {
  mkdirSync(BENCH_DIR, { recursive: true });
  const bin = path.join(BENCH_DIR, 'signalr_rest');
  const cc = spawnSync('cc', ['-std=c11', '-D_GNU_SOURCE', '-O2', '-pthread', `-I${path.join(h.ROOT, 'handler')}`,
    path.join(h.ROOT, 'tests/bench/signalr_rest.c'), path.join(h.BUILD, 'libenviromon.a'),
    '-lmicrohttpd', '-ljansson', '-lcurl', '-lcrypto', '-lm', '-o', bin], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(cc.stderr);
  // With a client connected, so the stand-in fans every message out as it would to a dashboard.
  const client = await connectClient(handler.url);
  console.log('cost of one batch\'s pushes to the handler (stand-in on loopback, one client connected):');
  for (const n of [1, 5, 20, 50]) {
    const out = execFileSync(bin, [standin.connectionString, String(n), '200'], { encoding: 'utf8' });
    console.log(out.split('\n').filter((l) => / us/.test(l)).map((l) => `  ${l}`).join('\n'));
  }
  await client.stop();
}

const az = await h.startAzurite();
const standin = await h.startStandin();
const handler = await h.startHandler(h.handlerEnv(az, {
  AzureSignalRConnectionString: standin.connectionString, EnviromonLogLevel: 'warn',
}));
try {
  console.log(`SignalR benchmarks on ${os.cpus().length} CPUs (${os.cpus()[0].model}), build ${h.BUILD}\n`);
  await negotiateBench(handler, standin);
  console.log();
  await latencyBench(handler, az);
  console.log();
  await restBench(standin, handler);
} finally {
  await handler.stop();
  await standin.stop();
  await az.close();
}
