import { chromium } from 'playwright-core';
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
async function shot(hash, file, selector, { width = 1440, height = 900 } = {}) {
  const ctx = await browser.newContext({ viewport: { width, height } });
  const page = await ctx.newPage();
  await page.goto('http://127.0.0.1:8765/' + hash);
  await page.waitForFunction(() => document.querySelector('.run-controls .ok'), null, { timeout: 60000 });
  await page.waitForTimeout(500);
  await page.locator(selector).first().scrollIntoViewIfNeeded();
  await page.screenshot({ path: `/work/calib/shots/${file}` });
  await ctx.close();
}
await shot('#/reward-and-rank', 'prr-reading.png', '[data-reading="ab"]');
await shot('#/reward-and-rank', 'prr-scatter.png', '[data-reading="scatter"]');
await shot('#/horvitz-thompson', 'ht-scatter.png', '[data-widget="scatter"]');
await shot('#/slate-world', 'slate-rows.png', '[data-table="logged-rows"]');
await browser.close();
