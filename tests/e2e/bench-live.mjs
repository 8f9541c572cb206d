// How live each lesson feels in headless Chromium: time to the first drawn figure and to the
// first complete report after opening it, then the time from a change of its main knob to its
// first changed figure (the new value's preview or results so far) and to the complete report,
// three times: to the new value (stages that depend on the knob rerun), back to
// the old one, and to the new value again (both now answered from the workers' stage caches).
// Then a drag of the knob's slider: the time from an input event to the preview it shows, and
// from the release to the complete report. Throughout, the longest main-thread task (Long Tasks
// API). Needs BASE_URL (the served dist/). Prints a Markdown table. Benchmark figures, not tests.
import { chromium } from 'playwright-core';

const BASE = process.env.BASE_URL || 'http://127.0.0.1:8766/';
const KNOBS = [
  { lesson: 'slate-world', query: 'logging=softmax', knob: 'temperature', from: '1', to: '2' },
  { lesson: 'horvitz-thompson', query: '', knob: 'cap', from: '1000', to: '100' },
  { lesson: 'embeddings', query: '', knob: 'power_iterations', from: '2', to: '1' },
  { lesson: 'fast-mips', query: '', knob: 'ef_search', from: '32', to: '64' },
  { lesson: 'reward-and-rank', query: 'world=synthetic', knob: 'slate_size', from: '4', to: '5' },
  { lesson: 'reinforce', query: '', knob: 'epsilon', from: '0.2', to: '0.5' },
  { lesson: 'putting-it-together', query: '', knob: 'hidden_width', from: '32', to: '16' },
].filter((k) => !process.env.ONLY || process.env.ONLY.split(',').some((o) => k.lesson.includes(o)));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});

/** Resolves when the page shows a finished report for the parameters in its address. */
const complete = (page) => page.waitForFunction(() => document.querySelector('.run-controls .ok')
  && !document.querySelector('.widget.stale') && window.__rorecLastReport, null, { timeout: 600000, polling: 10 });

async function change(page, name, value) {
  const started = Date.now();
  // The control wherever the lesson placed it ({{params}} or {{controls …}}): its text box or select.
  const input = page.locator(`[data-param="${name}"] input:not([type=range]):not([type=checkbox]), [data-param="${name}"] select`).first();
  if (await input.evaluate((el) => el.tagName) === 'SELECT') await input.selectOption(value);
  else { await input.fill(value); await input.press('Enter'); }
  await page.waitForFunction(([n, v]) => new RegExp(`[?&]${n}=${v}(&|$)`).test(location.hash), [name, value], { polling: 10 });
  // The page has re-rendered with the new address: its figures are marked stale until a report of
  // the new value (a preview, or the results so far of a run in slices, or the full report) is drawn.
  await page.waitForFunction(() => !document.querySelector('.widget.stale'), null, { timeout: 600000, polling: 10 });
  const figure = Date.now() - started;
  await complete(page);
  return [figure, Date.now() - started];
}

/** Drags the knob's slider one step from its position: ms to the preview, then ms from release to the complete report. */
async function drag(page, name) {
  const slider = page.locator(`[data-param="${name}"] input[type=range]`).first();
  if (await slider.count() === 0) return ['–', '–'];
  const before = await page.evaluate(() => location.hash);
  const started = Date.now();
  await slider.evaluate((el) => {
    el.value = String(Math.min(1000, Number(el.value) + 150));
    el.dispatchEvent(new Event('input', { bubbles: true }));
  });
  try {
    await page.waitForFunction(() => /release the control/.test(document.querySelector('.run-controls .status')?.textContent || ''),
      null, { timeout: 60000, polling: 5 });
  } catch (e) {
    const status = await page.evaluate(() => document.querySelector('.run-controls .status')?.textContent);
    console.error(`no preview within 60 s; status: ${status}`);
    return ['> 60000', '–'];
  }
  const preview = Date.now() - started;
  const released = Date.now();
  await slider.evaluate((el) => el.dispatchEvent(new Event('change', { bubbles: true })));
  await page.waitForFunction((b) => location.hash !== b, before, { polling: 10 });
  await complete(page);
  return [preview, Date.now() - released];
}

const rows = [];
for (const k of KNOBS) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.addInitScript(() => {
    window.__longestTask = 0;
    new PerformanceObserver((list) => list.getEntries().forEach((e) => { window.__longestTask = Math.max(window.__longestTask, e.duration); }))
      .observe({ type: 'longtask', buffered: true });
  });
  const opened = Date.now();
  await page.goto(`${BASE}#/${k.lesson}${k.query ? `?${k.query}` : ''}`);
  await page.waitForFunction(() => document.querySelector('.widget canvas, .widget table'), null, { timeout: 600000, polling: 10 });
  const first = Date.now() - opened;
  await complete(page);
  const full = Date.now() - opened;
  const changes = [await change(page, k.knob, k.to), await change(page, k.knob, k.from), await change(page, k.knob, k.to)];
  const times = changes.map(([, complete]) => complete);
  const changedFigure = changes[0][0];
  const [preview, release] = await drag(page, k.knob);
  const longest = Math.round(await page.evaluate(() => window.__longestTask));
  rows.push(`| ${k.lesson} | ${first} | ${full} | ${k.knob} ${k.from} → ${k.to} | ${changedFigure} | ${times.join(' / ')} | ${preview} / ${release} | ${longest} |`);
  console.error(rows[rows.length - 1]);
  await context.close();
}
console.log('| lesson | first figure (ms) | first complete report (ms) | main knob | knob → first changed figure, new value (ms) | knob → complete report (ms): new / back / new again | drag → preview / release → complete (ms) | longest main-thread task (ms) |');
console.log('|---|---|---|---|---|---|---|---|');
rows.forEach((r) => console.log(r));
await browser.close();
