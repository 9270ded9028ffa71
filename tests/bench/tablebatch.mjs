// Benchmark (figures, not pass/fail): Azurite's ceiling for entity group transactions against
// single requests, both through the handler's own Table client (build/tablebatch-tool): each of
// THREADS threads MERGEs its own ROWS rows of one partition with If-Match (the etags it was
// answered), as one transaction of ROWS operations per round, or as ROWS single MERGEs.
// run.mjs (make bench) prints these figures beside the pipeline's; alone:
//   ENVIROMON_BUILD=$PWD/build node tests/bench/tablebatch.mjs
// Options (env): BENCH_TX_ROWS (44: the devices of a W1 batch), BENCH_TX_THREADS (4),
// BENCH_TX_SECONDS (4).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as h from '../lib/harness.mjs';

const ROWS = Number(process.env.BENCH_TX_ROWS || 44);
const THREADS = Number(process.env.BENCH_TX_THREADS || 4);
const SECONDS = Number(process.env.BENCH_TX_SECONDS || 4);

function tool(az, args) {
  return new Promise((resolve, reject) => {
    const p = spawn(path.join(h.BUILD, 'tablebatch-tool'), args, { env: { ...process.env, STORAGE: az.connectionString }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`tablebatch-tool ${args.join(' ')}: ${code} ${err}`))));
  });
}

/** { tx: {writes, requests, rate, requestRate}, single: {...} } measured on az. */
export async function transactionCeiling(az, { rows = ROWS, threads = THREADS, seconds = SECONDS } = {}) {
  const figures = {};
  // A short round of each first: Azurite's code paths for both warmed, the tables created.
  for (const mode of ['batch', 'single'])
    await tool(az, ['bench', mode === 'batch' ? 'CeilingTx' : 'CeilingOne', 'Sydney', String(rows), '1', mode, String(threads)]);
  for (const mode of ['batch', 'single']) {
    const r = await tool(az, ['bench', mode === 'batch' ? 'CeilingTx' : 'CeilingOne', 'Sydney', String(rows), String(seconds), mode, String(threads)]);
    figures[mode === 'batch' ? 'tx' : 'single'] = { ...r, rate: r.writes / r.seconds, requestRate: r.requests / r.seconds };
  }
  return figures;
}

export function printCeiling(f, { rows = ROWS, threads = THREADS } = {}) {
  console.log(`Azurite, ${rows}-entity MERGE transactions: ${f.tx.rate.toFixed(0)} entity writes/s (${f.tx.requestRate.toFixed(0)} transactions/s, ${threads} in flight, through our client)`);
  console.log(`Azurite, single MERGEs:                 ${f.single.rate.toFixed(0)} entity writes/s (${f.single.requestRate.toFixed(0)} requests/s, ${threads} in flight, through our client)`);
  console.log(`  transactions write ${(f.tx.rate / f.single.rate).toFixed(1)}x the entities per second of single requests, at ${(f.tx.requests / f.tx.writes).toFixed(3)} requests per entity written (single: ${(f.single.requests / f.single.writes).toFixed(3)})`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const az = await h.startAzurite();
  try {
    printCeiling(await transactionCeiling(az));
  } finally {
    await az.close();
  }
}
