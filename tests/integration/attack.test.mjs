// Integration: hostile inputs against history format v2, through the real handler and real
// Azurite (found by attacking the code of issues 11 and 12). Event Hubs cannot run here, so the
// test plays the host: each batch is what the host would post.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from '../lib/harness.mjs';

let az, handler;

before(async () => {
  az = await h.startAzurite();
  handler = await h.startHandler(h.handlerEnv(az));
});
after(async () => {
  await handler?.stop();
  await az?.close();
});

const post = (evs, partition = '0') => h.invoke(handler.url, 'EnvironmentEventTrigger', h.hostBatch(evs, { partition }));
const get = async (path) => {
  const r = await fetch(`${handler.url}/api/${path}`);
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* CSV or an error text */ }
  return { status: r.status, text, json };
};
const at = (iso, s) => new Date(Date.parse(iso) + s * 1000).toISOString();
const HOUR = 'from=2026-11-28T07:00:00Z&to=2026-11-28T07:59:59Z';

describe('history under hostile input', () => {
  test('sequence numbers of 19 digits: the readings read back', async () => {
    const D = 'at-bigseq';
    const evs = [0, 1].map((i) => ({ deviceId: D, seq: String(9223372036854775000n + BigInt(i)), enqueued: at('2026-11-28T07:20:00Z', i), body: { temperature: 30 + i } }));
    assert.equal((await post(evs)).status, 200);
    const raw = await get(`gethistory?device=${D}&${HOUR}`);
    assert.equal(raw.status, 200, raw.text);
    assert.deepEqual(raw.json.points.map((p) => p.celsius), [30, 31]);
    // (JSON.parse rounds numbers past 2^53: the text itself)
    assert.deepEqual(raw.text.match(/"sequenceNumber":\d+/g), ['"sequenceNumber":9223372036854775000', '"sequenceNumber":9223372036854775001']);
  });

  test('Light of 1e308 (no range): the minute keeps counting and the hour summary answers', async () => {
    const D = 'at-huge';
    const ev = (i, s, light) => ({ deviceId: D, seq: 100 + i, enqueued: at('2026-11-28T07:30:00Z', s), body: { temperature: 20, light } });
    // two readings in minute 07:30 whose Light sum is past the double range, then a third one in
    // the same minute by a later batch, and one in another minute of the hour
    assert.equal((await post([ev(0, 0, 1e308), ev(1, 1, 1e308)])).status, 200);
    assert.equal((await post([ev(2, 2, 5)])).status, 200);
    assert.equal((await post([ev(3, 120, 1e308)])).status, 200);
    const minute = await get(`gethistory?device=${D}&${HOUR}&resolution=minute`);
    assert.equal(minute.status, 200, minute.text);
    assert.deepEqual(minute.json.points.map((p) => [p.time, p.count, p.light?.max]), [
      ['2026-11-28T07:30:00.000Z', 3, 1e308], ['2026-11-28T07:32:00.000Z', 1, 1e308]]);
    const hour = await get(`gethistory?device=${D}&${HOUR}&resolution=hour`);
    assert.equal(hour.status, 200, hour.text);
    assert.deepEqual(hour.json.points.map((p) => [p.count, p.light.min, p.light.max]), [[4, 5, 1e308]]);
    assert.ok(Number.isFinite(hour.json.points[0].light.mean));
  });
});
