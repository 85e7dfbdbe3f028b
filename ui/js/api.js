// Every call to the server goes through `api()`: same-origin cookies, the CSRF header
// on every request, a timeout, and errors turned into readable messages.

let csrfToken = null;

export function setCsrfToken(token) {
  csrfToken = token || null;
}

/** Milliseconds before a request is abandoned (tests shorten it through window.__cairnTimeoutMs). */
function timeoutMs() {
  return Number(window.__cairnTimeoutMs) || 30000;
}

export class ApiError extends Error {
  constructor(message, { status = 0, type = '', details = '', offset = null } = {}) {
    super(message);
    this.status = status;
    this.type = type;
    this.details = details;
    // 0-based character offset of a query syntax error, when the server gave one.
    this.offset = offset;
  }
}

/** The caret line of a KQL/Lucene syntax error ("-----^") gives the offset. */
function syntaxOffset(reason) {
  const lines = String(reason || '').split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /^(-*)\^$/.exec(lines[i]);
    if (m) return m[1].length;
  }
  return null;
}

function deepestCause(err) {
  let e = err;
  while (e && e.caused_by) e = e.caused_by;
  return e;
}

/** Turns a failed response into an ApiError with a sentence a person can act on. */
async function errorOf(resp) {
  const text = await resp.text().catch(() => '');
  let body = null;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  const err = body && body.error;
  if (err && typeof err === 'object') {
    const root = (err.root_cause && err.root_cause[0]) || err;
    const cause = deepestCause(err);
    const reason = root.reason || err.reason || cause.reason || err.type;
    const offset = syntaxOffset(reason) ?? syntaxOffset(cause.reason);
    const first = String(reason).split('\n')[0];
    return new ApiError(first, {
      status: resp.status, type: root.type || err.type || '', details: reason, offset,
    });
  }
  if (typeof err === 'string') return new ApiError(err, { status: resp.status });
  const snippet = text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200);
  const what = resp.status >= 500 ? 'The server failed' : 'The request was refused';
  return new ApiError(`${what} (HTTP ${resp.status}${resp.statusText ? ' ' + resp.statusText : ''})${snippet ? ': ' + snippet : '.'}`,
    { status: resp.status });
}

/**
 * Calls the server. `body` (an object) is sent as JSON. Resolves to the parsed JSON
 * answer (or text when not JSON); rejects with an ApiError.
 */
export async function api(path, { method = 'GET', body, signal, raw = false } = {}) {
  // X-Cairn-UI: the server then answers 401 without a Basic challenge, so the browser
  // does not pop its own sign-in dialog over the login page.
  const headers = { Accept: 'application/json', 'X-Cairn-UI': '1' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (csrfToken) headers['X-Cairn-CSRF'] = csrfToken;
  const ctl = new AbortController();
  const ms = timeoutMs();
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; ctl.abort(); }, ms);
  if (signal) {
    if (signal.aborted) ctl.abort();
    else signal.addEventListener('abort', () => ctl.abort(), { once: true });
  }
  let resp;
  try {
    resp = await fetch(path, {
      method, headers, credentials: 'same-origin', signal: ctl.signal,
      body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
    });
  } catch (e) {
    clearTimeout(timer);
    if (timedOut) {
      throw new ApiError(`The server did not answer within ${Math.round(ms / 100) / 10} s. It may be overloaded; try a shorter time range or retry.`, { type: 'timeout' });
    }
    if (ctl.signal.aborted) throw new ApiError('cancelled', { type: 'aborted' });
    throw new ApiError('Cannot reach the Cairn server. Check that it is running and your network connection.', { type: 'network' });
  }
  clearTimeout(timer);
  if (resp.status === 401 && !path.startsWith('/_cairn/auth/')) {
    window.dispatchEvent(new CustomEvent('cairn:unauthorized'));
  }
  if (!resp.ok) throw await errorOf(resp);
  if (raw) return resp;
  const text = await resp.text();
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    if ((resp.headers.get('content-type') || '').includes('json')) {
      throw new ApiError('The server sent an answer that is not valid JSON.', { status: resp.status });
    }
    return text;
  }
}

/** `POST /{index}/_search` */
export function search(index, body, opts = {}) {
  return api(`/${encodeURIComponent(index)}/_search`, { method: 'POST', body, ...opts });
}

/** Field capabilities of an index pattern: [{name, type, aggregatable, searchable}]. */
export async function fieldCaps(index) {
  const r = await api(`/${encodeURIComponent(index)}/_field_caps?fields=*&allow_no_indices=true`);
  const out = [];
  for (const [name, types] of Object.entries(r.fields || {})) {
    if (name.startsWith('_')) continue;
    const kinds = Object.keys(types).filter(t => t !== 'unmapped');
    if (!kinds.length || kinds[0] === 'object' || kinds[0] === 'nested') continue;
    const caps = types[kinds[0]];
    out.push({
      name,
      type: kinds.length > 1 ? 'conflict' : kinds[0],
      aggregatable: !!caps.aggregatable && kinds.length === 1,
      searchable: !!caps.searchable,
    });
  }
  out.sort((a, b) => a.name.localeCompare(b.name));
  return out;
}

/** Saved objects: type is 'search', 'dashboard' or 'data-view'. */
export const saved = {
  list: (type) => api(`/_cairn/saved_objects/${type}`).then(r => r.saved_objects),
  get: (type, id) => api(`/_cairn/saved_objects/${type}/${encodeURIComponent(id)}`),
  create: (type, attributes) => api(`/_cairn/saved_objects/${type}`, { method: 'POST', body: { attributes } }),
  put: (type, id, attributes) => api(`/_cairn/saved_objects/${type}/${encodeURIComponent(id)}`, { method: 'PUT', body: { attributes } }),
  remove: (type, id) => api(`/_cairn/saved_objects/${type}/${encodeURIComponent(id)}`, { method: 'DELETE' }),
  importAll: (exported) => api('/_cairn/saved_objects/_import', { method: 'POST', body: exported }),
};
