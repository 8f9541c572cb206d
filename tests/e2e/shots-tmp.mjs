import { chromium } from 'playwright-core';
const BASE = 'http://127.0.0.1:8765/';
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
async function shot(hash, file, { width = 1440, height = 900, before } = {}) {
  const ctx = await browser.newContext({ viewport: { width, height } });
  const page = await ctx.newPage();
  await page.goto(BASE + hash);
  if (before) await before(page);
  await page.waitForTimeout(300);
  const controls = page.locator('.run-controls').first();
  await controls.scrollIntoViewIfNeeded();
  await page.screenshot({ path: `/work/calib/shots/${file}` });
  await ctx.close();
}
await shot('#/fast-mips?base_items=650000&sizes=1', 'refuse.png', { before: (p) => p.locator('[data-gate]').first().waitFor() });
await shot('#/reward-and-rank?world=synthetic&sweep=both', 'ask.png', { before: (p) => p.locator('[data-gate]').first().waitFor() });
await shot('#/horvitz-thompson', 'preview.png', { before: (p) => p.waitForFunction(() => document.querySelector('.preview-note'), null, { polling: 10 }) });
await shot('#/reward-and-rank?world=synthetic&sweep=both', 'ask-phone.png', { width: 390, height: 844, before: (p) => p.locator('[data-gate]').first().waitFor() });
await browser.close();
