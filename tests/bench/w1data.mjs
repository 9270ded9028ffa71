// The benchmarks' readings (tests/bench/history.mjs, w1cpu.mjs).
/** n readings of devices prefix-00..prefix-(d-1), seq from seq0, from t0 every stepMs (round robin). */
export function readings(prefix, n, d, seq0, t0, stepMs) {
  return Array.from({ length: n }, (_, i) => ({
    deviceId: `${prefix}-${String(i % d).padStart(2, '0')}`, seq: seq0 + i, enqueued: new Date(t0 + i * stepMs).toISOString(),
    body: { temperature: 20 + (i % 50) / 10, humidity: 50 + (i % 7), pressure: 1000 + (i % 13) },
  }));
}

