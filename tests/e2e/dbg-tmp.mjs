import { chromium } from 'playwright-core';
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
const page = await (await browser.newContext()).newPage();
page.on('console', (m) => console.log('console', m.type(), m.text()));
await page.goto('http://127.0.0.1:8765/#/slate-world?logging=softmax');
await page.waitForFunction(() => document.querySelector('.run-controls .ok'));
const s = page.locator('[data-param="temperature"] input[type=range]');
console.log('sliders', await s.count());
await s.first().evaluate((el) => { el.value = String(Math.min(1000, Number(el.value) + 60)); el.dispatchEvent(new Event('input', { bubbles: true })); });
for (let i = 0; i < 6; i++) { await page.waitForTimeout(500); console.log(await page.locator('.run-controls .status').first().textContent(), await page.locator('[data-param="temperature"] input.number').first().inputValue()); }
await browser.close();
