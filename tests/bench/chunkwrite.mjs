// Benchmark (figures, not pass/fail): Azurite's cost for a history flush, the transaction of one
// chunk row per device (handler/history.c), sent as InsertOrReplace (PUT, what the writer did) or
// as Insert (POST, what it does now: it falls back to PUT on 409), into an hour partition that
// already holds FILL chunk rows. Azurite 3.35.0 looks every InsertOrReplace up twice and an Insert
// once, each a scan of the partition. Alone:
//   node tests/bench/chunkwrite.mjs            (FILL=600 LEN=32 OPS=50 K=20; ONLY=PUT|POST|SMALL)
// SMALL: PUT of rows holding one reading each (the row's size barely matters; the lookups do).
import { createHmac } from 'node:crypto';
import * as h from '../lib/harness.mjs';
const az = await h.startAzurite();
await h.tableCreate(az, 'Hist');
async function batch(method, rows, pk) {
  const b = 'batch_a', c = 'changeset_b';
  let body = `--${b}\r\nContent-Type: multipart/mixed; boundary=${c}\r\n\r\n`;
  for (const r of rows) {
    const url = method === 'POST' ? `${az.endpoint}/Hist` : `${az.endpoint}/Hist(PartitionKey='${pk}',RowKey='${encodeURIComponent(r.RowKey)}')`;
    const ent = method === 'POST' ? { PartitionKey: pk, ...r } : { ...r, RowKey: undefined };
    body += `--${c}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n${method} ${url} HTTP/1.1\r\nContent-Type: application/json\r\nAccept: application/json;odata=minimalmetadata\r\nDataServiceVersion: 3.0;\r\n${method === 'POST' ? 'Prefer: return-no-content\r\n' : ''}\r\n${JSON.stringify(ent)}\r\n`;
  }
  body += `--${c}--\r\n--${b}--\r\n`;
  const url = new URL(`${az.endpoint}/$batch`);
  const date = new Date().toUTCString();
  const ctype = `multipart/mixed; boundary=${b}`;
  const sts = `POST\n\n${ctype}\n${date}\n/${h.DEV_ACCOUNT}${url.pathname}`;
  const sig = createHmac('sha256', Buffer.from(h.DEV_KEY, 'base64')).update(sts, 'utf8').digest('base64');
  const s = process.hrtime.bigint();
  const res = await fetch(url, { method: 'POST', headers: { 'x-ms-date': date, 'x-ms-version': '2019-02-02', DataServiceVersion: '3.0;NetFx', MaxDataServiceVersion: '3.0;NetFx', Authorization: `SharedKey ${h.DEV_ACCOUNT}:${sig}`, 'Content-Type': ctype }, body });
  const t = await res.text();
  const ms = Number(process.hrtime.bigint() - s) / 1e6;
  if (res.status !== 202 || /HTTP\/1.1 [45]/.test(t)) throw new Error(res.status + t.slice(0, 500));
  return ms;
}
const READ = '1764683000000;0;12345;0;20.1;55;1003;';
let n = 0;
const chunk = (len) => ({ RowKey: `dev-${String(n % 50).padStart(2, '0')} ${String(1764683000000 + n).padStart(13, '0')} 0 ${String(n++).padStart(20, '0')} 0 abcdef12`, DeviceId: 'dev', 'From@odata.type': 'Edm.DateTime', From: '2026-12-02T13:00:00.000Z', 'To@odata.type': 'Edm.DateTime', To: '2026-12-02T13:00:01.000Z', Count: 32, Readings: Array(len).fill(READ).join('\n') });
const FILL = Number(process.env.FILL || 600), LEN = Number(process.env.LEN || 32), OPS = Number(process.env.OPS || 50);
for (let i = 0; i < FILL; i += 100) await batch('PUT', Array.from({ length: 100 }, () => chunk(LEN)), 'h1');
const t = { PUT: [], POST: [], SMALL: [] };
for (let k = 0; k < Number(process.env.K || 20); k++) for (const m of (process.env.ONLY ? [process.env.ONLY] : ['PUT', 'POST', 'SMALL'])) t[m].push(await batch(m === 'SMALL' ? 'PUT' : m, Array.from({ length: OPS }, () => chunk(m === 'SMALL' ? 1 : LEN)), 'h1'));
const med = (a) => { const b = [...a].sort((x, y) => x - y); return b[b.length >> 1].toFixed(2); };
console.log(Object.entries(t).filter(([, v]) => v.length).map(([k, v]) => `${k} ${med(v)} ms`).join(', '));
await az.close();
