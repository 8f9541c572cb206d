import { chromium } from 'playwright-core';
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
for (const lesson of ['slate-world', 'embeddings', 'horvitz-thompson']) {
  for (let rep = 0; rep < 2; rep++) {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.addInitScript(() => {
      window.__marks = {};
      const mark = (k) => { if (!window.__marks[k]) window.__marks[k] = Math.round(performance.now()); };
      new MutationObserver(() => {
        if (document.querySelector('.run-controls')) mark('app');
        if (document.querySelector('.run-controls progress')) mark('progress');
        if (document.querySelector('.widget canvas')) mark('canvas');
        if (document.querySelector('.run-controls .ok')) mark('done');
      }).observe(document, { subtree: true, childList: true, attributes: true });
      const W = window.Worker;
      window.Worker = function (...a) { mark('worker'); const w = new W(...a); w.addEventListener('message', () => mark('first-worker-message')); return w; };
    });
    await page.goto(`http://127.0.0.1:8765/#/${lesson}`);
    await page.waitForFunction(() => window.__marks.done, null, { timeout: 60000 });
    const res = await page.evaluate(() => performance.getEntriesByType('resource').filter((e) => e.name.endsWith('.wasm')).map((e) => Math.round(e.responseEnd)));
    console.log(lesson, JSON.stringify(await page.evaluate(() => window.__marks)), 'wasm fetched at', res);
    await ctx.close();
  }
}
await browser.close();
