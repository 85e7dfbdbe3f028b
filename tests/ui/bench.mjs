// Benchmark: time from opening Discover (last 24 h) to the first rows and the histogram
// drawn, measured in the browser, over N stored lines.
//
//   node tests/ui/bench.mjs [lines=1000000] [span-hours=24]
//   BENCH_URL=http://127.0.0.1:9200 node tests/ui/bench.mjs
//
// With BENCH_URL the benchmark uses that running server and its `logs-bench` index as
// they are (e.g. the 10 M lines of bench/run-search.sh, served with CAIRN_NOW at the
// corpus end) instead of starting one and loading the sample.
//
// Lines are the Apache sample's, repeated with timestamps spread evenly over the span
// ending at CAIRN_NOW, so "last 24 hours" covers them all (the worst case for the count
// and the histogram). Prints the median of 5 page loads after one warm-up.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { readSamples } from './samples.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.CAIRN_BIN || path.join(ROOT, 'target/debug/cairn');
const LINES = Number(process.argv[2] || 1_000_000);
const SPAN_MS = Number(process.argv[3] || 24) * 3600_000;
const NOW = '2015-05-20T21:10:00Z';
const NOW_MS = Date.parse(NOW);

const external = process.env.BENCH_URL;
let proc = null;
let dir = null;
let base = external;
if (!external) {
  const port = await new Promise((resolve) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); }); });
  dir = mkdtempSync(path.join(process.env.BENCH_DIR || os.tmpdir(), 'cairn-ui-bench-'));
  proc = spawn(BIN, ['serve', '--data-dir', path.join(dir, 'data'), '--listen', `127.0.0.1:${port}`, '--max-past', '36500d'], {
    env: { ...process.env, CAIRN_NOW: NOW, RUST_LOG: 'warn' }, stdio: ['ignore', 'inherit', 'inherit'],
  });
  base = `http://127.0.0.1:${port}`;
}
for (let i = 0; ; i++) {
  try { if ((await fetch(`${base}/ui/`)).ok) break; } catch { /* starting */ }
  if (i > 200) throw new Error('server did not start');
  await new Promise(r => setTimeout(r, 100));
}

try {
  const sample = readSamples('web-access/elastic-examples_apache_logs.log');
  const t0 = Date.now();
  const BATCH = 10000;
  // With BENCH_URL, the server's data is used as it is.
  let next = external ? LINES : 0;
  const worker = async () => {
    while (next < LINES) {
      const start = next;
      next += BATCH;
      const end = Math.min(LINES, start + BATCH);
      let body = '';
      for (let i = start; i < end; i++) {
        const d = sample[i % sample.length];
        const ts = NOW_MS - SPAN_MS + Math.floor((i / LINES) * SPAN_MS);
        body += `{"create":{}}\n${JSON.stringify({ ...d, '@timestamp': new Date(ts).toISOString() })}\n`;
      }
      const r = await fetch(`${base}/logs-bench/_bulk`, { method: 'POST', headers: { 'Content-Type': 'application/x-ndjson' }, body });
      const j = await r.json();
      if (!r.ok || j.errors) throw new Error(`bulk failed: ${JSON.stringify(j).slice(0, 300)}`);
    }
  };
  await Promise.all([worker(), worker()]);
  await fetch(`${base}/_refresh`, { method: 'POST' });
  const count = (await (await fetch(`${base}/logs-bench/_count`)).json()).count;
  console.log(`ingested ${count} lines in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const runs = [];
  for (let i = 0; i < 6; i++) {
    await page.goto(`${base}/ui/discover?dv=logs-bench&from=now-24h&to=now`);
    await page.waitForSelector('#doc-table tbody tr.doc-row', { timeout: 60000 });
    await page.waitForSelector('#histogram canvas', { timeout: 60000 });
    // From navigation start (performance.now() origin) to both drawn.
    const t = await page.evaluate(() => ({ rows: window.__cairnTimings.started + window.__cairnTimings.rows, hist: window.__cairnTimings.started + window.__cairnTimings.histogram, total: document.querySelector('#hit-count').textContent }));
    if (i > 0) runs.push(t);
  }
  await browser.close();
  const med = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`Discover over ${runs[0].total} (last 24 h of ${count} stored): first rows ${med(runs.map(r => r.rows)).toFixed(0)} ms, histogram ${med(runs.map(r => r.hist)).toFixed(0)} ms after navigation start (median of ${runs.length})`);
} finally {
  if (proc) {
    proc.kill('SIGTERM');
    await new Promise(r => proc.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}
