// How live each lesson feels in headless Chromium: time to the first drawn figure and to the
// first complete report after opening it, then the time from a change of its main knob to its
// first changed figure (the new value's preview or results so far) and to the complete report,
// three times: to the new value (stages that depend on the knob rerun), back to
// the old one, and to the new value again (both now answered from the workers' stage caches).
// Then a drag of the knob's slider: the time from an input event to the preview it shows, and
// from the release to the complete report. Throughout, the longest main-thread task (Long Tasks
// API; the harness's own script is left out, see `seen`), the opening's and the rest's apart.
// Needs BASE_URL (the served dist/).
// Prints a Markdown table. Benchmark figures, not tests.
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
// Enter key in a text box, a select's change, a slider's input or release; for an opening, the
// navigation's start) to the first animation frame that shows the result. Each watcher starts in the
// page before its event, so that the harness's round trips to the browser are not counted, even
// for answers quicker than one.

// In the page: `window.__watch(name, test)` records in `window.__seen[name]` the time of the first
// frame at which `test()` holds.
const WATCHERS = () => {
  window.__seen = {};
  window.__watch = (name, test) => {
    delete window.__seen[name];
    const check = () => (test() ? (window.__seen[name] = performance.now()) : requestAnimationFrame(check));
    requestAnimationFrame(check);
  };
  window.__complete = () => document.querySelector('.run-controls .ok') && !document.querySelector('.widget.stale')
    && window.__rorecLastReport;
};

/** Waits until the page has seen `name`; its frame's time. Polled with plain evaluations, not
 * `waitForFunction`: that (and any locator) first loads Playwright's injected script into the
 * page, a 40–55 ms task on the page's main thread that the Long Tasks API counted as the page's
 * own (traced at the opening of fast MIPS). The locators that set the knobs load it after the
 * opening, and the longest task leaves it out (see `injectHarness`). */
const seen = async (page, name, timeout = 600000) => {
  const end = Date.now() + timeout;
  for (;;) {
    const at = await page.evaluate((n) => window.__seen[n], name);
    if (at !== undefined) return at;
    if (Date.now() > end) throw new Error(`“${name}” not seen within ${timeout} ms`);
    await new Promise((resolve) => { setTimeout(resolve, 20); });
  }
};

/** Loads Playwright's injected script (what locators run on) while nothing is measured, and
 * returns the longest task before it: the page's own. The longest task is then counted afresh. */
async function injectHarness(page) {
  const before = await page.evaluate(() => window.__longestTask);
  await page.locator('body').count();
  await page.waitForTimeout(200);
  await page.evaluate(() => { window.__longestTask = 0; });
  return before;
}

async function change(page, name, value) {
  // The control wherever the lesson placed it ({{params}} or {{controls …}}): its text box or select.
  const input = page.locator(`[data-param="${name}"] input:not([type=range]):not([type=checkbox]), [data-param="${name}"] select`).first();
  await page.evaluate(([n, v]) => {
    window.__committed = null;
    // The new value in the address (the page has taken the change) and no figure stale: a report
    // of it is drawn (its preview, results so far, or the full report).
    const taken = () => window.__committed !== null && new RegExp(`[?&]${n}=${v}(&|$)`).test(location.hash);
    window.__watch('figure', () => taken() && !document.querySelector('.widget.stale'));
    window.__watch('complete', () => taken() && window.__complete());
  }, [name, value]);
  if (await input.evaluate((el) => el.tagName) === 'SELECT') await input.selectOption(value);
  else { await input.fill(value); await input.press('Enter'); }
  const [figure, done] = [await seen(page, 'figure'), await seen(page, 'complete')];
  const committed = await page.evaluate(() => window.__committed);
  if (typeof committed !== 'number') throw new Error(`the change of ${name} was not seen being committed`);
  return [Math.round(figure - committed), Math.round(done - committed)];
}

/** Drags the knob's slider one step from its position: ms to the preview, then ms from release to the complete report. */
async function drag(page, name) {
  const slider = page.locator(`[data-param="${name}"] input[type=range]`).first();
  if (await slider.count() === 0) return ['–', '–'];
  const started = await slider.evaluate((el) => {
    window.__watch('preview', () => /release the control/.test(document.querySelector('.run-controls .status')?.textContent || ''));
    el.value = String(Math.min(1000, Number(el.value) + 150));
    const at = performance.now();
    el.dispatchEvent(new Event('input', { bubbles: true }));
    return at;
  });
  let shown;
  try {
    shown = await seen(page, 'preview', 60000);
  } catch (e) {
    const status = await page.evaluate(() => document.querySelector('.run-controls .status')?.textContent);
    console.error(`no preview within 60 s; status: ${status}`);
    return ['> 60000', '–'];
  }
  const released = await slider.evaluate((el) => {
    const before = location.hash;
    window.__watch('released', () => location.hash !== before && window.__complete());
    const at = performance.now();
    el.dispatchEvent(new Event('change', { bubbles: true }));
    return at;
  });
  return [Math.round(shown - started), Math.round(await seen(page, 'released') - released)];
}

const rows = [];
for (const k of KNOBS) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.addInitScript(WATCHERS);
  await page.addInitScript(() => {
    // From the document's start: the first figure and the first complete report.
    window.__watch('first figure', () => document.querySelector('.widget canvas, .widget table'));
    window.__watch('first complete', () => window.__complete());
    // When a change is committed: the Enter key in a text box, or a select's change.
    document.addEventListener('keydown', (e) => { if (e.key === 'Enter') window.__committed = performance.now(); }, true);
    document.addEventListener('change', (e) => { if (e.target.tagName === 'SELECT') window.__committed = performance.now(); }, true);
    window.__longestTask = 0;
    new PerformanceObserver((list) => list.getEntries().forEach((e) => { window.__longestTask = Math.max(window.__longestTask, e.duration); }))
      .observe({ type: 'longtask', buffered: true });
  });
  // Opening is timed from the navigation's start (performance.now()'s origin).
  await page.goto(`${BASE}#/${k.lesson}${k.query ? `?${k.query}` : ''}`);
  const first = Math.round(await seen(page, 'first figure'));
  const full = Math.round(await seen(page, 'first complete'));
  const longestOpening = await injectHarness(page);
  const changes = [await change(page, k.knob, k.to), await change(page, k.knob, k.from), await change(page, k.knob, k.to)];
  const times = changes.map(([, complete]) => complete);
  const changedFigure = changes[0][0];
  const [preview, release] = await drag(page, k.knob);
  const longestAfter = await page.evaluate(() => window.__longestTask);
  rows.push(`| ${k.lesson} | ${first} | ${full} | ${k.knob} ${k.from} → ${k.to} | ${changedFigure} | ${times.join(' / ')} | ${preview} / ${release} | ${Math.round(longestOpening)} / ${Math.round(longestAfter)} |`);
  console.error(rows[rows.length - 1]);
  await context.close();
}
console.log('| lesson | first figure (ms) | first complete report (ms) | main knob | knob → first changed figure, new value (ms) | knob → complete report (ms): new / back / new again | drag → preview / release → complete (ms) | longest main-thread task (ms): opening / changes and drag |');
console.log('|---|---|---|---|---|---|---|---|');
rows.forEach((r) => console.log(r));
await browser.close();
