// The sign-in page, shown when the server answers 401 to the session request.

import { api } from './api.js';
import { applySession } from './app.js';
import { h } from './util.js';

export function mount(root, { search }) {
  const next = search.get('next');
  const target = next && next.startsWith('/ui/') && !next.startsWith('/ui/login') ? next : '/ui/discover';
  const error = h('p', { class: 'error-message', role: 'alert', hidden: true });
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Log in');
  const form = h('form', { class: 'login-form', onsubmit: async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      const s = await api('/_cairn/auth/login', { method: 'POST', body: { username: user.value, password: pass.value } });
      applySession(s);
      location.assign(target);
    } catch (e) {
      error.textContent = e.status === 401 ? 'Wrong username or password.' : e.message;
      error.hidden = false;
      pass.select();
    } finally {
      submit.disabled = false;
    }
  } },
  h('h1', {}, 'Cairn'),
  h('p', { class: 'muted' }, 'Sign in to search your logs.'),
  h('label', {}, 'Username', user),
  h('label', {}, 'Password', pass),
  error, submit);
  root.append(h('div', { class: 'login-page' }, form));
  return {};
}
