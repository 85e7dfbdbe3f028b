// Loads the web access samples of tests/data into a running Cairn as ECS-shaped
// documents, through _bulk (the way shippers send them).

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MONTHS = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 };
const COMBINED = /^(\S+) \S+ (\S+) \[(\d{2})\/(\w{3})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\] "(\S+) (\S+) ([^"]*)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"/;

/** One combined-log line as an ECS document, or null when it does not parse. */
export function parseCombined(line) {
  const m = COMBINED.exec(line);
  if (!m) return null;
  const [, ip, user, dd, mon, yyyy, hh, mi, ss, sign, oh, om, method, url, version, status, bytes, referrer, agent] = m;
  const offsetMin = (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om));
  const utc = Date.UTC(Number(yyyy), MONTHS[mon], Number(dd), Number(hh), Number(mi), Number(ss)) - offsetMin * 60000;
  const doc = {
    '@timestamp': new Date(utc).toISOString(),
    message: line,
    source: { ip },
    http: {
      request: { method, referrer: referrer === '-' ? undefined : referrer },
      response: { status_code: Number(status), body: { bytes: bytes === '-' ? 0 : Number(bytes) } },
      version: version.replace('HTTP/', ''),
    },
    url: { original: url, path: url.split('?')[0] },
    user_agent: { original: agent },
    event: { dataset: 'apache.access' },
  };
  if (user !== '-') doc.user = { name: user };
  return doc;
}

export function readSamples(rel) {
  return readFileSync(path.join(ROOT, 'tests/data', rel), 'utf8').split('\n').filter(Boolean).map(parseCombined).filter(Boolean);
}

export async function bulk(base, index, docs, { refresh = 'true', headers = {} } = {}) {
  for (let i = 0; i < docs.length; i += 2000) {
    const chunk = docs.slice(i, i + 2000);
    const body = chunk.map(d => `{"create":{"_index":${JSON.stringify(index)}}}\n${JSON.stringify(d)}\n`).join('');
    const r = await fetch(`${base}/_bulk?refresh=${refresh}`, { method: 'POST', headers: { 'Content-Type': 'application/x-ndjson', ...headers }, body });
    const j = await r.json();
    if (!r.ok || j.errors) throw new Error(`bulk into ${index} failed: ${JSON.stringify(j).slice(0, 500)}`);
  }
}

/** Loads the samples; returns what the tests need to know about them. */
export async function loadSamples(base) {
  const apache = readSamples('web-access/elastic-examples_apache_logs.log');
  await bulk(base, 'logs-apache', apache);
  const times = apache.map(d => Date.parse(d['@timestamp']));
  return { apache, newest: Math.max(...times), oldest: Math.min(...times) };
}
