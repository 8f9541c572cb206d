// Times the core::bench workloads natively (the rorec CLI) and in headless Chromium (the wasm
// build, window.rorec.bench) in one run, and prints the wasm/native ratios.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';

const BASE = process.env.BASE_URL || 'http://127.0.0.1:8765/';
const CLI = process.env.ROREC_CLI || 'target/release/rorec';
const native = execFileSync(CLI, ['bench']).toString().trim().split('\n').map((l) => JSON.parse(l));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage();
await page.goto(`${BASE}#/slate-world?logs=100`);
await page.waitForFunction(() => window.rorec && window.__rorecLastReport);
console.log('| workload | unit | native /s | wasm /s | wasm time / native time |');
console.log('|---|---|---|---|---|');
for (const n of native) {
  const w = JSON.parse(await page.evaluate((name) => window.rorec.bench(name), n.name));
  const fmt = (x) => x >= 100 ? x.toExponential(3) : x.toFixed(3);
  console.log(`| ${n.name} | ${n.unit} | ${fmt(n.per_second)} | ${fmt(w.per_second)} | ${(w.milliseconds / n.milliseconds).toFixed(2)} |`);
}
await browser.close();
