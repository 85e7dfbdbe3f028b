// Small DOM and formatting helpers.

/**
 * Builds an element: h('button', {class: 'x', onclick: fn}, 'text', child...).
 * Attribute values of `false`/`null` are skipped; text children are escaped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

const numberFmt = new Intl.NumberFormat('en-US');
export function fmtNumber(n) {
  return typeof n === 'number' ? numberFmt.format(n) : String(n);
}

export function fmtBytes(n) {
  n = Number(n);
  if (!Number.isFinite(n)) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');
/** Local time, to the millisecond: "2015-05-17 10:05:03.000". */
export function fmtTime(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** Flattens a document into dotted keys; arrays of scalars stay arrays. */
export function flatten(obj, prefix = '', out = {}) {
  for (const [k, v] of Object.entries(obj || {})) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v, key, out);
    else out[key] = v;
  }
  return out;
}

export function fmtValue(v) {
  if (v === null || v === undefined) return '—';
  if (Array.isArray(v)) return v.map(fmtValue).join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function debounce(fn, ms) {
  let t;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

export async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Clipboard API refused (insecure context): fall back to a selection copy.
    const ta = h('textarea', { style: { position: 'fixed', opacity: '0' } }, text);
    document.body.append(ta);
    ta.select();
    document.execCommand('copy');
    ta.remove();
  }
  if (button) {
    const old = button.textContent;
    button.textContent = 'Copied';
    setTimeout(() => { button.textContent = old; }, 1200);
  }
}

/** Text with highlight markers turned into <mark> elements, everything else escaped. */
export const HL_PRE = '\u0001hl\u0002';
export const HL_POST = '\u0001/hl\u0002';
export function highlighted(text) {
  const frag = document.createDocumentFragment();
  const parts = String(text).split(HL_PRE);
  frag.append(parts[0]);
  for (const p of parts.slice(1)) {
    const [inside, ...rest] = p.split(HL_POST);
    frag.append(h('mark', {}, inside), rest.join(''));
  }
  return frag;
}

/** A readable error box. */
export function errorBox(title, err) {
  const box = h('div', { class: 'error-box', role: 'alert' },
    h('strong', {}, title),
    h('p', { class: 'error-message' }, err && err.message ? err.message : String(err)));
  if (err && err.status) box.append(h('p', { class: 'muted' }, `HTTP ${err.status}${err.type ? ' · ' + err.type : ''}`));
  return box;
}

export function fieldTypeIcon(type) {
  const map = { date: 'D', date_nanos: 'D', keyword: 'k', text: 't', long: '#', integer: '#', short: '#', byte: '#',
    double: '#', float: '#', half_float: '#', scaled_float: '#', unsigned_long: '#', boolean: 'b', ip: 'ip',
    geo_point: 'g', conflict: '!', match_only_text: 't', wildcard: 'k', constant_keyword: 'k', flattened: '{}' };
  return h('span', { class: `ftype ftype-${type}`, title: type }, map[type] || '?');
}

/**
 * A modal form. fields: [{name, label, value, type, options: [[value,label]...]}].
 * Resolves to {name: value} or null when cancelled.
 */
export function formDialog(title, fields, submitLabel = 'Save') {
  return new Promise((resolve) => {
    const inputs = {};
    const body = fields.map((f) => {
      const input = f.options
        ? h('select', { name: f.name }, f.options.map(([v, l]) => h('option', { value: v, selected: v === f.value }, l)))
        : h(f.type === 'textarea' ? 'textarea' : 'input', { name: f.name, value: f.value || '', type: f.type === 'textarea' ? false : (f.type || 'text'), required: f.required, placeholder: f.placeholder || '' });
      if (f.type === 'textarea') input.value = f.value || '';
      inputs[f.name] = input;
      return h('label', {}, f.label, input);
    });
    const dlg = h('dialog', { class: 'form-dialog' });
    const form = h('form', { method: 'dialog', onsubmit: (ev) => {
      ev.preventDefault();
      const out = {};
      for (const [k, el] of Object.entries(inputs)) out[k] = el.value;
      dlg.close();
      dlg.remove();
      resolve(out);
    } },
    h('h2', {}, title), ...body,
    h('div', { class: 'dialog-buttons' },
      h('button', { type: 'button', onclick: () => { dlg.close(); dlg.remove(); resolve(null); } }, 'Cancel'),
      h('button', { type: 'submit', class: 'primary' }, submitLabel)));
    dlg.addEventListener('cancel', () => { dlg.remove(); resolve(null); });
    dlg.append(form);
    document.body.append(dlg);
    dlg.showModal();
    const first = Object.values(inputs)[0];
    if (first) first.focus();
  });
}
