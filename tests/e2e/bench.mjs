// Times the core::bench workloads natively (the rorec CLI) and in headless Chromium (the wasm
// build, window.rorec.bench) in one run, and prints the wasm/native ratios.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';

const BASE = process.env.BASE_URL || 'http://127.0.0.1:8765/';
const CLI = process.env.ROREC_CLI || 'target/release/rorec';
// ONLY=a,b runs the workloads whose names contain a or b.
const names = execFileSync(CLI, ['bench', '--list']).toString().trim().split('\n').filter((n) => !process.env.ONLY || process.env.ONLY.split(',').some((o) => n.includes(o)));
const native = names.map((n) => JSON.parse(execFileSync(CLI, ['bench', n]).toString().trim().split('\n').pop()));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage();
await page.goto(`${BASE}#/slate-world?logs=100`);
await page.waitForFunction(() => window.rorec && window.__rorecLastReport);
// Each workload runs three times in the page: the first call runs code V8 has not optimised yet
// (a fresh module runs in its baseline compiler, Liftoff, and a function is recompiled by the
// optimising compiler, TurboFan, once it has run a while; a long call stays in the code it started
// in), as a page's first run does; the faster of the next two runs optimised code. The ratios are
// wasm time / native time, each against the same native run.
console.log('| workload | unit | native /s | wasm /s, first call | wasm /s, warm | wasm/native, first call | wasm/native, warm |');
console.log('|---|---|---|---|---|---|---|');
const wasm = {};
for (const n of native) {
  const runs = [];
  for (let i = 0; i < 3; i++) runs.push(JSON.parse(await page.evaluate((name) => window.rorec.bench(name), n.name)));
  const [cold, ...later] = runs;
  const w = later.reduce((a, b) => (b.milliseconds < a.milliseconds ? b : a));
  wasm[n.name] = w;
  const fmt = (x) => x >= 100 ? x.toExponential(3) : x.toFixed(3);
  // A unit that carries a measurement of its own (the batch's ratio to single queries) differs
  // between the two environments: both are shown.
  const unit = w.unit === n.unit ? n.unit : `${n.unit}; in wasm: ${w.unit}`;
  console.log(`| ${n.name} | ${unit} | ${fmt(n.per_second)} | ${fmt(cold.per_second)} | ${fmt(w.per_second)} | ${(cold.milliseconds / n.milliseconds).toFixed(2)} | ${(w.milliseconds / n.milliseconds).toFixed(2)} |`);
}
// PRR vs slate IPS: time per epoch on the same rows, as ratios within each environment.
const epochs = ['1e3', '1e4', '1e5'].filter((p) => wasm[`prr-epoch-${p}`] && wasm[`slate-ips-epoch-${p}`]);
if (epochs.length) {
  const nat = Object.fromEntries(native.map((n) => [n.name, n]));
  console.log('\n| P | native PRR ms/epoch | native slate IPS ms/epoch | native IPS/PRR | wasm PRR ms/epoch | wasm slate IPS ms/epoch | wasm IPS/PRR |');
  console.log('|---|---|---|---|---|---|---|');
  for (const p of epochs) {
    const [np, ni, wp, wi] = [nat[`prr-epoch-${p}`], nat[`slate-ips-epoch-${p}`], wasm[`prr-epoch-${p}`], wasm[`slate-ips-epoch-${p}`]].map((r) => r.milliseconds);
    console.log(`| ${p} | ${np.toFixed(2)} | ${ni.toFixed(2)} | ${(ni / np).toFixed(1)} | ${wp.toFixed(2)} | ${wi.toFixed(2)} | ${(wi / wp).toFixed(1)} |`);
  }
}
// REINFORCE at P = 1e5: iterations per second of each estimator, and the ratios to exact.
const steps = ['exact', 'uniform', 'mixture'].map((m) => `reinforce-step-1e5-${m}`);
if (steps.every((n) => wasm[n])) {
  const nat = Object.fromEntries(native.map((n) => [n.name, n]));
  console.log('\n| method (P = 1e5) | native it/s | native ÷ exact | wasm it/s | wasm ÷ exact |');
  console.log('|---|---|---|---|---|');
  for (const n of steps) {
    const [ne, we] = [nat[steps[0]].per_second, wasm[steps[0]].per_second];
    console.log(`| ${n.slice('reinforce-step-1e5-'.length)} | ${nat[n].per_second.toFixed(1)} | ${(nat[n].per_second / ne).toFixed(1)}× | ${wasm[n].per_second.toFixed(1)} | ${(wasm[n].per_second / we).toFixed(1)}× |`);
  }
}
await browser.close();
