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

// Times are taken inside the page (performance.now()): from the event that commits a change (the
// Enter key in a text box, a select's change, a slider's input or release) to the first animation
// frame that shows the result, so that the harness's round trips to the browser are not counted.

/** Resolves in the page at the first frame where the lesson shows a finished report for the
 * parameters in its address; the frame's time. */
const complete = (page) => page.evaluate(() => new Promise((resolve) => {
  const check = () => (document.querySelector('.run-controls .ok') && !document.querySelector('.widget.stale')
    && window.__rorecLastReport ? resolve(performance.now()) : requestAnimationFrame(check));
  check();
}));

/** The first frame where the address has `name=value` and no figure is stale (a report of the new
 * value is drawn: its preview, results so far, or the full report); the frame's time. */
const drawn = (page, name, value) => page.evaluate(([n, v]) => new Promise((resolve) => {
  const check = () => (new RegExp(`[?&]${n}=${v}(&|$)`).test(location.hash) && !document.querySelector('.widget.stale')
    ? resolve(performance.now()) : requestAnimationFrame(check));
  check();
}), [name, value]);

async function change(page, name, value) {
  // The control wherever the lesson placed it ({{params}} or {{controls …}}): its text box or select.
  const input = page.locator(`[data-param="${name}"] input:not([type=range]):not([type=checkbox]), [data-param="${name}"] select`).first();
  await page.evaluate(() => { window.__committed = null; });
  if (await input.evaluate((el) => el.tagName) === 'SELECT') await input.selectOption(value);
  else { await input.fill(value); await input.press('Enter'); }
  const figure = await drawn(page, name, value);
  const done = await complete(page);
  const committed = await page.evaluate(() => window.__committed);
  return [Math.round(figure - committed), Math.round(done - committed)];
}

/** Drags the knob's slider one step from its position: ms to the preview, then ms from release to the complete report. */
async function drag(page, name) {
  const slider = page.locator(`[data-param="${name}"] input[type=range]`).first();
  if (await slider.count() === 0) return ['–', '–'];
  const before = await page.evaluate(() => location.hash);
  const started = await slider.evaluate((el) => {
    el.value = String(Math.min(1000, Number(el.value) + 150));
    const at = performance.now();
    el.dispatchEvent(new Event('input', { bubbles: true }));
    return at;
  });
  const shown = await Promise.race([
    page.evaluate(() => new Promise((resolve) => {
      const check = () => (/release the control/.test(document.querySelector('.run-controls .status')?.textContent || '')
        ? resolve(performance.now()) : requestAnimationFrame(check));
      check();
    })),
    new Promise((resolve) => { setTimeout(() => resolve(null), 60000); }),
  ]);
  if (shown === null) {
    const status = await page.evaluate(() => document.querySelector('.run-controls .status')?.textContent);
    console.error(`no preview within 60 s; status: ${status}`);
    return ['> 60000', '–'];
  }
  const released = await slider.evaluate((el) => {
    const at = performance.now();
    el.dispatchEvent(new Event('change', { bubbles: true }));
    return at;
  });
  await page.waitForFunction((b) => location.hash !== b, before, { polling: 10 });
  const done = await complete(page);
  return [Math.round(shown - started), Math.round(done - released)];
}

const rows = [];
for (const k of KNOBS) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.addInitScript(() => {
    // When a change is committed: the Enter key in a text box, or a select's change.
    document.addEventListener('keydown', (e) => { if (e.key === 'Enter') window.__committed = performance.now(); }, true);
    document.addEventListener('change', (e) => { if (e.target.tagName === 'SELECT') window.__committed = performance.now(); }, true);
    window.__longestTask = 0;
    new PerformanceObserver((list) => list.getEntries().forEach((e) => { window.__longestTask = Math.max(window.__longestTask, e.duration); }))
      .observe({ type: 'longtask', buffered: true });
  });
  // Opening is timed from the navigation's start (performance.now()'s origin).
  await page.goto(`${BASE}#/${k.lesson}${k.query ? `?${k.query}` : ''}`);
  const first = Math.round(await page.evaluate(() => new Promise((resolve) => {
    const check = () => (document.querySelector('.widget canvas, .widget table') ? resolve(performance.now()) : requestAnimationFrame(check));
    check();
  })));
  const full = Math.round(await complete(page));
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
