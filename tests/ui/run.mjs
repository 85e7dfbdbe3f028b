// Browser tests of Cairn's web UI.
//
// Starts the real `cairn serve` (target/debug/cairn, or $CAIRN_BIN) on a free port with a
// temporary data dir and CAIRN_NOW pinned just after the newest sample line, loads the
// Apache access-log sample through _bulk, then drives Debian's chromium with playwright-core
// through the flows of the UI issue. Every flow saves a screenshot under test-output/ui/.
//
//   node tests/ui/run.mjs [name-filter]
//
// Environment: CAIRN_BIN, CHROMIUM (default /usr/bin/chromium), CAIRN_UI_DIR (serve the
// assets from disk), UI_TEST_OUT (default test-output/ui).

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { loadSamples, parseCombined, bulk } from './samples.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.CAIRN_BIN || path.join(ROOT, 'target/debug/cairn');
const OUT = path.resolve(ROOT, process.env.UI_TEST_OUT || 'test-output/ui');
const NOW = '2015-05-20T21:10:00Z';
const NOW_MS = Date.parse(NOW);
const DAY = 86400000;
const FILTER = process.argv[2] || '';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

/** Runs a cairn subcommand to completion. */
function cairn(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(BIN, args, { env: { ...process.env, CAIRN_NOW: NOW }, stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('exit', code => (code === 0 ? resolve() : reject(new Error(`cairn ${args.join(' ')} exited with ${code}`))));
  });
}

/** Starts `cairn serve`; `users` ([name, role, password]) makes it require authentication. */
async function startServer({ users = [] } = {}) {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'cairn-ui-test-'));
  const data = path.join(dataDir, 'data');
  for (const [name, role, password] of users) {
    await cairn(['users', 'add', '--data-dir', data, '--role', role, '--password', password, name]);
  }
  const extra = users.length ? ['--auth', '--audit-log', 'off'] : [];
  const proc = spawn(BIN, ['serve', '--data-dir', data, '--listen', `127.0.0.1:${port}`, '--max-past', '36500d', '--refresh-interval', '500ms', ...extra], {
    env: { ...process.env, CAIRN_NOW: NOW, RUST_LOG: process.env.RUST_LOG || 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) throw new Error(`cairn serve exited with ${proc.exitCode}`);
    try { if ((await fetch(`${base}/ui/`)).ok) return { base, proc, dataDir }; } catch { /* not up yet */ }
    await new Promise(r => setTimeout(r, 100));
  }
  throw new Error('cairn serve did not start within 20 s');
}

async function stopServer(server) {
  if (server.proc.exitCode === null) {
    server.proc.kill('SIGTERM');
    await new Promise(r => server.proc.once('exit', r));
  }
  rmSync(server.dataDir, { recursive: true, force: true });
}

// ------------------------------------------------------------------------------ helpers

const fmt = new Intl.NumberFormat('en-US');
let samples;
const inRange = (d, from, to) => { const t = Date.parse(d['@timestamp']); return t >= from && t <= to; };
const countWhere = (pred, from = NOW_MS - DAY, to = NOW_MS) => samples.apache.filter(d => inRange(d, from, to) && pred(d)).length;
const shot = (page, name) => page.screenshot({ path: path.join(OUT, `${name}.png`) });
const hitsText = (n) => `${fmt.format(n)} hit${n === 1 ? '' : 's'}`;

async function expectCount(page, n) {
  await page.waitForFunction((t) => document.querySelector('#hit-count')?.textContent === t, hitsText(n), { timeout: 15000 })
    .catch(async () => { throw new Error(`expected "${hitsText(n)}", page shows "${await page.textContent('#hit-count').catch(() => '?')}"`); });
}

async function openDiscover(page, base, query = '') {
  await page.goto(`${base}/ui/discover${query}`);
  await page.waitForSelector('#doc-table tbody tr.doc-row');
}

async function runQuery(page, text) {
  await page.fill('#query', text);
  await page.press('#query', 'Enter');
}

// ------------------------------------------------------------------------------ flows

const flows = [];
const flow = (name, fn) => flows.push({ name, fn });

flow('discover-rows-count-histogram', async (page, base) => {
  await page.goto(`${base}/ui/`);
  await page.waitForSelector('#doc-table tbody tr.doc-row');
  assert.equal(await page.inputValue('#dataview'), 'logs-apache');
  await expectCount(page, countWhere(() => true));
  assert.equal(await page.locator('#doc-table tbody tr.doc-row').count(), 100);
  await page.waitForSelector('#histogram canvas');
  assert.match(await page.textContent('#time-picker'), /Last 24 hours/);
  // The newest line first, its message in the default column.
  const newest = samples.apache.filter(d => inRange(d, NOW_MS - DAY, NOW_MS)).sort((a, b) => b['@timestamp'].localeCompare(a['@timestamp']))[0];
  assert.equal((await page.textContent('#doc-table tbody tr.doc-row td.msg')).trim(), newest.message);
  // "/" focuses the query bar.
  await page.click('#hit-count');
  await page.keyboard.press('/');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'query');
  // Dark mode follows the system setting.
  await page.emulateMedia({ colorScheme: 'dark' });
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, 'rgb(21, 24, 30)');
  await shot(page, 'discover-dark-mode');
  const t = await page.evaluate(() => window.__cairnTimings);
  console.log(`    first rows ${t.rows.toFixed(0)} ms, histogram ${t.histogram.toFixed(0)} ms after the search started (10k docs)`);
});

flow('kql-and-lucene-queries', async (page, base) => {
  await openDiscover(page, base);
  await runQuery(page, 'http.response.status_code >= 500');
  await expectCount(page, countWhere(d => d.http.response.status_code >= 500));
  assert.match(page.url(), /q=http\.response\.status_code/);
  await runQuery(page, 'http.request.method : HEAD and not url.path : "/"');
  await expectCount(page, countWhere(d => d.http.request.method === 'HEAD' && d.url.path !== '/'));
  // Autocomplete: a field name, then one of its values, with Tab.
  await page.fill('#query', 'http.request.me');
  await page.waitForSelector('.suggest li >> text=http.request.method');
  await page.press('#query', 'Tab');
  assert.equal(await page.inputValue('#query'), 'http.request.method : ');
  await page.type('#query', 'PO');
  await page.waitForSelector('.suggest li >> text=POST');
  await page.press('#query', 'Tab');
  assert.equal(await page.inputValue('#query'), 'http.request.method : POST ');
  await page.press('#query', 'Enter');
  await expectCount(page, countWhere(d => d.http.request.method === 'POST'));
  // Matches are highlighted in the rows.
  await runQuery(page, 'message : kibana');
  await page.waitForSelector('#doc-table td.msg mark');
  assert.equal((await page.textContent('#doc-table td.msg mark')).toLowerCase(), 'kibana');
  await page.click('#query-lang');
  assert.equal((await page.textContent('#query-lang')).trim(), 'Lucene');
  await runQuery(page, 'http.response.status_code:404 AND http.request.method:GET');
  await expectCount(page, countWhere(d => d.http.response.status_code === 404 && d.http.request.method === 'GET'));
  assert.match(await page.textContent('#doc-table tbody tr.doc-row td.msg'), /" 404 /);
  assert.match(page.url(), /lang=lucene/);
  // The state is in the URL: a reload shows the same search.
  await page.reload();
  await expectCount(page, countWhere(d => d.http.response.status_code === 404 && d.http.request.method === 'GET'));
  assert.equal(await page.inputValue('#query'), 'http.response.status_code:404 AND http.request.method:GET');
});

flow('filter-from-sidebar-and-negate', async (page, base) => {
  await openDiscover(page, base);
  await page.click('.field-item[data-field="http.response.status_code"] > .field-name');
  const top = page.locator('.field-item[data-field="http.response.status_code"] .top-values li').first();
  assert.equal(await top.getAttribute('data-value'), '200');
  assert.match(await top.textContent(), /%/);
  await top.locator('.filter-for').click();
  await page.waitForSelector('.pill[data-field="http.response.status_code"]');
  assert.equal((await page.textContent('.pill .pill-label')).trim(), 'http.response.status_code: 200');
  await expectCount(page, countWhere(d => d.http.response.status_code === 200));
  await page.click('.pill .pill-label');
  await page.click('.pill-menu >> text=Exclude results');
  await page.waitForSelector('.pill.negated');
  assert.equal((await page.textContent('.pill .pill-label')).trim(), 'NOT http.response.status_code: 200');
  await expectCount(page, countWhere(d => d.http.response.status_code !== 200));
  // Exists filter from the same sidebar, on a field only some lines have.
  await page.click('.field-item[data-field="http.request.referrer"] > .field-name');
  await page.click('.field-item[data-field="http.request.referrer"] .filter-exists');
  await expectCount(page, countWhere(d => d.http.response.status_code !== 200 && d.http.request.referrer !== undefined));
});

flow('expand-document', async (page, base) => {
  await openDiscover(page, base);
  const row = page.locator('#doc-table tbody tr.doc-row').first();
  const id = await row.getAttribute('data-id');
  await row.locator('button.expand').click();
  const view = page.locator('.doc-view').first();
  await view.waitFor();
  const ip = await view.locator('tr[data-field="source.ip"] td.value').textContent();
  assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
  await view.locator('button.tab', { hasText: 'JSON' }).click();
  const json = JSON.parse(await view.locator('pre.json').textContent());
  assert.equal(json.source.ip, ip);
  assert.match(await view.textContent(), new RegExp(id));
});

flow('histogram-drag-zooms-time', async (page, base) => {
  await openDiscover(page, base);
  await page.waitForSelector('#histogram .u-over');
  const box = await page.locator('#histogram .u-over').boundingBox();
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width * 0.3, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, y, { steps: 8 });
  await page.mouse.move(box.x + box.width * 0.6, y, { steps: 8 });
  await page.mouse.up();
  await page.waitForFunction(() => new URL(location.href).searchParams.get('from')?.includes('T'));
  const url = new URL(page.url());
  const from = Date.parse(url.searchParams.get('from'));
  const to = Date.parse(url.searchParams.get('to'));
  assert.ok(to > from && from > NOW_MS - DAY && to < NOW_MS, `zoomed range ${url.searchParams.get('from')} → ${url.searchParams.get('to')}`);
  await expectCount(page, countWhere(() => true, from, to));
  assert.match(await page.textContent('#time-picker'), /2015-05-/);
});

flow('surrounding-documents', async (page, base) => {
  await openDiscover(page, base);
  const row = page.locator('#doc-table tbody tr.doc-row').nth(10);
  const msg = (await row.locator('td.msg').textContent()).trim();
  await row.locator('button.expand').click();
  await page.click('.doc-view >> text=View surrounding documents');
  await page.waitForSelector('#context-table tr.doc-row.anchor');
  await page.waitForFunction(() => document.querySelectorAll('#context-table tr.doc-row').length >= 7);
  assert.equal((await page.textContent('#context-table tr.anchor td.msg')).trim(), msg);
  const rows = page.locator('#context-table tr.doc-row');
  const n = await rows.count();
  const anchorAt = await page.evaluate(() => [...document.querySelectorAll('#context-table tr.doc-row')].findIndex(r => r.classList.contains('anchor')));
  assert.ok(anchorAt >= 3 && n - anchorAt - 1 >= 3, `anchor at ${anchorAt} of ${n}`);
  await page.click('#load-newer');
  await page.waitForFunction((k) => document.querySelectorAll('#context-table tr.doc-row').length > k, n);
});

flow('saved-search', async (page, base) => {
  await openDiscover(page, base);
  await runQuery(page, 'http.response.status_code : 304');
  const n304 = countWhere(d => d.http.response.status_code === 304);
  await expectCount(page, n304);
  await page.click('#save-search');
  await page.fill('dialog [name="title"]', 'Not modified');
  await page.click('dialog button[type=submit]');
  await page.waitForSelector('#banner >> text=Saved search "Not modified".');
  await page.goto(`${base}/ui/discover`);
  await page.waitForSelector('#doc-table tbody tr.doc-row');
  await page.click('#open-search');
  await page.selectOption('dialog [name="id"]', { label: 'Not modified' });
  await page.click('dialog button[type=submit]');
  await expectCount(page, n304);
  assert.equal(await page.inputValue('#query'), 'http.response.status_code : 304');
});

flow('live-tail', async (page, base) => {
  await openDiscover(page, base);
  await page.click('#live-tail');
  await page.waitForSelector('#tail-note:not([hidden])');
  const marker = `live-tail-check-${Date.now()}`;
  // A line like the samples, one minute before "now"; later flows count it too.
  const doc = parseCombined(`127.0.0.1 - - [20/May/2015:21:09:00 +0000] "GET /${marker} HTTP/1.1" 200 1 "-" "ui-test"`);
  samples.apache.push(doc);
  const r = await fetch(`${base}/logs-apache/_doc`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(doc) });
  assert.equal(r.status, 201);
  await page.waitForSelector(`#doc-table tr.doc-row.new-row >> text=${marker}`, { timeout: 15000 });
  assert.match(await page.textContent('#doc-table tbody tr.doc-row td.msg'), new RegExp(marker));
  await page.click('#live-tail');
});

flow('dashboard-two-panels-saved', async (page, base) => {
  await page.goto(`${base}/ui/dashboards`);
  await page.click('#new-dashboard');
  await page.waitForSelector('#dash-title');
  await page.fill('#dash-title', 'Web traffic');
  const addPanel = async (fields) => {
    await page.click('#add-panel');
    for (const [name, value] of Object.entries(fields)) {
      const el = page.locator(`dialog [name="${name}"]`);
      if ((await el.evaluate(e => e.tagName)) === 'SELECT') await el.selectOption(value); else await el.fill(value);
    }
    await page.click('dialog button[type=submit]');
  };
  await addPanel({ title: 'Requests over time', type: 'bar' });
  await addPanel({ title: 'Status codes', type: 'table', field: 'http.response.status_code' });
  await page.waitForSelector('.panel >> text=Status codes');
  // Drag the second panel by its title bar under the first one (the grid moves by cells).
  const headBox = await page.locator('.panel', { hasText: 'Status codes' }).locator('.panel-head').boundingBox();
  await page.mouse.move(headBox.x + 40, headBox.y + 10);
  await page.mouse.down();
  await page.mouse.move(headBox.x - headBox.width / 2, headBox.y + 200, { steps: 6 });
  await page.mouse.move(headBox.x - headBox.width, headBox.y + 330, { steps: 6 });
  await page.mouse.up();
  const moved = await page.locator('.panel', { hasText: 'Status codes' }).evaluate(e => [e.style.gridColumn, e.style.gridRow]);
  assert.ok(moved[0].startsWith('1 /') && !moved[1].startsWith('1 /'), `panel placed at ${moved}`);
  await page.click('#save-dashboard');
  await page.waitForFunction(() => /\/ui\/dashboards\/[0-9a-f]{32}$/.test(location.pathname));
  await page.reload();
  await page.waitForSelector('.panel .panel-body canvas');
  assert.equal(await page.inputValue('#dash-title'), 'Web traffic');
  assert.equal(await page.locator('.panel').count(), 2);
  assert.deepEqual(await page.locator('.panel', { hasText: 'Status codes' }).evaluate(e => [e.style.gridColumn, e.style.gridRow]), moved);
  const table = page.locator('.panel', { hasText: 'Status codes' }).locator('table');
  await table.waitFor();
  const first = (await table.locator('tbody tr').first().textContent());
  const n200 = countWhere(d => d.http.response.status_code === 200);
  assert.match(first.replace(/\s+/g, ' '), new RegExp(`200.*${fmt.format(n200)}`));
  await shot(page, 'dashboard-two-panels-saved-reloaded');
  await page.goto(`${base}/ui/dashboards`);
  await page.waitForSelector('.dash-list >> text=Web traffic');
  // Export, then import a renamed copy through the page's file input.
  const exported = await (await fetch(`${base}/_cairn/saved_objects/_export`)).json();
  const dash = exported.saved_objects.find(o => o.type === 'dashboard' && o.attributes.title === 'Web traffic');
  assert.equal(dash.attributes.panels.length, 2);
  const copy = { saved_objects: [{ ...dash, id: 'imported-copy', attributes: { ...dash.attributes, title: 'Web traffic (imported)' } }] };
  await page.setInputFiles('.page input[type=file]', { name: 'export.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(copy)) });
  await page.waitForSelector('.dash-list >> text=Web traffic (imported)');
  await page.click('.dash-list >> text=Web traffic (imported)');
  await page.waitForSelector('.panel .panel-body canvas');
  assert.equal(await page.locator('.panel').count(), 2);
});

flow('errors-are-readable', async (page, base) => {
  // Invalid query: the message, and the place of the error under the query.
  await openDiscover(page, base);
  await runQuery(page, 'http.response.status_code:(');
  await page.waitForSelector('#query-error:not([hidden])');
  assert.match(await page.textContent('#query-error'), /Expected/);
  assert.match(await page.textContent('#query-error pre'), /\n {27}\^$/);
  assert.equal(await page.inputValue('#query'), 'http.response.status_code:(');
  await shot(page, 'errors-are-readable-invalid-query');
  // A 500 with a non-JSON body.
  await page.route('**/_search', route => route.fulfill({ status: 500, contentType: 'text/plain', body: 'upstream exploded' }));
  await runQuery(page, 'anything');
  await page.waitForSelector('.error-box');
  assert.match(await page.textContent('.error-box'), /The server failed \(HTTP 500.*upstream exploded/);
  await shot(page, 'errors-are-readable-http-500');
  await page.unroute('**/_search');
  // A search that never answers.
  await page.evaluate(() => { window.__cairnTimeoutMs = 1500; });
  await page.route('**/_search', () => { /* never answers */ });
  await runQuery(page, 'slow');
  await page.waitForSelector('.error-box >> text=did not answer within 1.5 s');
  await page.unroute('**/_search');
});

flow('login-and-csrf', async (page, base) => {
  // The server under test runs without auth; the contract is played by routes.
  let loggedIn = false;
  const sessionBody = { authenticated: true, auth_enabled: true, username: 'ops', roles: ['reader'], csrf_token: 'tok-123' };
  await page.route('**/_cairn/auth/session', route => (loggedIn
    ? route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(sessionBody) })
    : route.fulfill({ status: 401, contentType: 'application/json', body: JSON.stringify({ error: { type: 'security_exception', reason: 'no session' }, status: 401 }) })));
  await page.route('**/_cairn/auth/login', async route => {
    const b = JSON.parse(route.request().postData());
    if (b.username === 'ops' && b.password === 'secret') {
      loggedIn = true;
      return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(sessionBody) });
    }
    return route.fulfill({ status: 401, contentType: 'application/json', body: JSON.stringify({ error: { type: 'security_exception', reason: 'bad credentials' }, status: 401 }) });
  });
  const csrf = [];
  page.on('request', req => { if (req.url().endsWith('/_search')) csrf.push(req.headers()['x-cairn-csrf']); });
  await page.goto(`${base}/ui/discover?q=GET`);
  await page.waitForURL(/\/ui\/login\?next=/);
  await page.fill('input[name=username]', 'ops');
  await page.fill('input[name=password]', 'wrong');
  await page.click('button[type=submit]');
  await page.waitForSelector('text=Wrong username or password.');
  await page.fill('input[name=password]', 'secret');
  await page.click('button[type=submit]');
  await page.waitForSelector('#doc-table tbody tr.doc-row');
  assert.match(page.url(), /\/ui\/discover\?.*q=GET/);
  assert.equal(await page.textContent('#user .muted'), 'ops');
  assert.ok(csrf.length >= 2 && csrf.every(t => t === 'tok-123'), `CSRF headers seen: ${JSON.stringify(csrf)}`);
  await page.waitForSelector('#logout');
});

flow('login-with-real-auth', async (page) => {
  // A second server that requires authentication: the real session cookie and CSRF token.
  const server = await startServer({ users: [['root', 'admin', 'root-pass-1'], ['ops', 'reader', 'ops-pass-1']] });
  try {
    const basic = { Authorization: `Basic ${Buffer.from('root:root-pass-1').toString('base64')}` };
    await bulk(server.base, 'logs-apache', samples.apache.slice(-500), { headers: basic });
    await page.goto(`${server.base}/ui/discover`);
    await page.waitForURL(/\/ui\/login/);
    await page.fill('input[name=username]', 'ops');
    await page.fill('input[name=password]', 'nope');
    await page.click('button[type=submit]');
    await page.waitForSelector('text=Wrong username or password.');
    await page.fill('input[name=password]', 'ops-pass-1');
    await page.click('button[type=submit]');
    await page.waitForSelector('#doc-table tbody tr.doc-row');
    await expectCount(page, samples.apache.slice(-500).filter(d => inRange(d, NOW_MS - DAY, NOW_MS)).length);
    assert.equal(await page.textContent('#user .muted'), 'ops');
    // A state-changing request with the cookie but without the CSRF header is refused.
    const status = await page.evaluate(async () => (await fetch('/logs-apache/_search', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })).status);
    assert.equal(status, 403);
    // The UI's own requests carry it: saving a search works for a reader.
    await page.click('#save-search');
    await page.fill('dialog [name="title"]', 'Signed in');
    await page.click('dialog button[type=submit]');
    await page.waitForSelector('#banner >> text=Saved search "Signed in".');
    await shot(page, 'login-with-real-auth-signed-in');
    await page.click('#logout');
    await page.waitForURL(/\/ui\/login/);
    const after = await page.evaluate(async () => (await fetch('/_cairn/auth/session', { headers: { 'X-Cairn-UI': '1' } })).status);
    assert.equal(after, 401);
  } finally {
    await stopServer(server);
  }
});

flow('alert-rules', async (page, base) => {
  await page.goto(`${base}/ui/alerts`);
  await page.click('#new-rule');
  await page.waitForSelector('#rule-yaml');
  // A broken rule gets a readable validation error, and the text stays.
  await page.fill('#rule-yaml', 'name: Broken\ntype: frequency\nindex: logs-apache\n');
  await page.click('#validate-rule');
  await page.waitForSelector('#rule-result .error-box');
  assert.match(await page.textContent('#rule-result'), /Invalid rule/);
  const yaml = 'name: UI errors\ntype: frequency\nindex: logs-apache\nnum_events: 3\ntimeframe:\n  minutes: 60\n' +
    'filter:\n  - query:\n      query_string:\n        query: "http.response.status_code:[500 TO 599]"\n' +
    'alert:\n  - debug\n';
  await page.fill('#rule-yaml', yaml);
  await page.click('#validate-rule');
  await page.waitForSelector('#rule-result >> text=Valid: "UI errors", a frequency rule.');
  // "Test on the last N hours": a dry run by the server over the sample's days; its
  // document count must equal what a plain _count of the same filter says.
  const expected = await page.evaluate(async () => {
    const r = await fetch('/logs-apache/_count', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Cairn-UI': '1' },
      body: JSON.stringify({ query: { bool: { filter: [{ range: { '@timestamp': { gte: 'now-96h' } } }, { query_string: { query: 'http.response.status_code:[500 TO 599]' } }] } } }) });
    return (await r.json()).count;
  });
  await page.fill('#test-hours', '96');
  await page.click('#test-rule');
  await page.waitForSelector('#test-summary');
  const summary = await page.textContent('#test-summary');
  assert.match(summary, /matching documents in logs-apache, [\d,]+ matches, [\d,]+ alerts? would have been sent/);
  assert.equal(Number(summary.split(' ')[0].replace(/,/g, '')), expected);
  await page.click('#save-rule');
  await page.waitForURL(/\/ui\/alerts$/);
  const row = page.locator('#rules-table tr[data-rule="ui-errors"]');
  await row.waitFor();
  assert.match(await row.textContent(), /UI errors.*frequency.*logs-apache/);
  await row.locator('button', { hasText: 'Silence' }).click();
  await page.selectOption('dialog [name="duration"]', '4h');
  await page.click('dialog button[type=submit]');
  await page.waitForSelector('#banner >> text=Silenced until');
  await page.click('#rules-table >> text=UI errors');
  await page.waitForSelector('#rule-yaml');
  assert.match(await page.inputValue('#rule-yaml'), /num_events: 3/);
});

flow('indices-page', async (page, base) => {
  await page.goto(`${base}/ui/indices`);
  const row = page.locator('#indices-table tr[data-index="logs-apache"]');
  await row.waitFor();
  assert.match(await row.textContent(), new RegExp(fmt.format(samples.apache.length)));
  // Delete with confirmation, on an index of its own.
  await bulk(base, 'scratch-delete-me', samples.apache.slice(0, 3));
  await page.reload();
  await page.click('#indices-table tr[data-index="scratch-delete-me"] button[title^="Delete"]');
  assert.equal(await page.isDisabled('#confirm-delete'), true);
  await page.fill('#confirm-index', 'scratch-delete-me');
  await page.click('#confirm-delete');
  await page.waitForSelector('#banner >> text=Deleted scratch-delete-me.');
  await page.waitForSelector('#indices-table tr[data-index="scratch-delete-me"]', { state: 'detached' });
  assert.equal((await fetch(`${base}/scratch-delete-me`)).status, 404);
  await page.goto(`${base}/ui/add-data`);
  await page.waitForSelector('.config-block pre');
  assert.match(await page.textContent('.config-block pre'), new RegExp(base.replace(/[.]/g, '\\.')));
});

// ------------------------------------------------------------------------------ runner

async function main() {
  mkdirSync(OUT, { recursive: true });
  const server = await startServer();
  let browser;
  const results = [];
  try {
    const t0 = Date.now();
    samples = await loadSamples(server.base);
    console.log(`loaded ${samples.apache.length} sample lines in ${Date.now() - t0} ms; server at ${server.base}`);
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    for (const { name, fn } of flows) {
      if (FILTER && !name.includes(FILTER)) continue;
      const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      const page = await context.newPage();
      page.setDefaultTimeout(15000);
      const consoleErrors = [];
      page.on('pageerror', e => consoleErrors.push(String(e)));
      const started = Date.now();
      let error = null;
      try {
        // A hung flow fails on its own instead of stalling the suite.
        let timer;
        await Promise.race([fn(page, server.base), new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('flow timed out after 90 s')), 90000); })])
          .finally(() => clearTimeout(timer));
        if (consoleErrors.length) throw new Error(`uncaught errors in the page: ${consoleErrors.join('; ')}`);
      } catch (e) {
        error = e;
      }
      await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: false }).catch(() => {});
      await context.close().catch(() => {});
      results.push({ name, ok: !error, ms: Date.now() - started, error: error ? String(error.stack || error) : undefined });
      console.log(`${error ? 'FAIL' : 'ok  '} ${name} (${Date.now() - started} ms)${error ? '\n' + String(error.stack || error).split('\n').slice(0, 6).join('\n') : ''}`);
    }
  } finally {
    if (browser) await browser.close();
    await stopServer(server);
  }
  writeFileSync(path.join(OUT, 'results.json'), JSON.stringify(results, null, 2));
  const failed = results.filter(r => !r.ok).length;
  console.log(`${results.length - failed} passed, ${failed} failed; screenshots in ${path.relative(ROOT, OUT)}/`);
  if (!results.length) { console.log('no flow matched'); process.exit(1); }
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(1); });
