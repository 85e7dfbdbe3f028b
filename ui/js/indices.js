// Index management (list, time range, delete with confirmation) and the "add data"
// page with shipper configurations pointed at this server.

import { api, search } from './api.js';
import { banner } from './app.js';
import { h, clear, fmtNumber, fmtBytes, fmtTime, copyText, errorBox } from './util.js';

export async function mount(root, { key }) {
  if (key === 'add-data') return addData(root);
  return indices(root);
}

async function indices(root) {
  const body = h('div');
  root.append(h('div', { class: 'page' }, h('h1', {}, 'Indices'), body));
  const draw = async () => {
    let rows;
    try {
      rows = await api('/_cat/indices?format=json&bytes=b&s=index');
    } catch (e) {
      clear(body).append(errorBox('The indices could not be listed', e));
      return;
    }
    rows = rows.filter(r => !String(r.index).startsWith('.'));
    if (!rows.length) {
      clear(body).append(h('p', {}, 'No indices yet. ', h('a', { href: '/ui/add-data', 'data-link': true }, 'Add data')));
      return;
    }
    const tbody = h('tbody');
    clear(body).append(h('table', { class: 'data-table', id: 'indices-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Index'), h('th', { class: 'num' }, 'Documents'), h('th', { class: 'num' }, 'Size'),
        h('th', {}, 'Oldest @timestamp'), h('th', {}, 'Newest @timestamp'), h('th', {}, 'Retention'), h('th', {}))),
      tbody));
    for (const r of rows) {
      const range = h('td', { colspan: 2, class: 'muted' }, '…');
      tbody.append(h('tr', { dataset: { index: r.index } },
        h('td', {}, h('a', { href: `/ui/discover?dv=${encodeURIComponent(r.index)}`, 'data-link': true }, r.index)),
        h('td', { class: 'num' }, fmtNumber(Number(r['docs.count']) || 0)),
        h('td', { class: 'num' }, fmtBytes(r['store.size'])),
        range,
        h('td', {}, r.retention && r.retention !== '-' ? r.retention : '—'),
        h('td', {}, h('button', { class: 'link danger', title: `Delete ${r.index}`, onclick: () => remove(r.index) }, 'Delete'))));
      // The oldest and newest line: two one-hit searches sorted by time (exact, and
      // cheap since partitions are ordered by time).
      const edge = (order) => search(r.index, { size: 1, _source: false, track_total_hits: false, sort: [{ '@timestamp': { order, unmapped_type: 'date' } }] })
        .then(res => { const hit = res.hits.hits[0]; return hit && hit.sort ? hit.sort[0] : null; });
      Promise.all([edge('asc'), edge('desc')])
        .then(([a, b]) => {
          const cell = (v) => (typeof v === 'number' ? fmtTime(v) : '—');
          range.replaceWith(h('td', {}, cell(a)), h('td', {}, cell(b)));
        })
        .catch(() => { range.textContent = '—'; });
    }
  };
  const remove = async (index) => {
    const confirmIn = h('input', { id: 'confirm-index', placeholder: index, autocomplete: 'off' });
    const dlg = h('dialog', { class: 'form-dialog' });
    const go = h('button', { class: 'primary', id: 'confirm-delete', disabled: true }, 'Delete index');
    confirmIn.addEventListener('input', () => { go.disabled = confirmIn.value !== index; });
    const done = () => { dlg.close(); dlg.remove(); };
    go.addEventListener('click', async () => {
      done();
      try {
        await api(`/${encodeURIComponent(index)}`, { method: 'DELETE' });
        banner(`Deleted ${index}.`, 'ok');
      } catch (e) {
        banner(`${index} could not be deleted: ${e.message}`);
      }
      draw();
    });
    dlg.append(h('h2', {}, `Delete ${index}?`),
      h('p', {}, 'All its documents are removed for good. Type the index name to confirm.'),
      confirmIn, h('div', { class: 'dialog-buttons' }, h('button', { onclick: done }, 'Cancel'), go));
    document.body.append(dlg);
    dlg.showModal();
    confirmIn.focus();
  };
  await draw();
  return {};
}

function addData(root) {
  const url = location.origin;
  const host = location.hostname;
  const port = location.port || (location.protocol === 'https:' ? '443' : '80');
  const scheme = location.protocol.replace(':', '');
  const configs = [
    ['cairn agent', 'agent.yaml — run with: cairn agent --config agent.yaml',
      `data_dir: /var/lib/cairn-agent
sources:
  app:
    type: file
    include: ["/var/log/app/*.log"]
    read_from: beginning
transforms:
  parsed:
    type: parse
    inputs: [app]
    format: auto
sinks:
  cairn:
    type: elasticsearch
    inputs: [parsed]
    endpoints: ["${url}"]
    index: logs-app
    # auth: { api_key: "<key from cairn>" }
`],
    ['Fluentd', 'fluent.conf (fluent-plugin-elasticsearch)',
      `<match app.**>
  @type elasticsearch
  host ${host}
  port ${port}
  scheme ${scheme}
  logstash_format true
  logstash_prefix logs-app
  include_timestamp true
  suppress_type_name true
  # api_key "<key from cairn>"
  <buffer>
    @type file
    path /var/log/fluentd/buffer/cairn
    flush_interval 5s
  </buffer>
</match>
`],
    ['Fluent Bit', 'fluent-bit.conf (es output)',
      `[OUTPUT]
    Name                es
    Match               *
    Host                ${host}
    Port                ${port}
    Index               logs-app
    Suppress_Type_Name  On
    Time_Key            @timestamp
    Replace_Dots        Off
    ${scheme === 'https' ? 'tls                 On' : '# tls On'}
    # HTTP_User / HTTP_Passwd for a Cairn user
`],
    ['Filebeat', 'filebeat.yml',
      `filebeat.inputs:
  - type: filestream
    id: app-logs
    paths: ["/var/log/app/*.log"]
output.elasticsearch:
  hosts: ["${url}"]
  index: "logs-app"
  # api_key: "id:key"
setup.template.enabled: false
setup.ilm.enabled: false
`],
    ['Vector', 'vector.yaml',
      `sources:
  app:
    type: file
    include: ["/var/log/app/*.log"]
sinks:
  cairn:
    type: elasticsearch
    inputs: [app]
    endpoints: ["${url}"]
    api_version: v8
    bulk:
      index: logs-app
    # auth: { strategy: basic, user: "...", password: "..." }
`],
  ];
  const block = h('div', { class: 'config-block' });
  const tabs = h('div', { class: 'tabs-row' });
  const show = (i) => {
    const [, file, text] = configs[i];
    const copy = h('button', { class: 'copy', onclick: () => copyText(text, copy) }, 'Copy');
    clear(block).append(h('p', { class: 'muted' }, file), h('pre', {}, text), copy);
    for (const [j, b] of [...tabs.children].entries()) b.classList.toggle('active', j === i);
  };
  tabs.append(...configs.map(([name], i) => h('button', { onclick: () => show(i) }, name)));
  root.append(h('div', { class: 'page' },
    h('h1', {}, 'Add data'),
    h('p', {}, 'Cairn speaks the Elasticsearch API at ', h('code', {}, url),
      ': point any shipper at it. Documents need an ', h('code', {}, '@timestamp'), '; indices are created on first write.'),
    h('p', {}, 'One-off files and AWS access logs (ALB, NLB, CloudFront, S3, VPC flow, CloudTrail): ',
      h('code', {}, `cairn import --server ${url} --format aws-alb ./AWSLogs/`), '.'),
    tabs, block));
  show(0);
  return {};
}
