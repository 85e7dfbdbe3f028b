// A manual smoke check of the UI in Firefox (not part of scripts/test, which drives
// Chromium as the issue asks). Firefox is driven over WebDriver BiDi by puppeteer-core:
//
//   apt-get install -y firefox-esr
//   (cd tests/ui && npm i --no-save puppeteer-core@23)
//   node tests/ui/firefox-smoke.mjs http://127.0.0.1:9200 logs-apache
//
// against a server holding some logs in the last 24 h of its clock: it opens Discover,
// waits for rows and the histogram, and fails on any page error.
import puppeteer from 'puppeteer-core';

const [base = 'http://127.0.0.1:9200', dataView = 'logs-*'] = process.argv.slice(2);
const browser = await puppeteer.launch({ browser: 'firefox', executablePath: process.env.FIREFOX || '/usr/bin/firefox-esr', headless: true, args: ['--no-remote'] });
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 900 });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/ui/discover?dv=${encodeURIComponent(dataView)}&from=now-24h&to=now`);
  await page.waitForSelector('#doc-table tbody tr.doc-row', { timeout: 30000 });
  await page.waitForSelector('#histogram canvas', { timeout: 30000 });
  const count = await page.$eval('#hit-count', (e) => e.textContent);
  const rows = await page.$$eval('#doc-table tbody tr.doc-row', (r) => r.length);
  await page.screenshot({ path: 'firefox-discover.png' });
  console.log(JSON.stringify({ browser: await browser.version(), count, rows, errors }));
  if (errors.length || rows === 0) process.exit(1);
} finally {
  await browser.close();
}
