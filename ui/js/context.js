// Surrounding documents: the lines just before and after one document, in time order,
// with the pinned filters of Discover (and no query, so the neighbours are all there).

import { api, search } from './api.js';
import { buildQuery, filterLabel } from './discover.js';
import { h, clear, fmtTime, fmtValue, flatten, errorBox } from './util.js';

const STEP = 5;

export async function mount(root, { search: sp }) {
  const index = sp.get('index');
  const id = sp.get('id');
  const tf = sp.get('tf') || '@timestamp';
  const dv = sp.get('dv') || index;
  const ts = Number(sp.get('ts'));
  let filters = [];
  try { filters = JSON.parse(sp.get('filters') || '[]'); } catch { filters = []; }
  const page = h('div', { class: 'page context-page' });
  root.append(page);
  if (!index || !id || !Number.isFinite(ts)) {
    page.append(errorBox('Missing document', new Error('Open surrounding documents from a row in Discover.')));
    return {};
  }
  const state = { newer: [], older: [], anchor: null, newerSize: STEP, olderSize: STEP };
  const table = h('table', { class: 'doc-table', id: 'context-table' });
  const status = h('div');
  const back = new URLSearchParams({ dv, from: new Date(ts - 900000).toISOString(), to: new Date(ts + 900000).toISOString() });
  page.append(
    h('h1', {}, 'Surrounding documents'),
    h('p', { class: 'muted' }, `Around ${index} / ${id} at ${fmtTime(ts)}`, filters.length ? ` · filters: ${filters.map(filterLabel).join(', ')}` : '',
      ' · ', h('a', { href: `/ui/discover?${back}`, 'data-link': true }, 'Open this moment in Discover')),
    h('div', { class: 'context-controls' }, h('button', { id: 'load-newer', onclick: () => { state.newerSize += STEP; load('newer'); } }, `Load ${STEP} newer`)),
    status, table,
    h('div', { class: 'context-controls' }, h('button', { id: 'load-older', onclick: () => { state.olderSize += STEP; load('older'); } }, `Load ${STEP} older`)));

  const columns = ['message'];
  const row = (hit, cls) => {
    const flat = flatten(hit._source);
    const t = Date.parse(flat[tf]) || flat[tf];
    return h('tr', { class: `doc-row ${cls}`, dataset: { id: hit._id } },
      h('td', { class: 'time-col' }, fmtTime(t)),
      'message' in flat ? h('td', { class: 'msg' }, fmtValue(flat.message))
        : h('td', { class: 'summary' }, Object.entries(flat).filter(([k]) => k !== tf).slice(0, 20).map(([k, v]) => h('span', { class: 'kv' }, h('b', {}, `${k}: `), fmtValue(v), ' '))));
  };
  const draw = () => {
    clear(table).append(h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, columns[0]))),
      h('tbody', {},
        [...state.newer].reverse().map(x => row(x, '')),
        state.anchor ? row(state.anchor, 'anchor') : null,
        state.older.map(x => row(x, ''))));
  };

  // Ties on the timestamp: both sides take ">=" / "<=" and drop the anchor and
  // documents already shown on the other side.
  const load = async (side) => {
    const newer = side === 'newer';
    const size = newer ? state.newerSize : state.olderSize;
    const range = newer ? { gte: ts, format: 'epoch_millis' } : { lte: ts, format: 'epoch_millis' };
    const query = buildQuery({ filters, extraFilter: [{ range: { [tf]: range } }] });
    query.bool.must_not.push({ ids: { values: [id] } });
    try {
      const r = await search(index, { size: size * 2, query, sort: [{ [tf]: { order: newer ? 'asc' : 'desc' } }], track_total_hits: false });
      const other = new Set((newer ? state.older : state.newer).map(x => x._id));
      const hits = r.hits.hits.filter(x => !other.has(x._id)).slice(0, size);
      if (newer) state.newer = hits; else state.older = hits;
      draw();
    } catch (e) {
      clear(status).append(errorBox(`The ${side} documents could not be loaded`, e));
    }
  };

  try {
    const doc = await api(`/${encodeURIComponent(index)}/_doc/${encodeURIComponent(id)}`);
    state.anchor = { _id: doc._id, _index: doc._index, _source: doc._source };
  } catch (e) {
    clear(status).append(errorBox('The document could not be loaded', e));
    return {};
  }
  draw();
  await load('older');
  await load('newer');
  return {};
}
