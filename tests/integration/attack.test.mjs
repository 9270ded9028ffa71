// Integration: hostile inputs against history format v2, through the real handler and real
// Azurite (found by attacking the code of issues 11 and 12). Event Hubs cannot run here, so the
// test plays the host: each batch is what the host would post.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import * as h from '../lib/harness.mjs';
import { parseReading, pendingTexts } from '../lib/history.mjs';

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

// Two processes on one device (partitions A and B), a lost race: per device, frozen hours before
// HistHour + the slots of HistHour + LateReadings must equal Count (hformat-changes.md, 16:07).
// Process 1 closes hour 09 and writes its frozen hour row; process 2 closes hour 09 too and
// commits first; process 1's device write is refused (412), it folds again (its 09:20 reading is
// now late) and repairs the frozen row it wrote (historyRepair).
async function race(holdTable, p2Events, check) {
  // a proxy before handler 1 that holds its next write to holdTable until released
  const port = await h.freePort();
  const px = { hold: false, held: null };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const forward = () => {
        const up = http.request({ host: '127.0.0.1', port: az.port, method: req.method, path: req.url, headers: req.headers }, (ur) => { res.writeHead(ur.statusCode, ur.headers); ur.pipe(res); });
        up.on('error', () => res.destroy());
        up.end(body);
      };
      const write = req.method !== 'GET' && req.method !== 'HEAD';
      if (px.hold && write && (req.url.includes(holdTable) || body.includes(`${holdTable}(`))) {
        px.hold = false;
        px.held = forward;
        return;
      }
      forward();
    });
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  let h1, h2;
  try {
    h1 = await h.startHandler({ ...h.handlerEnv(az), StorageConnectionString: az.connectionString.replace(`:${az.port}/`, `:${port}/`) });
    h2 = await h.startHandler(h.handlerEnv(az));
    const send = (hd, evs, partition) => h.invoke(hd.url, 'EnvironmentEventTrigger', h.hostBatch(evs, { partition }));
    const D = `at-race-${holdTable}-${p2Events.length}`;
    const ev = (seq, t) => ({ deviceId: D, seq, enqueued: `2026-11-28T${t}:00Z`, body: { temperature: 20 } });
    assert.equal((await send(h2, [ev(1, '09:10')], 'B')).status, 200);
    px.hold = true;
    const p1 = send(h1, [ev(1, '09:20'), ev(2, '10:05')], 'A');
    while (!px.held) await h.sleep(10);
    assert.equal((await send(h2, p2Events.map(([q, t]) => ev(q, t)), 'B')).status, 200);
    px.held();
    assert.equal((await p1).status, 200);
    const [row] = (await h.tableAll(az, 'DeviceState')).filter((x) => x.RowKey === D);
    const frozen = (await h.tableAll(az, 'ReadingHistory')).filter((x) => x.RowKey.startsWith('~~m ') && x.DeviceId === D);
    const hh = Number(row.HistHour);
    let slots = 0;
    for (let i = 0; i < 60; i++) {
      const t = row[`Min${String(i).padStart(2, '0')}`];
      if (t && Math.floor(Number(t.split(';')[0]) / 60) === hh) slots += Number(t.split(';')[1].split('|')[0]);
    }
    slots += pendingTexts(row, { later: true }).filter((t) => Math.floor(parseReading(t).ms / 3600000) === hh).length;
    const sum = frozen.reduce((n, x) => n + Number(x.Count), 0) + slots + Number(row.LateReadings ?? 0);
    assert.equal(sum, Number(row.Count), `frozen ${frozen.map((x) => `${x.PartitionKey}:${x.Count}`).join(' ')}, slots ${slots}, late ${row.LateReadings}`);
    check(row, frozen);
  } finally {
    await h1?.stop();
    await h2?.stop();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

describe('history summaries under a lost race', () => {
  test("the winner's frozen hour row, written after the loser's, is not replaced by a repair made from slots that lost minutes", async () => {
    // process 1's device write is held: its frozen row goes first, the winner's after it
    await race('DeviceState', [[2, '09:30'], [3, '10:10'], [4, '10:30']], (row, frozen) => {
      assert.equal(Number(row.Count), 6);
      assert.deepEqual(frozen.map((x) => [x.PartitionKey, Number(x.Count), Boolean(x.M10), Boolean(x.M20), Boolean(x.M30)]), [['h2026112809', 2, true, false, true]]);
    });
  });
  // Not fixed (a design limit, README "lost race"): when the loser's frozen row landed after the
  // winner's and the winner's batch moved a minute of the hour out of the slots (09:30 -> 10:30),
  // the repair cannot know that minute: 09:30 is then in no summary. A todo test: it runs and
  // reports without failing the suite.
  test("the loser's frozen hour row, written after the winner's, when the winner's batch moved one of the hour's minutes out of the slots", { todo: 'the repair has no exact source for that minute' }, async () => {
    await race('ReadingHistory', [[2, '09:30'], [3, '10:10'], [4, '10:30']], (row) => {
      assert.equal(Number(row.Count), 6);
    });
  });
  test("the loser's frozen hour row, written after the winner's, is repaired from the committed slots", async () => {
    // process 1's history write is held: the winner's frozen row goes first, the loser's after it
    await race('ReadingHistory', [[2, '09:30'], [3, '10:10']], (row, frozen) => {
      assert.equal(Number(row.Count), 5);
      assert.deepEqual(frozen.map((x) => [x.PartitionKey, Number(x.Count), Boolean(x.M10), Boolean(x.M20), Boolean(x.M30)]), [['h2026112809', 2, true, false, true]]);
    });
  });
});
