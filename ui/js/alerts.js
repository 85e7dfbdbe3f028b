// Alerts: rules with their state, last run and errors; history; silences; a YAML
// editor with server-side validation. Uses /_cairn/alerting/.

import { api } from './api.js';
import { banner, navigate } from './app.js';
import { h, clear, fmtNumber, fmtTime, errorBox, formDialog } from './util.js';

const RULES = '/_cairn/alerting/rules';

const TEMPLATE = `name: Many server errors
type: frequency
index: logs-*
num_events: 50
timeframe:
  minutes: 5
filter:
  - query:
      query_string:
        query: "http.response.status_code:[500 TO 599]"
alert:
  - post
http_post_url: "http://127.0.0.1:8080/hook"
`;

export async function mount(root, { params }) {
  if (params[0]) return editor(root, params[0]);
  return list(root);
}

async function list(root) {
  const rulesBox = h('div');
  const historyBox = h('div');
  root.append(h('div', { class: 'page' },
    h('div', { class: 'dash-head', style: { padding: '0' } }, h('h1', { style: { margin: '0' } }, 'Alerts'), h('span', { class: 'spacer' }),
      h('button', { class: 'primary', id: 'new-rule', onclick: () => navigate('/ui/alerts/new') }, 'New rule')),
    rulesBox, h('h2', {}, 'Recent alerts'), historyBox));

  const draw = async () => {
    let rules;
    try {
      rules = (await api(RULES)).rules || [];
    } catch (e) {
      clear(rulesBox).append(errorBox('The rules could not be listed', e));
      return;
    }
    if (!rules.length) {
      clear(rulesBox).append(h('p', { class: 'muted' }, 'No rules yet.'));
    } else {
      clear(rulesBox).append(h('table', { class: 'data-table', id: 'rules-table' },
        h('thead', {}, h('tr', {}, ['Rule', 'Type', 'Index', 'State', 'Last run', 'Runs', 'Matches', 'Alerts', 'Errors', ''].map(t => h('th', {}, t)))),
        h('tbody', {}, rules.map(r => {
          const st = r.stats || {};
          const state = r.error ? 'error' : r.enabled === false ? 'disabled' : r.running ? 'running' : 'stopped';
          return [
            h('tr', { dataset: { rule: r.id } },
              h('td', {}, h('a', { href: `/ui/alerts/${encodeURIComponent(r.id)}`, 'data-link': true }, r.name || r.id)),
              h('td', {}, r.type || '—'), h('td', {}, r.index || '—'),
              h('td', { class: state === 'error' ? 'error-message' : '' }, state),
              h('td', {}, r.last_run ? fmtTime(Date.parse(r.last_run)) : 'never'),
              h('td', { class: 'num' }, fmtNumber(st.runs ?? 0)), h('td', { class: 'num' }, fmtNumber(st.matches ?? 0)),
              h('td', { class: 'num' }, fmtNumber(st.alerts_sent ?? 0)), h('td', { class: 'num' }, fmtNumber(st.errors ?? 0)),
              h('td', {},
                h('button', { class: 'link', onclick: () => silence(r) }, 'Silence'),
                r.source === 'api' ? h('button', { class: 'link', onclick: () => remove(r) }, 'Delete') : null)),
            r.error ? h('tr', {}, h('td', { colspan: 10, class: 'error-message' }, r.error)) : null,
          ];
        }))));
    }
    try {
      const alerts = (await api('/_cairn/alerting/history?size=50')).alerts || [];
      clear(historyBox).append(alerts.length ? h('table', { class: 'data-table', id: 'alert-history' },
        h('thead', {}, h('tr', {}, ['Time', 'Rule', 'Status', 'Subject', 'Matches', 'Error'].map(t => h('th', {}, t)))),
        h('tbody', {}, alerts.map(a => h('tr', {},
          h('td', {}, fmtTime(Date.parse(a.created))), h('td', {}, a.rule_name || a.rule_id), h('td', {}, a.status),
          h('td', {}, a.subject || ''), h('td', { class: 'num' }, fmtNumber(a.num_matches || 0)),
          h('td', { class: 'error-message' }, a.last_error || ''))))) : h('p', { class: 'muted' }, 'No alerts sent yet.'));
    } catch (e) {
      clear(historyBox).append(errorBox('The alert history could not be loaded', e));
    }
  };

  const silence = async (r) => {
    const v = await formDialog(`Silence ${r.name || r.id}`, [
      { name: 'duration', label: 'For', value: '1h', options: [['30m', '30 minutes'], ['1h', '1 hour'], ['4h', '4 hours'], ['1d', '1 day'], ['7d', '7 days']] },
      { name: 'query_key', label: 'Only this query_key value (empty: all)' },
    ], 'Silence');
    if (!v) return;
    try {
      const body = { duration: v.duration };
      if (v.query_key.trim()) body.query_key = v.query_key.trim();
      const res = await api(`${RULES}/${encodeURIComponent(r.id)}/silences`, { method: 'POST', body });
      banner(`Silenced until ${fmtTime(Date.parse(res.until))}.`, 'ok');
    } catch (e) {
      banner(`Silence failed: ${e.message}`);
    }
  };

  const remove = async (r) => {
    if (!confirm(`Delete the rule "${r.name || r.id}"?`)) return;
    try { await api(`${RULES}/${encodeURIComponent(r.id)}`, { method: 'DELETE' }); await draw(); } catch (e) { banner(`Delete failed: ${e.message}`); }
  };

  await draw();
  return {};
}

async function editor(root, id) {
  const isNew = id === 'new';
  const text = h('textarea', { id: 'rule-yaml', spellcheck: false, style: { width: '100%', minHeight: '360px', fontFamily: 'ui-monospace, monospace' } });
  const result = h('div', { id: 'rule-result' });
  let rule = null;
  if (!isNew) {
    try {
      rule = await api(`${RULES}/${encodeURIComponent(id)}`);
      text.value = rule.yaml || '';
    } catch (e) {
      root.append(h('div', { class: 'page' }, errorBox('The rule could not be loaded', e)));
      return {};
    }
  } else {
    text.value = TEMPLATE;
  }
  const validate = async () => {
    try {
      const v = await api(`${RULES}/_validate`, { method: 'POST', body: { yaml: text.value } });
      clear(result).append(v.valid
        ? h('p', { class: 'ok' }, `Valid: "${v.name}", a ${v.type} rule.`)
        : errorBox(`Invalid rule${v.key ? ` (at ${v.key})` : ''}`, new Error(v.error)));
      return v.valid;
    } catch (e) {
      clear(result).append(errorBox('Validation failed', e));
      return false;
    }
  };
  // "Test on the last N hours": the server dry-runs the unsaved rule with the
  // caller's privileges and answers with the alerts it would have sent.
  const hours = h('input', { id: 'test-hours', type: 'number', min: '1', max: '8784', value: '24', style: { width: '5em' } });
  const test = async () => {
    if (!(await validate())) return;
    clear(result).append(h('p', { class: 'muted' }, `Running the rule over the last ${hours.value} hours…`));
    try {
      const r = await api(`${RULES}/_test?hours=${encodeURIComponent(hours.value)}`, { method: 'POST', body: { yaml: text.value } });
      clear(result).append(
        h('p', { id: 'test-summary' }, `${fmtNumber(r.hits)} matching documents in ${r.index}, ${fmtNumber(r.matches)} matches, ${fmtNumber(r.alerts.length)} alert${r.alerts.length === 1 ? '' : 's'} would have been sent.`),
        r.warnings.length ? h('ul', { class: 'warnings' }, r.warnings.map(w => h('li', {}, w))) : null,
        r.alerts.slice(0, 20).map(a => h('details', { class: 'test-alert' },
          h('summary', {}, `${fmtTime(Date.parse(a.match_time))} · ${a.subject}`),
          h('pre', {}, a.body))));
    } catch (e) {
      clear(result).append(errorBox('The test run failed', e));
    }
  };
  const save = async () => {
    if (!(await validate())) return;
    try {
      const saved = isNew
        ? await api(RULES, { method: 'POST', body: { yaml: text.value } })
        : await api(`${RULES}/${encodeURIComponent(id)}`, { method: 'PUT', body: { yaml: text.value } });
      banner(`Saved rule ${saved.name || saved.id || ''}.`, 'ok');
      navigate('/ui/alerts');
    } catch (e) {
      clear(result).append(errorBox('The rule could not be saved', e));
    }
  };
  const history = h('div');
  root.append(h('div', { class: 'page' },
    h('p', {}, h('a', { href: '/ui/alerts', 'data-link': true }, '← Alerts')),
    h('h1', {}, isNew ? 'New rule' : `Rule ${rule.name || id}`),
    h('p', { class: 'muted' }, 'ElastAlert rule YAML. ', rule && rule.source && rule.source.file ? `Loaded from ${rule.source.file}: edit that file instead.` : ''),
    text,
    h('div', { class: 'dialog-buttons', style: { justifyContent: 'flex-start' } },
      h('button', { id: 'validate-rule', onclick: validate }, 'Validate'),
      h('button', { id: 'test-rule', onclick: test }, 'Test on the last'), hours, h('span', { class: 'muted' }, 'hours'),
      h('button', { class: 'primary', id: 'save-rule', onclick: save, disabled: !!(rule && rule.source && rule.source.file) }, 'Save')),
    result, isNew ? null : [h('h2', {}, 'History'), history]));
  if (!isNew) {
    try {
      const alerts = (await api(`${RULES}/${encodeURIComponent(id)}/history?size=50`)).alerts || [];
      history.append(alerts.length ? h('table', { class: 'data-table' },
        h('thead', {}, h('tr', {}, ['Time', 'Status', 'Subject', 'Matches', 'Error'].map(t => h('th', {}, t)))),
        h('tbody', {}, alerts.map(a => h('tr', {}, h('td', {}, fmtTime(Date.parse(a.created))), h('td', {}, a.status),
          h('td', {}, a.subject || ''), h('td', { class: 'num' }, fmtNumber(a.num_matches || 0)), h('td', { class: 'error-message' }, a.last_error || '')))))
        : h('p', { class: 'muted' }, 'No alerts from this rule yet.'));
    } catch (e) {
      history.append(errorBox('History unavailable', e));
    }
  }
  return {};
}
