// Application shell: session, header, client-side routing and global keys.

import { api, setCsrfToken } from './api.js';
import { setServerNow } from './time.js';
import { h, clear, errorBox } from './util.js';

export const session = { authEnabled: false, username: null, roles: [] };

const ROUTES = [
  [/^\/ui\/?$/, () => import('./discover.js'), 'discover'],
  [/^\/ui\/discover\/?$/, () => import('./discover.js'), 'discover'],
  [/^\/ui\/context\/?$/, () => import('./context.js'), 'discover'],
  [/^\/ui\/dashboards\/?$/, () => import('./dashboards.js'), 'dashboards'],
  [/^\/ui\/dashboards\/([^/]+)$/, () => import('./dashboards.js'), 'dashboards'],
  [/^\/ui\/indices\/?$/, () => import('./indices.js'), 'indices'],
  [/^\/ui\/add-data\/?$/, () => import('./indices.js'), 'add-data'],
  [/^\/ui\/login\/?$/, () => import('./login.js'), 'login'],
  [/^\/ui\/alerts\/?$/, () => import('./alerts.js'), 'alerts'],
  [/^\/ui\/alerts\/([^/]+)$/, () => import('./alerts.js'), 'alerts'],
];

let currentView = null;

/** Navigates inside the app without reloading. */
export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  route();
}

/** Shows (or hides, with null) a banner above the page. */
export function banner(message, kind = 'error') {
  const el = document.getElementById('banner');
  if (!message) { el.hidden = true; return; }
  clear(el).append(h('span', {}, message), h('button', { class: 'link', onclick: () => banner(null) }, 'Dismiss'));
  el.className = `banner-${kind}`;
  el.hidden = false;
}

function renderHeader(active) {
  const top = document.getElementById('topbar');
  if (active === 'login') { top.hidden = true; return; }
  top.hidden = false;
  const links = [['discover', '/ui/discover', 'Discover'], ['dashboards', '/ui/dashboards', 'Dashboards'], ['alerts', '/ui/alerts', 'Alerts']];
  links.push(['indices', '/ui/indices', 'Indices'], ['add-data', '/ui/add-data', 'Add data']);
  clear(document.getElementById('nav')).append(...links.map(([key, href, label]) =>
    h('a', { href, 'data-link': true, class: key === active ? 'active' : '' }, label)));
  const user = clear(document.getElementById('user'));
  if (session.authEnabled) {
    user.append(h('span', { class: 'muted', title: session.roles.join(', ') }, session.username || ''),
      h('button', { class: 'link', id: 'logout', onclick: logout }, 'Log out'));
  }
}

async function logout() {
  try { await api('/_cairn/auth/logout', { method: 'POST' }); } catch { /* the session is gone either way */ }
  setCsrfToken(null);
  location.assign('/ui/login');
}

async function route() {
  const path = location.pathname;
  const found = ROUTES.find(([re]) => re.test(path));
  if (currentView && currentView.unmount) currentView.unmount();
  currentView = null;
  const view = document.getElementById('view');
  if (!found) {
    renderHeader('');
    clear(view).append(h('div', { class: 'page' }, h('h1', {}, 'Page not found'),
      h('p', {}, 'Nothing lives at ', h('code', {}, path), '. ', h('a', { href: '/ui/discover', 'data-link': true }, 'Go to Discover'))));
    return;
  }
  const [re, load, key] = found;
  renderHeader(key);
  try {
    const mod = await load();
    const params = re.exec(path).slice(1).map(decodeURIComponent);
    clear(view);
    currentView = await mod.mount(view, { params, key, search: new URLSearchParams(location.search) });
  } catch (e) {
    clear(view).append(errorBox('This page could not be shown', e));
  }
}

async function loadSession() {
  let s = null;
  try {
    s = await api('/_cairn/auth/session');
  } catch (e) {
    if (e.status === 401) return false;
    // Unreachable or an older server without sessions: carry on, the pages will say.
  }
  if (s) {
    session.authEnabled = !!s.auth_enabled;
    session.username = s.username || null;
    session.roles = s.roles || [];
    setCsrfToken(s.csrf_token);
  }
  // The server's clock ("now" moves with CAIRN_NOW, so relative ranges match its data).
  const serverNow = s && s.now ? Date.parse(s.now) : NaN;
  if (Number.isFinite(serverNow)) {
    setServerNow(serverNow);
  } else {
    try { setServerNow((await api('/_cairn/ui/config')).now); } catch { /* the browser clock will do */ }
  }
  return true;
}

export async function start() {
  document.addEventListener('click', (ev) => {
    const a = ev.target.closest('a[data-link]');
    if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
    ev.preventDefault();
    navigate(a.getAttribute('href'));
  });
  window.addEventListener('popstate', route);
  window.addEventListener('cairn:unauthorized', () => {
    if (location.pathname !== '/ui/login') {
      location.assign(`/ui/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    }
  });
  // "/" focuses the query bar, as in Kibana and most search pages.
  document.addEventListener('keydown', (ev) => {
    if (ev.key !== '/' || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    const q = document.querySelector('.query-input');
    if (q) { ev.preventDefault(); q.focus(); }
  });
  const ok = await loadSession();
  if (!ok && location.pathname !== '/ui/login') {
    history.replaceState(null, '', `/ui/login?next=${encodeURIComponent(location.pathname + location.search)}`);
  }
  await route();
}

/** After a successful login. */
export function applySession(s) {
  session.authEnabled = !!s.auth_enabled;
  session.username = s.username || null;
  session.roles = s.roles || [];
  setCsrfToken(s.csrf_token);
}

start();
