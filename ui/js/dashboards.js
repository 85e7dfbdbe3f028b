// Dashboards: a grid of panels sharing one query bar and time range, saved as
// `dashboard` saved objects (and exported/imported as JSON).

import { search, saved } from './api.js';
import { navigate, banner } from './app.js';
import { dataViews, fieldsOf, resolveTimeField } from './data.js';
import { buildQuery, readState } from './discover.js';
import { timeChart, PALETTE } from './histogram.js';
import { parseTime, autoInterval } from './time.js';
import { timePicker } from './timepicker.js';
import { h, clear, fmtNumber, fmtTime, fmtValue, flatten, errorBox, formDialog } from './util.js';

const COLS = 12;
const ROW_PX = 70;
const GAP_PX = 10;

const PANEL_TYPES = [
  ['bar', 'Bars over time'], ['line', 'Line over time'], ['area', 'Area over time'],
  ['pie', 'Pie / donut of top values'], ['metric', 'Single metric'], ['table', 'Top values table'],
  ['search', 'Saved search'],
];
const METRICS = [['count', 'Count'], ['avg', 'Average'], ['sum', 'Sum'], ['min', 'Min'], ['max', 'Max'], ['cardinality', 'Unique count']];

export async function mount(root, { params }) {
  if (!params[0]) return listPage(root);
  const ed = new Editor(root, params[0]);
  await ed.init();
  return ed;
}

// ------------------------------------------------------------------------------ list

async function listPage(root) {
  const list = h('ul', { class: 'dash-list' });
  const fileIn = h('input', { type: 'file', accept: 'application/json,.json', hidden: true, onchange: async () => {
    const file = fileIn.files[0];
    if (!file) return;
    try {
      const body = JSON.parse(await file.text());
      const r = await saved.importAll(body);
      banner(`Imported ${r.imported} saved object(s).`, 'ok');
      await draw();
    } catch (e) {
      banner(`Import failed: ${e.message}`);
    }
    fileIn.value = '';
  } });
  root.append(h('div', { class: 'page' },
    h('div', { class: 'dash-head', style: { padding: '0' } }, h('h1', { style: { margin: '0' } }, 'Dashboards'), h('span', { class: 'spacer' }),
      h('button', { class: 'primary', id: 'new-dashboard', onclick: () => navigate('/ui/dashboards/new') }, 'New dashboard'),
      h('button', { id: 'import-dashboards', onclick: () => fileIn.click() }, 'Import JSON'), fileIn,
      h('a', { class: 'button', href: '/_cairn/saved_objects/_export', download: 'cairn-saved-objects.json' }, 'Export all')),
    list));
  const draw = async () => {
    let items;
    try {
      items = await saved.list('dashboard');
    } catch (e) {
      clear(list).append(errorBox('Dashboards could not be listed', e));
      return;
    }
    clear(list).append(...(items.length ? items.map(o => h('li', {},
      h('a', { href: `/ui/dashboards/${o.id}`, 'data-link': true }, o.attributes.title),
      h('span', { class: 'muted' }, `${(o.attributes.panels || []).length} panel(s) · updated ${fmtTime(Date.parse(o.updated_at))}`),
      h('span', { class: 'spacer' }),
      h('button', { class: 'link', onclick: async () => {
        if (!confirm(`Delete the dashboard "${o.attributes.title}"?`)) return;
        try { await saved.remove('dashboard', o.id); await draw(); } catch (e) { banner(`Delete failed: ${e.message}`); }
      } }, 'Delete'))) : [h('li', { class: 'muted' }, 'No dashboards yet.')]));
  };
  await draw();
  return {};
}

// ------------------------------------------------------------------------------ editor

class Editor {
  constructor(root, id) {
    this.root = root;
    this.id = id === 'new' ? null : id;
    const sp = new URLSearchParams(location.search);
    this.d = { title: 'New dashboard', dv: null, query: '', lang: 'kql', from: sp.get('from') || 'now-24h', to: sp.get('to') || 'now', refresh: 0, panels: [] };
    this.charts = new Map();
  }

  unmount() {
    for (const c of this.charts.values()) c.destroy();
    if (this.timer) clearInterval(this.timer);
  }

  async init() {
    if (this.id) {
      try {
        const obj = await saved.get('dashboard', this.id);
        Object.assign(this.d, obj.attributes);
      } catch (e) {
        this.root.append(errorBox('The dashboard could not be loaded', e));
        return;
      }
    }
    try {
      this.views = await dataViews();
    } catch (e) {
      this.views = [];
    }
    if (!this.d.dv && this.views[0]) this.d.dv = this.views[0].title;
    this.build();
    await this.selectView(this.d.dv);
  }

  async selectView(title) {
    this.view = this.views.find(v => v.title === title) || { title, timeField: undefined };
    await resolveTimeField(this.view);
    this.d.dv = this.view.title;
    try { this.fields = await fieldsOf(this.view.title); } catch { this.fields = []; }
    this.renderAll();
  }

  build() {
    this.titleIn = h('input', { id: 'dash-title', class: 'dash-title', value: this.d.title, oninput: () => { this.d.title = this.titleIn.value; } });
    const dvSel = h('select', { id: 'dash-dataview', onchange: () => this.selectView(dvSel.value) },
      this.views.map(v => h('option', { value: v.title, selected: v.title === this.d.dv }, v.title)));
    this.lang = h('button', { class: 'lang', onclick: () => { this.d.lang = this.d.lang === 'kql' ? 'lucene' : 'kql'; this.lang.textContent = this.d.lang === 'kql' ? 'KQL' : 'Lucene'; this.renderAll(); } }, this.d.lang === 'kql' ? 'KQL' : 'Lucene');
    this.queryIn = h('input', { class: 'query-input', id: 'dash-query', value: this.d.query, placeholder: 'Filter every panel (KQL or Lucene)', onkeydown: (ev) => {
      if (ev.key === 'Enter') { this.d.query = this.queryIn.value; this.renderAll(); }
    } });
    this.picker = timePicker({ from: this.d.from, to: this.d.to, refresh: this.d.refresh || 0, onChange: ({ from, to, refresh }) => {
      this.d.from = from; this.d.to = to;
      if (refresh !== undefined) this.setRefresh(refresh);
      this.renderAll();
    } });
    this.grid = h('div', { class: 'grid', id: 'dash-grid' });
    this.root.append(
      h('div', { class: 'dash-head' }, this.titleIn, dvSel,
        h('div', { class: 'query-box' }, this.lang, this.queryIn), this.picker.el,
        h('button', { onclick: () => { this.d.query = this.queryIn.value; this.renderAll(); } }, 'Refresh'),
        h('button', { id: 'add-panel', onclick: () => this.addPanel() }, 'Add panel'),
        h('button', { onclick: () => this.exportOne() }, 'Export'),
        h('button', { class: 'primary', id: 'save-dashboard', onclick: () => this.save() }, 'Save')),
      this.grid);
    if (this.d.refresh) this.setRefresh(this.d.refresh);
  }

  setRefresh(sec) {
    this.d.refresh = sec;
    if (this.timer) clearInterval(this.timer);
    this.timer = sec ? setInterval(() => { if (!document.hidden) this.renderAll(); }, sec * 1000) : null;
  }

  async save() {
    this.d.title = this.titleIn.value.trim() || 'Untitled dashboard';
    this.d.query = this.queryIn.value;
    try {
      if (this.id) {
        await saved.put('dashboard', this.id, this.d);
      } else {
        const obj = await saved.create('dashboard', this.d);
        this.id = obj.id;
        history.replaceState(null, '', `/ui/dashboards/${obj.id}`);
      }
      banner(`Saved "${this.d.title}".`, 'ok');
    } catch (e) {
      banner(`The dashboard could not be saved: ${e.message}`);
    }
  }

  exportOne() {
    const body = { cairn_saved_objects: 1, saved_objects: [{ type: 'dashboard', id: this.id || 'exported-dashboard', attributes: this.d }] };
    const a = h('a', { href: URL.createObjectURL(new Blob([JSON.stringify(body, null, 2)], { type: 'application/json' })), download: `${this.d.title.replace(/[^\w-]+/g, '_')}.json` });
    document.body.append(a);
    a.click();
    a.remove();
  }

  async addPanel(existing) {
    const agg = this.fields.filter(f => f.aggregatable && f.type !== 'date');
    const numeric = this.fields.filter(f => ['long', 'integer', 'short', 'byte', 'double', 'float', 'half_float', 'scaled_float'].includes(f.type));
    let searches = [];
    try { searches = await saved.list('search'); } catch { searches = []; }
    const p = existing || {};
    const r = await formDialog(existing ? 'Edit panel' : 'Add panel', [
      { name: 'title', label: 'Title', value: p.title || '', required: true },
      { name: 'type', label: 'Visualization', value: p.type || 'bar', options: PANEL_TYPES },
      { name: 'field', label: 'Field (split for charts, values for pie/table)', value: p.field || '', options: [['', '—'], ...agg.map(f => [f.name, f.name])] },
      { name: 'metric', label: 'Metric', value: p.metric || 'count', options: METRICS },
      { name: 'metricField', label: 'Metric field (numbers)', value: p.metricField || '', options: [['', '—'], ...numeric.map(f => [f.name, f.name])] },
      { name: 'search', label: 'Saved search (for saved-search panels)', value: p.search || '', options: [['', '—'], ...searches.map(s => [s.id, s.attributes.title])] },
    ], existing ? 'Apply' : 'Add');
    if (!r) return;
    if (r.metric !== 'count' && !r.metricField) r.metric = 'count';
    if (existing) {
      Object.assign(existing, r);
      this.renderAll();
      return;
    }
    const panel = { id: Math.random().toString(36).slice(2, 10), ...r, ...this.freeSpot(6, 4) };
    this.d.panels.push(panel);
    this.renderAll();
  }

  /** The first place, scanning rows top-down, where a w×h panel overlaps nothing. */
  freeSpot(w, hgt) {
    const taken = (x, y) => this.d.panels.some(p => x < p.x + p.w && x + w > p.x && y < p.y + p.h && y + hgt > p.y);
    for (let y = 0; y < 200; y++) for (let x = 0; x + w <= COLS; x++) if (!taken(x, y)) return { x, y, w, h: hgt };
    return { x: 0, y: 200, w, h: hgt };
  }

  renderAll() {
    for (const c of this.charts.values()) c.destroy();
    this.charts.clear();
    clear(this.grid);
    if (!this.d.panels.length) {
      this.grid.append(h('div', { class: 'empty', style: { gridColumn: '1 / -1' } }, h('p', {}, 'This dashboard is empty. Use "Add panel".')));
      return;
    }
    for (const p of this.d.panels) this.grid.append(this.panelEl(p));
  }

  place(el, p) {
    el.style.gridColumn = `${p.x + 1} / span ${p.w}`;
    el.style.gridRow = `${p.y + 1} / span ${p.h}`;
  }

  panelEl(p) {
    const body = h('div', { class: 'panel-body' }, h('p', { class: 'loading' }, 'Loading…'));
    const head = h('div', { class: 'panel-head', title: 'Drag to move' },
      h('span', { class: 'panel-title' }, p.title),
      h('button', { class: 'icon', title: 'Edit panel', onclick: () => this.addPanel(p) }, '✎'),
      h('button', { class: 'icon', title: 'Remove panel', onclick: () => { this.d.panels = this.d.panels.filter(x => x !== p); this.renderAll(); } }, '×'));
    const handle = h('div', { class: 'resize', title: 'Drag to resize' });
    const el = h('div', { class: 'panel', dataset: { panel: p.id } }, head, body, handle);
    this.place(el, p);
    this.dragging(el, head, p, 'move');
    this.dragging(el, handle, p, 'resize');
    // Draw once the panel is in the document and has a size.
    requestAnimationFrame(() => this.renderPanel(p, body));
    return el;
  }

  /** Pointer drag on the grid: moves or resizes a panel by whole cells. */
  dragging(el, handle, p, mode) {
    handle.addEventListener('pointerdown', (ev) => {
      if (ev.target.closest('button')) return;
      ev.preventDefault();
      handle.setPointerCapture(ev.pointerId);
      const rect = this.grid.getBoundingClientRect();
      const colPx = (rect.width - 32 + GAP_PX) / COLS;
      const start = { x: ev.clientX, y: ev.clientY, px: p.x, py: p.y, pw: p.w, ph: p.h };
      el.classList.add('dragging');
      const move = (e) => {
        const dx = Math.round((e.clientX - start.x) / colPx);
        const dy = Math.round((e.clientY - start.y) / (ROW_PX + GAP_PX));
        if (mode === 'move') {
          p.x = Math.min(COLS - p.w, Math.max(0, start.px + dx));
          p.y = Math.max(0, start.py + dy);
        } else {
          p.w = Math.min(COLS - p.x, Math.max(2, start.pw + dx));
          p.h = Math.max(2, start.ph + dy);
        }
        this.place(el, p);
      };
      const up = () => {
        handle.removeEventListener('pointermove', move);
        el.classList.remove('dragging');
        if (p.w !== start.pw || p.h !== start.ph) this.renderAll();
      };
      handle.addEventListener('pointermove', move);
      handle.addEventListener('pointerup', up, { once: true });
    });
  }

  metricAgg(p) {
    if (p.metric && p.metric !== 'count' && p.metricField) return { m: { [p.metric]: { field: p.metricField } } };
    return null;
  }

  async renderPanel(p, body) {
    const tf = this.view.timeField;
    const fromMs = parseTime(this.d.from, false);
    const toMs = parseTime(this.d.to, true);
    let query = buildQuery({ q: this.d.query, lang: this.d.lang, timeField: tf, fromMs, toMs });
    const value = (b) => (p.metric && p.metric !== 'count' && b.m ? b.m.value : b.doc_count);
    try {
      if (['bar', 'line', 'area'].includes(p.type)) {
        if (!tf) throw new Error('This data view has no time field.');
        const [iv, ivMs] = autoInterval(fromMs, toMs, 60);
        const inner = this.metricAgg(p) || {};
        const aggs = { t: { date_histogram: { field: tf, fixed_interval: iv, min_doc_count: 0, extended_bounds: { min: Math.floor(fromMs / ivMs) * ivMs, max: toMs } }, aggs: p.field ? { s: { terms: { field: p.field, size: 5 }, aggs: inner } } : inner } };
        const r = await search(this.view.title, { size: 0, query, aggs, track_total_hits: false });
        const buckets = r.aggregations.t.buckets;
        let series;
        if (p.field) {
          const keys = [];
          for (const b of buckets) for (const s of b.s.buckets) if (!keys.includes(s.key)) keys.push(s.key);
          series = keys.slice(0, 8).map(k => ({ label: String(k), values: buckets.map(b => { const s = b.s.buckets.find(x => x.key === k); return s ? value(s) : 0; }) }));
        } else {
          series = [{ label: p.metric || 'count', values: buckets.map(value) }];
        }
        clear(body);
        const box = h('div', { class: 'chart' });
        body.append(box);
        if (p.field) body.append(h('div', { class: 'legend' }, series.map((s, i) => h('span', { class: 'legend-item' }, h('span', { class: 'swatch', style: { background: PALETTE[i % PALETTE.length] } }), s.label))));
        const height = Math.max(80, body.clientHeight - (p.field ? 30 : 10));
        this.charts.set(p.id, timeChart(box, { x: buckets.map(b => b.key), series, kind: p.type, stacked: p.type !== 'line' && !!p.field, height, bucketMs: ivMs }));
      } else if (p.type === 'pie' || p.type === 'table') {
        if (!p.field) throw new Error('Choose a field for this panel.');
        const r = await search(this.view.title, { size: 0, query, track_total_hits: true, aggs: { t: { terms: { field: p.field, size: p.type === 'pie' ? 6 : 10 }, aggs: this.metricAgg(p) || {} } } });
        const buckets = r.aggregations.t.buckets;
        const total = r.hits.total ? r.hits.total.value : 0;
        clear(body).append(p.type === 'pie' ? pie(buckets.map(b => ({ label: b.key_as_string || String(b.key), value: value(b) })), total)
          : h('table', { class: 'data-table' },
            h('thead', {}, h('tr', {}, h('th', {}, p.field), h('th', { class: 'num' }, METRICS.find(m => m[0] === (p.metric || 'count'))[1]), h('th', { class: 'num' }, '%'))),
            h('tbody', {}, buckets.map(b => h('tr', {}, h('td', {}, b.key_as_string || String(b.key)), h('td', { class: 'num' }, fmtNumber(value(b))),
              h('td', { class: 'num' }, total ? `${(100 * b.doc_count / total).toFixed(1)}%` : '—'))))));
      } else if (p.type === 'metric') {
        const r = await search(this.view.title, { size: 0, query, track_total_hits: true, aggs: this.metricAgg(p) || undefined });
        const v = this.metricAgg(p) ? r.aggregations.m.value : r.hits.total.value;
        clear(body).append(h('div', { class: 'metric-value' }, v === null ? '—' : fmtNumber(Math.round(v * 100) / 100)),
          h('div', { class: 'metric-label' }, p.metric && p.metric !== 'count' ? `${p.metric} of ${p.metricField}` : 'documents'));
      } else if (p.type === 'search') {
        if (!p.search) throw new Error('Choose a saved search for this panel.');
        const s = await saved.get('search', p.search);
        const st = readState(new URLSearchParams(s.attributes.state));
        const index = s.attributes.index || st.dv || this.view.title;
        const stf = s.attributes.timeField || tf;
        query = buildQuery({ q: st.q, lang: st.lang, filters: st.filters, timeField: stf, fromMs, toMs });
        if (this.d.query.trim()) query.bool.filter.push(buildQuery({ q: this.d.query, lang: this.d.lang }));
        const r = await search(index, { size: 25, query, sort: stf ? [{ [stf]: { order: 'desc' } }] : undefined, track_total_hits: false });
        const cols = s.attributes.columns && s.attributes.columns.length ? s.attributes.columns : ['message'];
        clear(body).append(h('table', { class: 'doc-table' },
          h('thead', {}, h('tr', {}, stf ? h('th', {}, 'Time') : null, cols.map(c => h('th', {}, c)))),
          h('tbody', {}, r.hits.hits.map(hit => {
            const f = flatten(hit._source);
            return h('tr', {}, stf ? h('td', { class: 'time-col' }, fmtTime(Date.parse(f[stf]))) : null, cols.map(c => h('td', { class: c === 'message' ? 'msg' : '' }, fmtValue(f[c]))));
          }))));
      }
    } catch (e) {
      clear(body).append(errorBox('This panel could not be drawn', e));
    }
  }
}

/** A donut of the values, with a legend. */
function pie(items, total) {
  const sum = items.reduce((a, b) => a + b.value, 0);
  const rest = Math.max(0, total - sum);
  if (rest > 0) items = [...items, { label: 'other', value: rest }];
  const all = items.reduce((a, b) => a + b.value, 0) || 1;
  const svgNS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(svgNS, 'svg');
  svg.setAttribute('viewBox', '-1.1 -1.1 2.2 2.2');
  let angle = -Math.PI / 2;
  items.forEach((it, i) => {
    const a = (it.value / all) * Math.PI * 2;
    const path = document.createElementNS(svgNS, 'path');
    const [x1, y1, x2, y2] = [Math.cos(angle), Math.sin(angle), Math.cos(angle + a), Math.sin(angle + a)];
    const large = a > Math.PI ? 1 : 0;
    const [ix1, iy1, ix2, iy2] = [x1 * 0.55, y1 * 0.55, x2 * 0.55, y2 * 0.55];
    path.setAttribute('d', a >= Math.PI * 2 - 1e-9
      ? 'M 1 0 A 1 1 0 1 1 -1 0 A 1 1 0 1 1 1 0 M 0.55 0 A 0.55 0.55 0 1 0 -0.55 0 A 0.55 0.55 0 1 0 0.55 0 Z'
      : `M ${x1} ${y1} A 1 1 0 ${large} 1 ${x2} ${y2} L ${ix2} ${iy2} A 0.55 0.55 0 ${large} 0 ${ix1} ${iy1} Z`);
    path.setAttribute('fill', PALETTE[i % PALETTE.length]);
    path.setAttribute('fill-rule', 'evenodd');
    const title = document.createElementNS(svgNS, 'title');
    title.textContent = `${it.label}: ${fmtNumber(it.value)}`;
    path.append(title);
    svg.append(path);
    angle += a;
  });
  return h('div', { class: 'pie' }, svg, h('div', { class: 'legend', style: { flexDirection: 'column' } },
    items.map((it, i) => h('span', { class: 'legend-item' }, h('span', { class: 'swatch', style: { background: PALETTE[i % PALETTE.length] } }),
      `${it.label} · ${(100 * it.value / all).toFixed(1)}%`))));
}
