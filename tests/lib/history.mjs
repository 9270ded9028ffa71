// The history table of format v2 read back by the readers' rule (hformat.md, README "History"),
// written here independently of the handler's reader, for the writer's tests:
//  - raw readings: chunk rows (Readings: reading texts joined by "\n"), rows of format v1 (one
//    reading each), then each device row's pending readings (pendingTexts), de-duplicated by
//    (partition, seq, k) per device;
//  - summaries: the frozen hour rows of the hours before the device row's HistHour, and the
//    device row's minute slots of the hour HistHour with the readings of the groups after Q00 of
//    the generation QLater names (pending readings the slots do not hold yet).
import * as h from './harness.mjs';

/** One reading text: "<ms>;<partition>;<seq>;<k>;<Celsius>;<Humidity>;<hPa>;<Light>". */
export function parseReading(text) {
  const f = text.split(';');
  if (f.length !== 8) throw new Error(`reading text with ${f.length} fields: ${text}`);
  const num = (v) => (v === '' ? null : Number(v));
  return { ms: Number(f[0]), partition: decodeURIComponent(f[1]), seq: Number(f[2]), k: Number(f[3]),
    celsius: num(f[4]), humidity: num(f[5]), hPa: num(f[6]), light: num(f[7]) };
}

/** The minute summary text "<count>|<n>,<min>,<max>,<sum>|..." as { count, metrics: [...] }. */
export function parseMinute(text) {
  const [count, ...m] = text.split('|');
  return { count: Number(count), metrics: m.map((x) => x.split(',').map((v) => (v === '' ? null : Number(v)))) };
}

/** Everything the readers see: { rows, devices, readings: Map(device -> [reading...]), copies }.
 * copies counts the raw copies found (chunks written twice by an attempt that did not commit). */
/** The pending reading texts of a DeviceState row, as the README says: the format v2 slots
 * P00..P(PendN-1), then the groups Q00.. ("<gen>|<text>\\n<text>...") of Q00's generation, up to the
 * first group of another one. With { later: true }, only the texts the minute slots do not hold
 * yet: those of the groups after Q00 when QLater is their generation. */
export function pendingTexts(d, { later = false } = {}) {
  const texts = [];
  if (!later) for (let i = 0; i < Math.min(Number(d.PendN ?? 0), 32); i++) texts.push(d[`P${String(i).padStart(2, '0')}`]);
  let gen = null;
  for (let i = 0; i < 32; i++) {
    const m = /^([1-9][0-9]{0,17})\|(.*)$/s.exec(d[`Q${String(i).padStart(2, '0')}`] ?? '');
    if (!m || (gen !== null && m[1] !== gen)) break;
    gen = m[1];
    if (m[2] !== '' && (!later || (i > 0 && String(d.QLater ?? '') === gen))) texts.push(...m[2].split('\n'));
  }
  return texts;
}

export async function readHistory(az, { table = 'ReadingHistory', deviceTable = 'DeviceState', prefix = '' } = {}) {
  const rows = (await h.tableAll(az, table)).filter((r) => (r.DeviceId ?? '').startsWith(prefix));
  const devices = (await h.tableAll(az, deviceTable)).filter((r) => r.RowKey.startsWith(prefix));
  const seen = new Map();
  let copies = 0;
  const add = (device, r) => {
    if (!seen.has(device)) seen.set(device, new Map());
    const key = `${r.partition}\u0000${r.seq}\u0000${r.k}`;
    copies++;
    if (!seen.get(device).has(key)) seen.get(device).set(key, r);
  };
  for (const row of rows) {
    if (typeof row.Readings === 'string') {
      const texts = row.Readings.split('\n');
      if (texts.length !== row.Count) throw new Error(`chunk ${row.RowKey}: Count ${row.Count}, ${texts.length} readings`);
      for (const t of texts) add(row.DeviceId, parseReading(t));
    } else if (row.Time) {
      add(row.DeviceId, { ms: Date.parse(row.Time), partition: row.Partition, seq: Number(row.SequenceNumber),
        k: Number(row.RowKey.split(' ').at(-1)), celsius: row.Celsius ?? null, humidity: row.Humidity ?? null, hPa: row.hPa ?? null, light: row.Light ?? null });
    }
  }
  for (const d of devices) for (const t of pendingTexts(d)) add(d.RowKey, parseReading(t));
  const readings = new Map([...seen].map(([dev, m]) => [dev, [...m.values()].sort((a, b) => a.ms - b.ms || a.seq - b.seq || a.k - b.k)]));
  return { rows, devices, readings, copies };
}

/** The summaries of one device row by the readers' rule: { total, hours: Map(hour -> count),
 * late }. Also checks that each frozen row's Count is the sum of its minutes. */
export function summaryOf(device, rows) {
  const histHour = Number(device.HistHour ?? -1);
  const hours = new Map();
  for (const r of rows) {
    if (r.DeviceId !== device.RowKey || !r.RowKey.startsWith('~~m ')) continue;
    const pk = r.PartitionKey;
    const hour = Date.UTC(+pk.slice(1, 5), +pk.slice(5, 7) - 1, +pk.slice(7, 9), +pk.slice(9, 11)) / 3600000;
    if (hour >= histHour) continue;
    const minutes = Object.keys(r).filter((k) => /^M\d\d$/.test(k)).reduce((n, k) => n + parseMinute(r[k]).count, 0);
    if (minutes !== Number(r.Count)) throw new Error(`frozen row ${pk} ${r.RowKey}: Count ${r.Count}, minutes ${minutes}`);
    hours.set(hour, Number(r.Count));
  }
  let slots = 0;
  for (let m = 0; m < 60; m++) {
    const t = device[`Min${String(m).padStart(2, '0')}`];
    if (!t) continue;
    const [minute, text] = [Number(t.slice(0, t.indexOf(';'))), t.slice(t.indexOf(';') + 1)];
    if (Math.floor(minute / 60) === histHour) slots += parseMinute(text).count;
  }
  // the readings not in the slots yet: the writer adds each to its minute when it next cuts a chunk
  for (const t of pendingTexts(device, { later: true })) if (Math.floor(parseReading(t).ms / 3600000) === histHour) slots++;
  if (histHour >= 0) hours.set(histHour, slots);
  const total = [...hours.values()].reduce((a, b) => a + b, 0);
  return { total, hours, late: Number(device.LateReadings ?? 0) };
}
