// Discover: query bar, time picker, histogram, document table, field sidebar, filters,
// live tail and saved searches. The whole state lives in the URL.
//
// Requests per search: one for the count and histogram (size 0), one for the first page
// of rows (which doubles as the field sidebar's sample); more rows come with search_after.

import { search, saved, ApiError } from './api.js';
import { navigate, banner } from './app.js';
import { dataViews, fieldsOf, resolveTimeField } from './data.js';
import { timeChart } from './histogram.js';
import { parseTime, describeRange, autoInterval, intervalMs, INTERVALS, iso, now } from './time.js';
import { timePicker } from './timepicker.js';
import {
  h, clear, fmtNumber, fmtTime, flatten, fmtValue, copyText, highlighted, HL_PRE, HL_POST,
  errorBox, fieldTypeIcon, formDialog,
} from './util.js';

const PAGE = 100;
const MAX_ROWS = 10000;
const SAMPLE_LABEL = (n) => `in ${fmtNumber(n)} sampled document${n === 1 ? '' : 's'}`;

// ---------------------------------------------------------------------------------------
// State <-> URL

export function readState(sp) {
  let filters = [];
  try { filters = JSON.parse(sp.get('filters') || '[]'); } catch { filters = []; }
  return {
    dv: sp.get('dv') || null,
    q: sp.get('q') || '',
    lang: sp.get('lang') === 'lucene' ? 'lucene' : 'kql',
    from: sp.get('from') || 'now-24h',
    to: sp.get('to') || 'now',
    refresh: Number(sp.get('refresh')) || 0,
    cols: sp.has('cols') ? sp.get('cols').split(',').filter(Boolean) : null,
    sort: sp.get('sort') || '',
    filters: Array.isArray(filters) ? filters : [],
    interval: sp.get('interval') || 'auto',
    split: sp.get('split') || '',
    saved: sp.get('saved') || '',
  };
}

export function stateQuery(st) {
  const sp = new URLSearchParams();
  if (st.dv) sp.set('dv', st.dv);
  if (st.q) sp.set('q', st.q);
  if (st.lang !== 'kql') sp.set('lang', st.lang);
  sp.set('from', st.from);
  sp.set('to', st.to);
  if (st.refresh) sp.set('refresh', String(st.refresh));
  if (st.cols) sp.set('cols', st.cols.join(','));
  if (st.sort) sp.set('sort', st.sort);
  if (st.filters.length) sp.set('filters', JSON.stringify(st.filters));
  if (st.interval !== 'auto') sp.set('interval', st.interval);
  if (st.split) sp.set('split', st.split);
  if (st.saved) sp.set('saved', st.saved);
  return sp.toString();
}

// ---------------------------------------------------------------------------------------
// Query building (shared with dashboards and the context view)

export function queryClause(text, lang) {
  const t = (text || '').trim();
  if (!t) return null;
  return lang === 'lucene'
    ? { query_string: { query: t, analyze_wildcard: true } }
    : { kql: { query: t } };
}

export function filterClause(f) {
  if (f.op === 'exists') return { exists: { field: f.field } };
  if (f.op === 'phrase') return { match_phrase: { [f.field]: f.value } };
  return { term: { [f.field]: f.value } };
}

/** bool query: the text query, the time range and the enabled filters. */
export function buildQuery({ q, lang, filters = [], timeField, fromMs, toMs, extraFilter = [] }) {
  const must = [];
  const filter = [...extraFilter];
  const mustNot = [];
  const qc = queryClause(q, lang);
  if (qc) must.push(qc);
  if (timeField && Number.isFinite(fromMs) && Number.isFinite(toMs)) {
    filter.push({ range: { [timeField]: { gte: fromMs, lte: toMs, format: 'epoch_millis' } } });
  }
  for (const f of filters) {
    if (f.disabled) continue;
    (f.negate ? mustNot : filter).push(filterClause(f));
  }
  return { bool: { must, filter, must_not: mustNot } };
}

export function filterLabel(f) {
  const body = f.op === 'exists' ? `${f.field}: exists` : `${f.field}: ${fmtValue(f.value)}`;
  return f.negate ? `NOT ${body}` : body;
}

/** The time of a hit in ms: its sort value when sorted by time, else its source. */
function hitTime(hit, timeField) {
  if (!timeField) return NaN;
  const src = flatten(hit._source);
  const v = src[timeField];
  if (typeof v === 'number') return v;
  const t = Date.parse(v);
  return Number.isNaN(t) ? NaN : t;
}

// ---------------------------------------------------------------------------------------

export async function mount(root, { search: sp }) {
  const d = new Discover(root, readState(sp));
  await d.init();
  return d;
}

class Discover {
  constructor(root, state) {
    this.root = root;
    this.st = state;
    this.views = [];
    this.view = null;
    this.fields = [];
    this.hits = [];
    this.total = null;
    this.openField = null;
    this.expanded = new Set();
    this.aborter = null;
    this.timers = [];
    this.tail = null;
  }

  unmount() {
    this.stopTail();
    this.setAutoRefresh(0);
    if (this.aborter) this.aborter.abort();
    if (this.chart) this.chart.destroy();
    if (this.observer) this.observer.disconnect();
    document.removeEventListener('click', this.closeMenus);
  }

  async init() {
    this.build();
    try {
      this.views = await dataViews();
    } catch (e) {
      this.showError('The list of indices could not be loaded', e);
      return;
    }
    if (!this.views.length) {
      clear(this.main).append(h('div', { class: 'empty' },
        h('h2', {}, 'No data yet'),
        h('p', {}, 'Nothing has been indexed. ', h('a', { href: '/ui/add-data', 'data-link': true }, 'Send logs to Cairn'), ' and come back.')));
      return;
    }
    if (this.st.dv && !this.views.find(v => v.title === this.st.dv)) {
      this.views.unshift({ id: null, title: this.st.dv, timeField: undefined, docs: null });
    }
    await this.selectView(this.st.dv || this.views[0].title, false);
  }

  // ------------------------------------------------------------------- layout

  build() {
    this.dvSelect = h('select', { id: 'dataview', title: 'Data view', onchange: () => this.selectView(this.dvSelect.value, true) });
    this.langBtn = h('button', { class: 'lang', id: 'query-lang', title: 'Query language (click to switch)', onclick: () => {
      this.st.lang = this.st.lang === 'kql' ? 'lucene' : 'kql';
      this.langBtn.textContent = this.st.lang === 'kql' ? 'KQL' : 'Lucene';
      this.input.placeholder = this.placeholder();
      if (this.input.value.trim()) this.submit();
      else this.writeUrl();
    } }, this.st.lang === 'kql' ? 'KQL' : 'Lucene');
    this.input = h('input', { class: 'query-input', id: 'query', type: 'search', spellcheck: false, autocomplete: 'off', value: this.st.q, placeholder: this.placeholder() });
    this.suggest = h('ul', { class: 'suggest', hidden: true, role: 'listbox' });
    this.input.addEventListener('keydown', (ev) => this.onQueryKey(ev));
    this.input.addEventListener('input', () => this.updateSuggestions());
    this.input.addEventListener('blur', () => setTimeout(() => { this.suggest.hidden = true; }, 150));
    this.queryError = h('div', { class: 'query-error', id: 'query-error', hidden: true });
    this.picker = timePicker({
      from: this.st.from, to: this.st.to, refresh: this.st.refresh,
      onChange: ({ from, to, refresh }) => {
        this.st.from = from; this.st.to = to;
        if (refresh !== undefined) { this.st.refresh = refresh; this.setAutoRefresh(refresh); }
        this.writeUrl(true);
        this.run();
      },
    });
    this.tailBtn = h('button', { id: 'live-tail', title: 'Stream new matching lines', onclick: () => (this.tail ? this.stopTail() : this.startTail()) }, 'Live tail');
    const bar = h('div', { class: 'query-bar' },
      this.dvSelect,
      h('button', { class: 'icon', title: 'New data view', onclick: () => this.newDataView() }, '+'),
      h('div', { class: 'query-box' }, this.langBtn, this.input, this.suggest),
      this.picker.el,
      h('button', { class: 'primary', id: 'search-btn', onclick: () => this.submit() }, 'Search'),
      this.tailBtn,
      h('button', { id: 'save-search', onclick: () => this.saveSearch() }, 'Save'),
      h('button', { id: 'open-search', onclick: () => this.openSearch() }, 'Open'));
    this.pills = h('div', { class: 'filter-bar', id: 'filters' });
    this.sidebar = h('aside', { class: 'field-sidebar', id: 'sidebar' });
    this.main = h('section', { class: 'results', id: 'results' });
    this.root.append(h('div', { class: 'discover' }, bar, this.queryError, this.pills,
      h('div', { class: 'discover-body' }, this.sidebar, this.main)));
    this.renderPills();
    // A click elsewhere closes an open filter menu.
    this.closeMenus = (ev) => {
      for (const m of this.pills.querySelectorAll('.pill-menu:not([hidden])')) if (!m.parentNode.contains(ev.target)) m.hidden = true;
    };
    document.addEventListener('click', this.closeMenus);
    if (this.st.refresh) this.setAutoRefresh(this.st.refresh);
  }

  placeholder() {
    return this.st.lang === 'kql'
      ? 'Search with KQL, e.g. http.response.status_code >= 500 and not url.path : /health   (press / to focus)'
      : 'Search with Lucene, e.g. status:[500 TO 599] AND NOT path:health   (press / to focus)';
  }

  async selectView(title, userChange) {
    let view = this.views.find(v => v.title === title);
    if (!view) view = this.views[0];
    this.view = view;
    await resolveTimeField(view);
    this.st.dv = view.title;
    clear(this.dvSelect).append(...this.views.map(v => h('option', { value: v.title, selected: v === view }, v.title)));
    try {
      this.fields = await fieldsOf(view.title);
    } catch (e) {
      this.fields = [];
      this.showError(`The fields of ${view.title} could not be loaded`, e);
    }
    if (userChange) { this.st.cols = null; this.st.sort = ''; this.st.split = ''; }
    this.writeUrl(userChange);
    await this.run();
  }

  columns() {
    if (this.st.cols) return this.st.cols;
    return this.fields.some(f => f.name === 'message') ? ['message'] : [];
  }

  writeUrl(push = false) {
    const url = `/ui/discover?${stateQuery(this.st)}`;
    if (url === location.pathname + location.search) return;
    if (push) history.pushState(null, '', url); else history.replaceState(null, '', url);
  }

  submit() {
    this.st.q = this.input.value;
    this.suggest.hidden = true;
    this.writeUrl(true);
    this.run();
  }

  showError(title, e) {
    clear(this.main).append(errorBox(title, e));
  }

  // ------------------------------------------------------------------- searching

  range() {
    const fromMs = parseTime(this.st.from, false);
    const toMs = parseTime(this.st.to, true);
    return { fromMs, toMs };
  }

  query(extraFilter = []) {
    const { fromMs, toMs } = this.range();
    return buildQuery({
      q: this.st.q, lang: this.st.lang, filters: this.st.filters,
      timeField: this.view.timeField, fromMs, toMs, extraFilter,
    });
  }

  sortSpec() {
    const tf = this.view.timeField;
    let [field, dir] = (this.st.sort || '').split(':');
    if (!field) { field = tf; dir = 'desc'; }
    if (!field) return [{ _score: { order: 'desc' } }];
    return [{ [field]: { order: dir === 'asc' ? 'asc' : 'desc', unmapped_type: 'keyword' } }];
  }

  async run() {
    if (!this.view) return;
    if (this.aborter) this.aborter.abort();
    const ac = new AbortController();
    this.aborter = ac;
    this.hideQueryError();
    const { fromMs, toMs } = this.range();
    if (!Number.isFinite(fromMs) || !Number.isFinite(toMs) || fromMs > toMs) {
      this.showError('Invalid time range', new Error(`Cannot read the range "${this.st.from}" → "${this.st.to}".`));
      return;
    }
    const started = performance.now();
    this.termCache = null;
    const query = this.query();
    const tf = this.view.timeField;
    const [ivName, ivMs] = this.st.interval === 'auto' ? autoInterval(fromMs, toMs) : [this.st.interval, intervalMs(this.st.interval)];
    this.interval = { name: ivName, ms: ivMs };
    const histBody = { size: 0, track_total_hits: true, query };
    if (tf) {
      histBody.aggs = { over_time: { date_histogram: {
        field: tf, fixed_interval: ivName, min_doc_count: 0,
        extended_bounds: { min: Math.floor(fromMs / ivMs) * ivMs, max: toMs },
      } } };
      if (this.st.split) histBody.aggs.over_time.aggs = { split: { terms: { field: this.st.split, size: 5 } } };
    }
    const rowsBody = {
      size: PAGE, query, sort: this.sortSpec(), track_total_hits: false,
      highlight: { pre_tags: [HL_PRE], post_tags: [HL_POST], fields: { '*': {} }, number_of_fragments: 0 },
    };
    clear(this.main).append(h('p', { class: 'loading' }, 'Searching…'));
    this.renderSkeleton();
    const index = this.view.title;
    const histP = search(index, histBody, { signal: ac.signal });
    const rowsP = search(index, rowsBody, { signal: ac.signal });
    // Both may fail; each is awaited below, these only mark them handled meanwhile.
    histP.catch(() => {});
    rowsP.catch(() => {});
    const timings = (window.__cairnTimings = { started });
    try {
      const rows = await rowsP;
      if (ac.signal.aborted) return;
      this.hits = rows.hits.hits;
      this.expanded.clear();
      this.renderTable();
      this.renderSidebar();
      timings.rows = performance.now() - started;
    } catch (e) {
      if (e.type === 'aborted') return;
      this.searchFailed(e);
      return;
    }
    try {
      const hist = await histP;
      if (ac.signal.aborted) return;
      this.total = hist.hits.total ? hist.hits.total.value : null;
      this.renderCount();
      this.renderHistogram(hist.aggregations && hist.aggregations.over_time);
      timings.histogram = performance.now() - started;
    } catch (e) {
      if (e.type === 'aborted') return;
      clear(this.histBox).append(errorBox('The histogram could not be computed', e));
    }
  }

  searchFailed(e) {
    if (e.offset !== null && e.offset !== undefined) this.showQueryError(e);
    const title = e instanceof ApiError && e.status === 400 ? 'Your query could not be run' : 'The search failed';
    this.showError(title, e);
  }

  showQueryError(e) {
    const q = this.input.value;
    clear(this.queryError).append(
      h('span', {}, e.message),
      h('pre', {}, `${q}\n${' '.repeat(Math.min(e.offset, q.length))}^`));
    this.queryError.hidden = false;
    this.input.classList.add('invalid');
    this.input.focus();
    this.input.setSelectionRange(e.offset, Math.min(q.length, e.offset + 1));
  }

  hideQueryError() {
    this.queryError.hidden = true;
    this.input.classList.remove('invalid');
  }

  // ------------------------------------------------------------------- results

  renderSkeleton() {
    this.countEl = h('span', { class: 'hit-count', id: 'hit-count' }, '…');
    const ivSelect = h('select', { id: 'interval', title: 'Histogram interval', onchange: () => { this.st.interval = ivSelect.value; this.writeUrl(); this.run(); } },
      h('option', { value: 'auto', selected: this.st.interval === 'auto' }, 'Auto'),
      INTERVALS.map(([n]) => h('option', { value: n, selected: this.st.interval === n }, n)));
    const splitSelect = h('select', { id: 'split', title: 'Split the histogram by a field', onchange: () => { this.st.split = splitSelect.value; this.writeUrl(); this.run(); } },
      h('option', { value: '' }, 'No split'),
      this.fields.filter(f => f.aggregatable && f.type !== 'date').map(f => h('option', { value: f.name, selected: this.st.split === f.name }, `Split by ${f.name}`)));
    this.ivLabel = h('span', { class: 'muted', id: 'interval-label' });
    this.histBox = h('div', { class: 'histogram', id: 'histogram' });
    this.tableBox = h('div', { class: 'table-box' }, h('p', { class: 'loading' }, 'Loading rows…'));
    this.tailNote = h('div', { class: 'tail-note', id: 'tail-note', hidden: true });
    clear(this.main).append(
      h('div', { class: 'results-head' }, this.countEl, h('span', { class: 'spacer' }),
        this.view.timeField ? [this.ivLabel, ivSelect, splitSelect] : null),
      this.view.timeField ? this.histBox : null, this.tailNote, this.tableBox);
  }

  renderCount() {
    if (!this.countEl) return;
    const n = this.total;
    this.countEl.textContent = n === null ? '' : `${fmtNumber(n)} hit${n === 1 ? '' : 's'}`;
  }

  renderHistogram(agg) {
    if (!this.histBox || !agg) return;
    this.lastAgg = agg;
    if (!this.schemeWatch) {
      // Chart colours come from CSS variables: redraw when the colour scheme flips.
      this.schemeWatch = matchMedia('(prefers-color-scheme: dark)');
      this.schemeWatch.addEventListener('change', () => { if (this.histBox && this.histBox.isConnected) this.renderHistogram(this.lastAgg); });
    }
    if (this.chart) { this.chart.destroy(); this.chart = null; }
    clear(this.histBox);
    const buckets = agg.buckets || [];
    this.ivLabel.textContent = `${describeRange(this.st.from, this.st.to)} · per ${this.interval.name}`;
    if (!buckets.length) { this.histBox.append(h('p', { class: 'muted' }, 'No documents in this time range.')); return; }
    const x = buckets.map(b => b.key);
    let series;
    if (this.st.split) {
      const keys = [];
      for (const b of buckets) for (const s of (b.split ? b.split.buckets : [])) if (!keys.includes(s.key)) keys.push(s.key);
      series = keys.slice(0, 10).map(k => ({ label: String(k), values: buckets.map(b => {
        const s = b.split && b.split.buckets.find(sb => sb.key === k);
        return s ? s.doc_count : 0;
      }) }));
      const other = buckets.map((b, i) => b.doc_count - series.reduce((a, s) => a + s.values[i], 0));
      if (other.some(v => v > 0)) series.push({ label: 'other', values: other });
    } else {
      series = [{ label: 'Count', values: buckets.map(b => b.doc_count) }];
    }
    const chartBox = h('div', { class: 'chart' });
    this.histBox.append(chartBox);
    if (this.st.split) {
      this.histBox.append(h('div', { class: 'legend' }, series.map((s, i) => h('span', { class: 'legend-item' },
        h('span', { class: 'swatch', style: { background: ['#4a7bd0', '#e07b39', '#3aa675', '#c2457a', '#8a6bd1', '#c9a227', '#2f9fb4', '#9c5b3c', '#6b8e23', '#7a7a7a'][i % 10] } }), s.label))));
    }
    this.chart = timeChart(chartBox, {
      x, series, kind: 'bar', stacked: !!this.st.split, height: 150, bucketMs: this.interval.ms,
      onSelect: (a, b) => {
        this.st.from = iso(a); this.st.to = iso(b);
        this.picker.set(this.st.from, this.st.to);
        this.writeUrl(true);
        this.run();
      },
    });
  }

  renderTable() {
    const cols = this.columns();
    const tf = this.view.timeField;
    const [sortField, sortDir] = (this.st.sort || `${tf || ''}:desc`).split(':');
    const head = h('tr', {}, h('th', { class: 'toggle-col' }),
      tf ? h('th', { class: 'time-col' }, this.sortButton(tf, 'Time', sortField, sortDir)) : null,
      cols.length ? cols.map((c, i) => h('th', { dataset: { col: c } },
        this.sortButton(c, c, sortField, sortDir),
        h('span', { class: 'col-actions' },
          i > 0 ? h('button', { class: 'icon', title: 'Move left', onclick: () => this.moveColumn(c, -1) }, '‹') : null,
          i < cols.length - 1 ? h('button', { class: 'icon', title: 'Move right', onclick: () => this.moveColumn(c, 1) }, '›') : null,
          h('button', { class: 'icon', title: `Remove column ${c}`, onclick: () => this.toggleColumn(c) }, '×'))))
        : h('th', {}, 'Document'));
    this.tbody = h('tbody');
    for (const hit of this.hits) this.tbody.append(...this.rowOf(hit, cols));
    const table = h('table', { class: 'doc-table', id: 'doc-table' }, h('thead', {}, head), this.tbody);
    this.more = h('div', { class: 'more' });
    clear(this.tableBox).append(table, this.more);
    if (!this.hits.length) {
      clear(this.tableBox).append(h('div', { class: 'empty', id: 'no-results' },
        h('h3', {}, 'No results match your search criteria'),
        h('p', { class: 'muted' }, 'Widen the time range, remove filters, or check the query.')));
      return;
    }
    this.updateMore(this.hits.length === PAGE);
  }

  sortButton(field, label, sortField, sortDir) {
    const sortable = field === this.view.timeField || (this.fields.find(f => f.name === field) || {}).aggregatable;
    if (!sortable) return h('span', {}, label);
    const active = field === sortField;
    return h('button', { class: 'sort link', title: `Sort by ${field}`, onclick: () => {
      const dir = active && sortDir === 'desc' ? 'asc' : 'desc';
      this.st.sort = field === this.view.timeField && dir === 'desc' ? '' : `${field}:${dir}`;
      this.writeUrl(); this.run();
    } }, label, active ? (sortDir === 'asc' ? ' ▲' : ' ▼') : '');
  }

  updateMore(canLoad) {
    clear(this.more);
    if (this.observer) { this.observer.disconnect(); this.observer = null; }
    if (!canLoad || this.hits.length >= MAX_ROWS) {
      if (this.hits.length >= MAX_ROWS) this.more.append(h('p', { class: 'muted' }, `Showing the first ${fmtNumber(MAX_ROWS)} documents; narrow the search to see others.`));
      return;
    }
    const btn = h('button', { id: 'load-more', onclick: () => this.loadMore(btn) }, 'Load more');
    this.more.append(btn);
    // Infinite scroll: the button loads itself when it scrolls into view.
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some(e => e.isIntersecting) && !btn.disabled) this.loadMore(btn);
    });
    this.observer.observe(btn);
  }

  async loadMore(btn) {
    const last = this.hits[this.hits.length - 1];
    if (!last || !last.sort) return;
    btn.disabled = true;
    btn.textContent = 'Loading…';
    try {
      const r = await search(this.view.title, {
        size: PAGE, query: this.query(), sort: this.sortSpec(), search_after: last.sort, track_total_hits: false,
        highlight: { pre_tags: [HL_PRE], post_tags: [HL_POST], fields: { '*': {} }, number_of_fragments: 0 },
      });
      const cols = this.columns();
      for (const hit of r.hits.hits) { this.hits.push(hit); this.tbody.append(...this.rowOf(hit, cols)); }
      this.updateMore(r.hits.hits.length === PAGE);
    } catch (e) {
      clear(this.more).append(errorBox('More rows could not be loaded', e));
    }
  }

  rowOf(hit, cols) {
    const tf = this.view.timeField;
    const flat = flatten(hit._source);
    const hl = hit.highlight || {};
    const cell = (field) => {
      const v = hl[field] ? hl[field].join(' … ') : fmtValue(flat[field]);
      return h('td', { class: field === 'message' ? 'msg' : '' }, hl[field] ? highlighted(v) : v);
    };
    const summary = () => h('td', { class: 'summary' }, Object.entries(flat).filter(([k]) => k !== tf).slice(0, 30).map(([k, v]) =>
      h('span', { class: 'kv' }, h('b', {}, k + ': '), hl[k] ? highlighted(hl[k].join(' … ')) : fmtValue(v), ' ')));
    const toggle = h('button', { class: 'icon expand', title: 'Expand document', 'aria-expanded': 'false' }, '▸');
    const tr = h('tr', { class: 'doc-row', dataset: { id: hit._id } },
      h('td', { class: 'toggle-col' }, toggle),
      tf ? h('td', { class: 'time-col' }, fmtTime(hitTime(hit, tf))) : null,
      cols.length ? cols.map(cell) : summary());
    const detail = h('tr', { class: 'doc-detail', hidden: true }, h('td', { colspan: cols.length + 2 + (tf ? 1 : 0) }));
    const open = () => {
      const isOpen = detail.hidden;
      detail.hidden = !isOpen;
      toggle.textContent = isOpen ? '▾' : '▸';
      toggle.setAttribute('aria-expanded', String(isOpen));
      if (isOpen && !detail.firstChild.firstChild) detail.firstChild.append(this.docDetail(hit));
    };
    toggle.addEventListener('click', (ev) => { ev.stopPropagation(); open(); });
    tr.addEventListener('dblclick', open);
    return [tr, detail];
  }

  docDetail(hit) {
    const flat = flatten(hit._source);
    const tableView = h('table', { class: 'kv-table doc-fields' }, h('tbody', {}, Object.keys(flat).sort().map(k => {
      const f = this.fields.find(x => x.name === k);
      const canFilter = f && (f.aggregatable || f.type === 'text');
      const v = flat[k];
      return h('tr', { dataset: { field: k } },
        h('td', { class: 'field-name' }, f ? fieldTypeIcon(f.type) : null, ' ', k),
        h('td', { class: 'actions' },
          canFilter && !Array.isArray(v) ? [
            h('button', { class: 'icon', title: `Filter for ${k}`, onclick: () => this.addFilter(k, v, false) }, '+'),
            h('button', { class: 'icon', title: `Filter out ${k}`, onclick: () => this.addFilter(k, v, true) }, '−')] : null,
          h('button', { class: 'icon', title: `Toggle column ${k}`, onclick: () => this.toggleColumn(k) }, '▥')),
        h('td', { class: 'value' }, fmtValue(v)));
    })));
    const json = JSON.stringify(hit._source, null, 2);
    const jsonView = h('pre', { class: 'json', hidden: true }, json);
    const tabs = h('div', { class: 'tabs' });
    const tab = (label, show) => h('button', { class: show === tableView ? 'tab active' : 'tab', onclick: (ev) => {
      tableView.hidden = show !== tableView; jsonView.hidden = show !== jsonView;
      for (const b of tabs.children) b.classList.toggle('active', b === ev.target);
    } }, label);
    tabs.append(tab('Table', tableView), tab('JSON', jsonView));
    const copyBtn = h('button', { onclick: () => copyText(json, copyBtn) }, 'Copy JSON');
    const ctx = new URLSearchParams({ dv: this.view.title, index: hit._index, id: hit._id });
    if (this.view.timeField) { ctx.set('tf', this.view.timeField); ctx.set('ts', String(hitTime(hit, this.view.timeField))); }
    ctx.set('filters', JSON.stringify(this.st.filters.filter(f => f.pinned)));
    return h('div', { class: 'doc-view' },
      h('div', { class: 'doc-view-head' }, tabs, h('span', { class: 'spacer' }),
        h('span', { class: 'muted' }, `${hit._index} / ${hit._id}`),
        copyBtn,
        this.view.timeField ? h('a', { class: 'button', href: `/ui/context?${ctx}`, 'data-link': true }, 'View surrounding documents') : null),
      tableView, jsonView);
  }

  // ------------------------------------------------------------------- columns, filters

  toggleColumn(field) {
    const cols = [...this.columns()];
    const i = cols.indexOf(field);
    if (i >= 0) cols.splice(i, 1); else cols.push(field);
    this.st.cols = cols;
    this.writeUrl();
    this.renderTable();
    this.renderSidebar();
  }

  moveColumn(field, by) {
    const cols = [...this.columns()];
    const i = cols.indexOf(field);
    const j = i + by;
    if (i < 0 || j < 0 || j >= cols.length) return;
    [cols[i], cols[j]] = [cols[j], cols[i]];
    this.st.cols = cols;
    this.writeUrl();
    this.renderTable();
  }

  addFilter(field, value, negate, op) {
    const f = this.fields.find(x => x.name === field);
    const kind = op || (f && !f.aggregatable ? 'phrase' : 'is');
    const existing = this.st.filters.find(x => x.field === field && x.op === kind && JSON.stringify(x.value) === JSON.stringify(value));
    if (existing) { existing.negate = negate; existing.disabled = false; } else {
      this.st.filters.push(kind === 'exists' ? { field, op: 'exists', negate } : { field, op: kind, value, negate });
    }
    this.renderPills();
    this.writeUrl(true);
    this.run();
  }

  renderPills() {
    const pills = this.st.filters.map((f, i) => {
      const menu = h('div', { class: 'pill-menu', hidden: true },
        h('button', { onclick: () => this.updateFilter(i, { negate: !f.negate }) }, f.negate ? 'Include results' : 'Exclude results'),
        h('button', { onclick: () => this.updateFilter(i, { disabled: !f.disabled }) }, f.disabled ? 'Re-enable' : 'Temporarily disable'),
        h('button', { onclick: () => this.updateFilter(i, { pinned: !f.pinned }) }, f.pinned ? 'Unpin' : 'Pin across pages'),
        f.op !== 'exists' ? h('button', { onclick: () => this.editFilter(i) }, 'Edit value') : null,
        h('button', { onclick: () => this.removeFilter(i) }, 'Delete'));
      const label = h('button', { class: 'pill-label', title: 'Filter actions', onclick: () => { menu.hidden = !menu.hidden; } }, filterLabel(f));
      return h('span', { class: `pill${f.negate ? ' negated' : ''}${f.disabled ? ' disabled' : ''}${f.pinned ? ' pinned' : ''}`, dataset: { field: f.field } },
        label,
        h('button', { class: 'icon pill-remove', title: 'Remove filter', onclick: () => this.removeFilter(i) }, '×'),
        menu);
    });
    clear(this.pills).append(...pills,
      h('button', { class: 'link', id: 'add-filter', onclick: () => this.newFilter() }, '+ Add filter'));
  }

  updateFilter(i, patch) {
    Object.assign(this.st.filters[i], patch);
    this.renderPills();
    this.writeUrl(true);
    this.run();
  }

  removeFilter(i) {
    this.st.filters.splice(i, 1);
    this.renderPills();
    this.writeUrl(true);
    this.run();
  }

  async editFilter(i) {
    const f = this.st.filters[i];
    const r = await formDialog(`Edit filter on ${f.field}`, [{ name: 'value', label: 'Value', value: fmtValue(f.value) }]);
    if (!r) return;
    const num = Number(r.value);
    this.updateFilter(i, { value: typeof f.value === 'number' && Number.isFinite(num) ? num : r.value });
  }

  async newFilter() {
    const r = await formDialog('Add filter', [
      { name: 'field', label: 'Field', options: this.fields.map(f => [f.name, f.name]) },
      { name: 'op', label: 'Operator', options: [['is', 'is'], ['is not', 'is not'], ['exists', 'exists'], ['does not exist', 'does not exist']] },
      { name: 'value', label: 'Value (for is / is not)' },
    ], 'Add');
    if (!r || !r.field) return;
    const f = this.fields.find(x => x.name === r.field);
    const numeric = f && ['long', 'integer', 'short', 'byte', 'double', 'float'].includes(f.type);
    const value = numeric && Number.isFinite(Number(r.value)) ? Number(r.value) : r.value;
    if (r.op.includes('exist')) this.addFilter(r.field, null, r.op !== 'exists', 'exists');
    else this.addFilter(r.field, value, r.op === 'is not');
  }

  // ------------------------------------------------------------------- field sidebar

  renderSidebar() {
    const sample = this.hits.map(hh => flatten(hh._source));
    const counts = new Map();
    for (const doc of sample) for (const k of Object.keys(doc)) counts.set(k, (counts.get(k) || 0) + 1);
    const cols = this.columns();
    const search = h('input', { type: 'search', class: 'field-search', placeholder: 'Search field names', oninput: () => draw() });
    const list = h('div', { class: 'field-list' });
    const byName = new Map(this.fields.map(f => [f.name, f]));
    for (const k of counts.keys()) if (!byName.has(k)) byName.set(k, { name: k, type: 'unknown', aggregatable: false });
    const all = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
    const item = (f) => {
      const inCols = cols.includes(f.name);
      const details = h('div', { class: 'field-details', hidden: this.openField !== f.name });
      const row = h('div', { class: 'field-item', dataset: { field: f.name } },
        h('button', { class: 'field-name link', title: `Show top values of ${f.name}`, onclick: () => {
          this.openField = details.hidden ? f.name : null;
          for (const el of list.querySelectorAll('.field-details')) if (el !== details) el.hidden = true;
          details.hidden = !details.hidden;
          if (!details.hidden) this.fieldDetails(details, f, sample);
        } }, fieldTypeIcon(f.type), ' ', f.name),
        h('button', { class: 'icon add-col', title: inCols ? `Remove column ${f.name}` : `Add ${f.name} as a column`, onclick: () => this.toggleColumn(f.name) }, inCols ? '−' : '+'),
        details);
      if (!details.hidden) this.fieldDetails(details, f, sample);
      return row;
    };
    const draw = () => {
      const term = search.value.trim().toLowerCase();
      const match = (f) => !term || f.name.toLowerCase().includes(term);
      const selected = all.filter(f => cols.includes(f.name) && match(f));
      const present = all.filter(f => !cols.includes(f.name) && counts.has(f.name) && match(f));
      const empty = all.filter(f => !cols.includes(f.name) && !counts.has(f.name) && match(f));
      clear(list).append(h('div', {},
        selected.length ? [h('h4', {}, 'Selected fields'), selected.map(item)] : null,
        h('h4', {}, 'Available fields'), present.map(item),
        empty.length ? [h('h4', {}, 'Empty fields'), empty.map(item)] : null));
    };
    draw();
    clear(this.sidebar).append(search, list);
  }

  fieldDetails(box, f, sample) {
    const values = new Map();
    let present = 0;
    for (const doc of sample) {
      if (!(f.name in doc)) continue;
      present++;
      const vs = Array.isArray(doc[f.name]) ? doc[f.name] : [doc[f.name]];
      for (const v of vs) {
        const key = JSON.stringify(v);
        values.set(key, (values.get(key) || 0) + 1);
      }
    }
    const top = [...values.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5);
    const canFilter = f.aggregatable || f.type === 'text' || f.type === 'unknown';
    clear(box).append(
      h('div', { class: 'muted' }, `Top ${top.length} values ${SAMPLE_LABEL(sample.length)} (present in ${fmtNumber(present)})`),
      top.length ? h('ul', { class: 'top-values' }, top.map(([key, n]) => {
        const v = JSON.parse(key);
        const pct = sample.length ? (100 * n / sample.length) : 0;
        return h('li', { dataset: { value: fmtValue(v) } },
          h('div', { class: 'tv-row' },
            h('span', { class: 'tv-value', title: fmtValue(v) }, fmtValue(v)),
            h('span', { class: 'tv-pct' }, `${pct.toFixed(pct < 10 ? 1 : 0)}%`),
            canFilter ? [
              h('button', { class: 'icon filter-for', title: `Filter for ${f.name}: ${fmtValue(v)}`, onclick: () => this.addFilter(f.name, v, false) }, '+'),
              h('button', { class: 'icon filter-out', title: `Filter out ${f.name}: ${fmtValue(v)}`, onclick: () => this.addFilter(f.name, v, true) }, '−')] : null),
          h('div', { class: 'bar' }, h('span', { style: { width: `${pct}%` } })));
      })) : h('p', { class: 'muted' }, 'No values in the sample.'),
      h('div', { class: 'field-actions' },
        h('button', { class: 'filter-exists', onclick: () => this.addFilter(f.name, null, false, 'exists') }, 'Filter: exists'),
        h('button', { onclick: () => this.toggleColumn(f.name) }, this.columns().includes(f.name) ? 'Remove column' : 'Add column')));
  }

  // ------------------------------------------------------------------- autocomplete

  tokenAtCaret() {
    const v = this.input.value;
    const pos = this.input.selectionStart ?? v.length;
    const before = v.slice(0, pos);
    const m = /([^\s()]*)$/.exec(before);
    return { start: pos - m[1].length, end: pos, text: m[1] };
  }

  async updateSuggestions() {
    const before = this.input.value.slice(0, this.input.selectionStart ?? this.input.value.length);
    const items = [];
    // "field:" or "field : " just before the caret: suggest values of that field.
    const m = /([\w.@-]+)\s*:\s*"?([^\s"()]*)$/.exec(before);
    const valueField = m && this.fields.find(x => x.name === m[1]);
    if (valueField) {
      if (valueField.aggregatable) {
        for (const v of await this.topTerms(valueField.name)) {
          if (String(v).toLowerCase().startsWith(m[2].toLowerCase())) {
            const needsQuote = typeof v === 'string' && /[\s:()"]/.test(v);
            items.push({ label: String(v), insert: needsQuote ? JSON.stringify(v) : String(v), kind: 'value', valuePrefix: m[2] });
          }
        }
      }
    } else {
      const { text } = this.tokenAtCaret();
      if (text.length >= 1 && !text.includes(':')) {
        for (const f of this.fields) {
          if (f.name.toLowerCase().startsWith(text.toLowerCase()) && f.name !== text) {
            items.push({ label: f.name, insert: `${f.name}${this.st.lang === 'kql' ? ' : ' : ':'}`, kind: 'field' });
          }
        }
      }
    }
    this.suggestItems = items.slice(0, 10);
    this.suggestIndex = -1;
    clear(this.suggest).append(...this.suggestItems.map((it, i) => h('li', { class: `suggest-${it.kind}`, onmousedown: (ev) => { ev.preventDefault(); this.applySuggestion(i); } }, it.label)));
    this.suggest.hidden = !this.suggestItems.length;
  }

  async topTerms(field) {
    this.termCache = this.termCache || new Map();
    if (!this.termCache.has(field)) {
      // Values within the time range and filters, whatever the query being typed.
      const { fromMs, toMs } = this.range();
      const query = buildQuery({ filters: this.st.filters, timeField: this.view.timeField, fromMs, toMs });
      const p = search(this.view.title, { size: 0, query, track_total_hits: false, aggs: { t: { terms: { field, size: 20 } } } })
        .then(r => r.aggregations.t.buckets.map(b => b.key_as_string || b.key))
        .catch(() => []);
      this.termCache.set(field, p);
    }
    return this.termCache.get(field);
  }

  applySuggestion(i) {
    const it = this.suggestItems[i];
    if (!it) return;
    const v = this.input.value;
    const pos = this.input.selectionStart ?? v.length;
    let start;
    if (it.kind === 'field') start = this.tokenAtCaret().start;
    else start = pos - (it.valuePrefix || '').length - (v.slice(0, pos).endsWith('"' + it.valuePrefix) ? 1 : 0);
    const next = v.slice(0, start) + it.insert + (it.kind === 'value' ? ' ' : '') + v.slice(pos);
    this.input.value = next;
    const caret = start + it.insert.length + (it.kind === 'value' ? 1 : 0);
    this.input.setSelectionRange(caret, caret);
    this.suggest.hidden = true;
    if (it.kind === 'field') this.updateSuggestions();
  }

  onQueryKey(ev) {
    const open = !this.suggest.hidden && this.suggestItems && this.suggestItems.length;
    if (open && (ev.key === 'ArrowDown' || ev.key === 'ArrowUp')) {
      ev.preventDefault();
      const n = this.suggestItems.length;
      this.suggestIndex = (this.suggestIndex + (ev.key === 'ArrowDown' ? 1 : n - 1)) % n;
      [...this.suggest.children].forEach((li, i) => li.classList.toggle('active', i === this.suggestIndex));
      return;
    }
    if (open && (ev.key === 'Tab' || (ev.key === 'Enter' && this.suggestIndex >= 0))) {
      ev.preventDefault();
      this.applySuggestion(Math.max(0, this.suggestIndex));
      return;
    }
    if (ev.key === 'Escape') { this.suggest.hidden = true; return; }
    if (ev.key === 'Enter') { ev.preventDefault(); this.submit(); }
  }

  // ------------------------------------------------------------------- auto refresh, live tail

  setAutoRefresh(seconds) {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.refreshTimer = null;
    if (seconds > 0) {
      this.refreshTimer = setInterval(() => {
        if (!document.hidden && !this.tail) this.run();
      }, seconds * 1000);
    }
  }

  startTail() {
    const tf = this.view.timeField;
    if (!tf) { banner('Live tail needs a data view with a time field.'); return; }
    const newest = this.hits.reduce((m, hit) => Math.max(m, hitTime(hit, tf)), -Infinity);
    this.tail = { since: Number.isFinite(newest) ? newest : this.range().toMs, seen: new Set(this.hits.map(x => x._id)), buffered: [], paused: false };
    this.tailBtn.textContent = 'Stop tail';
    this.tailBtn.classList.add('active');
    this.tailNote.hidden = false;
    this.tailNote.textContent = 'Live: new matching lines appear at the top.';
    this.onScroll = () => {
      if (!this.tail) return;
      const away = window.scrollY > 80;
      if (away !== this.tail.paused) {
        this.tail.paused = away;
        if (!away) this.flushTail();
        this.tailNote.textContent = away ? 'Paused while you read: scroll to the top to resume.' : 'Live: new matching lines appear at the top.';
      }
    };
    window.addEventListener('scroll', this.onScroll, { passive: true });
    const poll = async () => {
      if (!this.tail) return;
      try {
        const q = buildQuery({ q: this.st.q, lang: this.st.lang, filters: this.st.filters, timeField: tf, fromMs: NaN, toMs: NaN,
          extraFilter: [{ range: { [tf]: { gte: this.tail.since, format: 'epoch_millis' } } }] });
        const r = await search(this.view.title, { size: 200, query: q, sort: [{ [tf]: { order: 'asc' } }], track_total_hits: false });
        if (!this.tail) return;
        for (const hit of r.hits.hits) {
          if (this.tail.seen.has(hit._id)) continue;
          this.tail.seen.add(hit._id);
          this.tail.buffered.push(hit);
          const t = hitTime(hit, tf);
          if (Number.isFinite(t)) this.tail.since = Math.max(this.tail.since, t);
        }
        if (!this.tail.paused) this.flushTail();
        else if (this.tail.buffered.length) this.tailNote.textContent = `Paused: ${this.tail.buffered.length} new line(s) waiting — scroll to the top to see them.`;
      } catch (e) {
        this.tailNote.textContent = `Live tail error: ${e.message} (retrying)`;
      }
      if (this.tail) this.tail.timer = setTimeout(poll, 2000);
    };
    poll();
  }

  flushTail() {
    if (!this.tail || !this.tail.buffered.length || !this.tbody) return;
    const cols = this.columns();
    const hits = this.tail.buffered.splice(0);
    if (!this.tbody.isConnected) this.renderTable();
    for (const hit of hits) {
      this.hits.unshift(hit);
      const [tr, detail] = this.rowOf(hit, cols);
      tr.classList.add('new-row');
      this.tbody.prepend(tr, detail);
    }
    if (this.total !== null) { this.total += hits.length; this.renderCount(); }
  }

  stopTail() {
    if (!this.tail) return;
    clearTimeout(this.tail.timer);
    this.tail = null;
    window.removeEventListener('scroll', this.onScroll);
    if (this.tailBtn) { this.tailBtn.textContent = 'Live tail'; this.tailBtn.classList.remove('active'); }
    if (this.tailNote) this.tailNote.hidden = true;
  }

  // ------------------------------------------------------------------- saved searches, data views

  async saveSearch() {
    let current = null;
    if (this.st.saved) current = await saved.get('search', this.st.saved).catch(() => null);
    const r = await formDialog(current ? 'Save search' : 'Save search as', [
      { name: 'title', label: 'Title', value: current ? current.attributes.title : '', required: true },
      current ? { name: 'mode', label: 'Save', options: [['update', `Update "${current.attributes.title}"`], ['new', 'As a new search']] } : null,
    ].filter(Boolean));
    if (!r || !r.title.trim()) return;
    const st = { ...this.st, saved: '' };
    const attrs = { title: r.title.trim(), state: stateQuery(st), index: this.view.title, timeField: this.view.timeField, query: this.st.q, language: this.st.lang, filters: this.st.filters, columns: this.columns() };
    try {
      const obj = current && r.mode !== 'new' ? await saved.put('search', current.id, attrs) : await saved.create('search', attrs);
      this.st.saved = obj.id;
      this.writeUrl();
      banner(`Saved search "${attrs.title}".`, 'ok');
    } catch (e) {
      banner(`The search could not be saved: ${e.message}`);
    }
  }

  async openSearch() {
    let list;
    try { list = await saved.list('search'); } catch (e) { banner(`Saved searches could not be listed: ${e.message}`); return; }
    if (!list.length) { banner('No saved searches yet: use Save first.', 'ok'); return; }
    const r = await formDialog('Open saved search', [{ name: 'id', label: 'Search', options: list.map(o => [o.id, o.attributes.title]) }], 'Open');
    if (!r) return;
    const obj = list.find(o => o.id === r.id);
    if (obj) navigate(`/ui/discover?${obj.attributes.state}&saved=${encodeURIComponent(obj.id)}`);
  }

  async newDataView() {
    const r = await formDialog('New data view', [
      { name: 'title', label: 'Index pattern', placeholder: 'logs-*', required: true },
      { name: 'timeField', label: 'Time field (empty: detect)', placeholder: '@timestamp' },
    ], 'Create');
    if (!r || !r.title.trim()) return;
    const view = { id: null, title: r.title.trim(), timeField: r.timeField.trim() || undefined, docs: null };
    await resolveTimeField(view);
    try {
      const obj = await saved.create('data-view', { title: view.title, timeField: view.timeField });
      view.id = obj.id;
    } catch (e) {
      banner(`The data view could not be saved: ${e.message}`);
    }
    this.views.unshift(view);
    this.selectView(view.title, true);
  }
}
