// Benchmark (make bench): the handler's peak resident memory (VmHWM from /proc) for the largest
// batches, against the size of the request body. Figures, not pass/fail. Each case runs in a
// fresh handler (VmHWM is a high-water mark), against Azurite on this machine:
//   - 100 events of 256 KiB (IoT Hub's largest message; the host.json batch size), plain text
//   - 100,000 tiny events with only the metadata the handler needs (about 3.5 MB, the issue's
//     case), and the same with every IoT Hub system property: the most JSON values per byte
//   - 100 events of 256 KiB of raw control characters (bodies that are not JSON, so rejected and
//     kept): each byte escaped twice grows 7x, the largest body the host can send with this
//     host.json (about 176 MiB)
// Options (env): RSS_CASES (comma-separated names, default all); RSS_MAX_BODY (MaxRequestBodyBytes,
// to compare with a build whose default is lower).
import { readFileSync } from 'node:fs';
import * as h from '../lib/harness.mjs';

const KIB = 1024;
const hwm = (pid) => {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * KIB : NaN;
};
const mb = (n) => (n / 1e6).toFixed(1);

function bigEvents(n, size, fill) {
  const head = JSON.stringify({ temperature: 21.5, humidity: 50, pad: '' });
  const pad = fill.repeat(Math.max(0, size - head.length));
  return Array.from({ length: n }, (_, i) => ({ deviceId: `rss-${i % 10}`, seq: i + 1, body: JSON.stringify({ temperature: 21.5, humidity: 50, pad }) }));
}

const CASES = {
  'text-100x256KiB': () => bigEvents(100, 256 * KIB, 'x'),
  'tiny-100000': () => Array.from({ length: 100000 }, (_, i) => ({ seq: i + 1, body: { deviceId: `t-${i % 50}`, temperature: 20 } })),
  'tiny-100000-iothub': () => Array.from({ length: 100000 }, (_, i) => ({ deviceId: `t-${i % 50}`, seq: i + 1, body: { temperature: 20 } })),
  'control-100x256KiB': () => Array.from({ length: 100 }, (_, i) => ({ deviceId: `c-${i % 10}`, seq: i + 1, body: '\u0001'.repeat(256 * KIB) })),
};

const wanted = (process.env.RSS_CASES || Object.keys(CASES).join(',')).split(',');
const az = await h.startAzurite();
try {
  console.log('case                    body MB   handler VmHWM MB   ratio   answer');
  for (const name of wanted) {
    const handler = await h.startHandler(h.handlerEnv(az, process.env.RSS_MAX_BODY ? { MaxRequestBodyBytes: process.env.RSS_MAX_BODY } : {}));
    try {
      const idle = hwm(handler.proc.pid);
      const doc = h.hostBatch(CASES[name](), { partition: name });
      if (name === 'tiny-100000') {
        // only what the handler reads: bodies, sequence numbers, the partition
        doc.Metadata = { TriggerPartitionContext: doc.Metadata.TriggerPartitionContext, SequenceNumberArray: doc.Metadata.SequenceNumberArray };
      }
      const text = JSON.stringify(doc);
      const r = await h.invoke(handler.url, 'EnvironmentEventTrigger', text, { raw: true });
      const peak = hwm(handler.proc.pid);
      const bytes = Buffer.byteLength(text);
      console.log(`${name.padEnd(22)} ${mb(bytes).padStart(8)} ${mb(peak).padStart(18)} ${(peak / bytes).toFixed(2).padStart(7)}   ${r.status} ${(r.json?.Logs || []).join(' | ').slice(0, 90)}`);
      console.log(`${''.padEnd(22)} (idle before the batch: ${mb(idle)} MB)`);
    } finally {
      await handler.stop();
    }
  }
} finally {
  await az.close();
}
