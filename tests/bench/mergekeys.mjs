// Benchmark (figures, not pass/fail): Azurite's CPU for a transaction of 50 MERGEs (If-Match *)
// into rows of a DeviceState-like shape, by the properties each MERGE carries and the width of
// the stored row: what a property more in every device's merge costs (README, "History": why the
// pending readings of a batch go as one property). Azurite's own CPU time is read from /proc, so
// the client's cost is left out. Alone:
//   node tests/bench/mergekeys.mjs      (ROUNDS=3 TXNS=100)
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as h from '../lib/harness.mjs';

const ROUNDS = Number(process.env.ROUNDS || 3);
const TXNS = Number(process.env.TXNS || 100);
const cpuMs = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, clock ticks of 10 ms
};
const TEXT = '1796239236188;0;3901;0;20;53;1002;';
const az = await h.startAzurite();
await h.tableCreate(az, 'MergeKeys');

async function transaction(ops) {
  const b = 'batch_m', c = 'changeset_m';
  let body = `--${b}\r\nContent-Type: multipart/mixed; boundary=${c}\r\n\r\n`;
  for (const o of ops) {
    const url = o.insert ? `${az.endpoint}/MergeKeys` : `${az.endpoint}/MergeKeys(PartitionKey='${o.pk}',RowKey='${o.rk}')`;
    body += `--${c}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n` +
      `${o.insert ? 'POST' : 'MERGE'} ${url} HTTP/1.1\r\nContent-Type: application/json\r\nAccept: application/json;odata=nometadata\r\n` +
      `DataServiceVersion: 3.0;\r\n${o.insert ? 'Prefer: return-no-content\r\n' : 'If-Match: *\r\n'}\r\n${JSON.stringify(o.entity)}\r\n`;
  }
  body += `--${c}--\r\n--${b}--\r\n`;
  const url = new URL(`${az.endpoint}/$batch`);
  const date = new Date().toUTCString();
  const ctype = `multipart/mixed; boundary=${b}`;
  const sig = createHmac('sha256', Buffer.from(h.DEV_KEY, 'base64'))
    .update(`POST\n\n${ctype}\n${date}\n/${h.DEV_ACCOUNT}${url.pathname}`, 'utf8').digest('base64');
  const res = await fetch(url, { method: 'POST', body, headers: { 'x-ms-date': date, 'x-ms-version': '2019-02-02',
    DataServiceVersion: '3.0;NetFx', MaxDataServiceVersion: '3.0;NetFx', Authorization: `SharedKey ${h.DEV_ACCOUNT}:${sig}`, 'Content-Type': ctype } });
  const text = await res.text();
  if (res.status !== 202 || /HTTP\/1.1 [45]/.test(text)) throw new Error(`${res.status} ${text.slice(0, 300)}`);
}

// what a device's merge carries without history (the handler's, history off)
const base = () => ({ Count: '80', 'Count@odata.type': 'Edm.Int64', Rejected: '0', 'Rejected@odata.type': 'Edm.Int64',
  Watermarks: '04b2722259fe3291/0=3951', LastSeen: '2026-12-02T19:20:37.189Z', 'LastSeen@odata.type': 'Edm.DateTime',
  Celsius: 20.5, 'Celsius@odata.type': 'Edm.Double', Humidity: 54.5, 'Humidity@odata.type': 'Edm.Double',
  hPa: 1000.5, 'hPa@odata.type': 'Edm.Double', Geo: 'Sydney' });

async function scenario(pk, width, extra) {
  await transaction(Array.from({ length: 50 }, (_, j) => {
    const e = { PartitionKey: pk, RowKey: `d-${j}`, ...base() };
    for (let k = 0; k < width; k++) e[`X${k}`] = TEXT;
    return { insert: true, entity: e };
  }));
  const c0 = cpuMs(az.proc.pid);
  for (let r = 0; r < TXNS; r++) {
    await transaction(Array.from({ length: 50 }, (_, j) => {
      const e = base();
      for (let k = 0; k < extra; k++) e[`X${(r * extra + k) % Math.max(width, extra)}`] = TEXT;
      return { pk, rk: `d-${j}`, entity: e };
    }));
  }
  return (cpuMs(az.proc.pid) - c0) / TXNS;
}

const shapes = (process.env.SHAPES || "0:0,40:0,40:1,40:2,40:4,100:4").split(",").map((s) => s.split(":").map(Number));
const figures = new Map(shapes.map((s) => [s.join(), []]));
for (let r = 0; r < ROUNDS; r++)
  for (const [w, x] of shapes) figures.get(`${w},${x}`).push(await scenario(`p${r}w${w}x${x}`, w, x));
const med = (a) => [...a].sort((p, q) => p - q)[a.length >> 1];
console.log(`Azurite CPU per transaction of 50 MERGEs (median of ${ROUNDS} rounds of ${TXNS}; 10 ms clock ticks):`);
for (const [w, x] of shapes)
  console.log(`  stored row +${String(w).padStart(3)} properties, each merge +${x} properties: ${med(figures.get(`${w},${x}`)).toFixed(2)} ms`);
await az.close();
