// Data views: an index pattern plus its time field. Saved ones come from the server;
// when none fits, candidates are derived from the index list so Discover opens on
// something useful without setup.

import { api, fieldCaps, saved } from './api.js';

const capsCache = new Map();

/** Field caps of a pattern, cached for the page's life. */
export function fieldsOf(pattern) {
  if (!capsCache.has(pattern)) {
    const p = fieldCaps(pattern).catch((e) => { capsCache.delete(pattern); throw e; });
    capsCache.set(pattern, p);
  }
  return capsCache.get(pattern);
}

export function guessTimeField(fields) {
  const dates = fields.filter(f => f.type === 'date' || f.type === 'date_nanos');
  const ts = dates.find(f => f.name === '@timestamp');
  return ts ? ts.name : (dates[0] ? dates[0].name : null);
}

/** Visible indices with their document counts. */
export async function listIndices() {
  const rows = await api('/_cat/indices?format=json&bytes=b');
  return (rows || []).filter(r => !String(r.index).startsWith('.'));
}

/**
 * All data views: saved ones first, then patterns derived from index names
 * ("logs-nginx" and "logs-app" give "logs-*"). Each: {id, title, timeField, docs}.
 */
export async function dataViews() {
  const [savedViews, indices] = await Promise.all([
    saved.list('data-view').catch(() => []),
    listIndices().catch(() => []),
  ]);
  const out = savedViews.map(o => ({ id: o.id, title: o.attributes.title, timeField: o.attributes.timeField || null, docs: null }));
  const seen = new Set(out.map(v => v.title));
  const groups = new Map();
  for (const r of indices) {
    const name = String(r.index);
    const cut = name.search(/[-_.]/);
    const key = cut > 0 ? `${name.slice(0, cut)}*` : name;
    const g = groups.get(key) || { names: [], docs: 0 };
    g.names.push(name);
    g.docs += Number(r['docs.count']) || 0;
    groups.set(key, g);
  }
  const derived = [];
  for (const [key, g] of groups) {
    const title = g.names.length === 1 ? g.names[0] : key;
    if (!seen.has(title)) derived.push({ id: null, title, timeField: undefined, docs: g.docs });
    seen.add(title);
  }
  derived.sort((a, b) => b.docs - a.docs);
  out.push(...derived);
  if (indices.length > 1 && !seen.has('*')) out.push({ id: null, title: '*', timeField: undefined, docs: null });
  return out;
}

/** Fills in the time field of a view from its field caps when unknown. */
export async function resolveTimeField(view) {
  if (view.timeField !== undefined) return view.timeField;
  try {
    view.timeField = guessTimeField(await fieldsOf(view.title));
  } catch {
    view.timeField = '@timestamp';
  }
  return view.timeField;
}
