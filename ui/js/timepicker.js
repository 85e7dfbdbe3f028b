// The time picker: quick ranges, "last N units", absolute times and auto-refresh.

import { QUICK_RANGES, describeRange, parseTime, iso } from './time.js';
import { h, clear } from './util.js';

const REFRESH = [[0, 'Off'], [5, '5 seconds'], [10, '10 seconds'], [30, '30 seconds'], [60, '1 minute'], [300, '5 minutes']];

export function timePicker({ from, to, refresh = 0, onChange }) {
  const state = { from, to, refresh };
  const label = h('span', { class: 'tp-label' });
  const button = h('button', { class: 'time-button', id: 'time-picker', title: 'Time range', 'aria-haspopup': 'dialog' }, label);
  const pop = h('div', { class: 'tp-pop', id: 'time-pop', hidden: true });
  const el = h('div', { class: 'time-picker' }, button, pop);

  const show = () => {
    label.textContent = describeRange(state.from, state.to) + (state.refresh ? ` · every ${state.refresh}s` : '');
  };
  const apply = (patch) => {
    Object.assign(state, patch);
    show();
    pop.hidden = true;
    onChange({ ...state });
  };

  const build = () => {
    const n = h('input', { type: 'number', min: 1, value: 15, class: 'tp-n', id: 'tp-n' });
    const unit = h('select', { class: 'tp-unit', id: 'tp-unit' }, [['m', 'minutes'], ['h', 'hours'], ['d', 'days'], ['w', 'weeks'], ['M', 'months']]
      .map(([v, l]) => h('option', { value: v }, l)));
    const fromIn = h('input', { id: 'tp-from', value: state.from, spellcheck: false });
    const toIn = h('input', { id: 'tp-to', value: state.to, spellcheck: false });
    const err = h('p', { class: 'error-message', hidden: true });
    const refreshSel = h('select', { id: 'tp-refresh', onchange: () => apply({ refresh: Number(refreshSel.value) }) },
      REFRESH.map(([v, l]) => h('option', { value: v, selected: v === state.refresh }, l)));
    clear(pop).append(
      h('h4', {}, 'Quick'),
      h('div', { class: 'tp-quick' }, QUICK_RANGES.map(([f, t, l]) => h('button', { class: 'link', onclick: () => apply({ from: f, to: t }) }, l))),
      h('h4', {}, 'Relative'),
      h('div', { class: 'tp-row' }, 'Last ', n, unit, h('button', { id: 'tp-relative', onclick: () => {
        const k = Math.max(1, Math.floor(Number(n.value) || 1));
        apply({ from: `now-${k}${unit.value}`, to: 'now' });
      } }, 'Apply')),
      h('h4', {}, 'Absolute'),
      h('p', { class: 'muted' }, 'ISO dates (2015-05-17T10:05:00Z) or expressions (now-2h, now/d).'),
      h('div', { class: 'tp-row' }, h('label', {}, 'From ', fromIn), h('label', {}, 'To ', toIn),
        h('button', { id: 'tp-absolute', onclick: () => {
          const a = parseTime(fromIn.value, false);
          const b = parseTime(toIn.value, true);
          if (!Number.isFinite(a) || !Number.isFinite(b) || a > b) {
            err.textContent = 'Enter two valid times, the first before the second.';
            err.hidden = false;
            return;
          }
          const norm = (v, ms) => (v.trim().startsWith('now') ? v.trim() : iso(ms));
          apply({ from: norm(fromIn.value, a), to: norm(toIn.value, b) });
        } }, 'Apply')),
      err,
      h('h4', {}, 'Auto-refresh'),
      h('div', { class: 'tp-row' }, refreshSel));
  };

  button.addEventListener('click', () => {
    if (pop.hidden) build();
    pop.hidden = !pop.hidden;
  });
  document.addEventListener('click', (ev) => {
    if (!pop.hidden && !el.contains(ev.target)) pop.hidden = true;
  });
  show();
  return {
    el,
    set(f, t) { state.from = f; state.to = t; show(); },
    get: () => ({ ...state }),
  };
}
