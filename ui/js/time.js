// Time ranges: relative expressions ("now-15m", "now-1d/d") and absolute ISO times,
// evaluated against the server's clock (which tests pin with CAIRN_NOW).

let offsetMs = 0;

/** Aligns the UI's "now" with the server's. */
export function setServerNow(serverMs) {
  if (Number.isFinite(serverMs)) offsetMs = serverMs - Date.now();
}

export function now() {
  return Date.now() + offsetMs;
}

const UNIT_MS = { s: 1000, m: 60000, h: 3600000, d: 86400000, w: 604800000 };
const UNIT_NAMES = { s: 'second', m: 'minute', h: 'hour', d: 'day', w: 'week', M: 'month', y: 'year' };

function roundDown(d, unit) {
  const t = new Date(d);
  switch (unit) {
    case 'y': t.setMonth(0, 1); t.setHours(0, 0, 0, 0); break;
    case 'M': t.setDate(1); t.setHours(0, 0, 0, 0); break;
    case 'w': { t.setHours(0, 0, 0, 0); const day = (t.getDay() + 6) % 7; t.setDate(t.getDate() - day); break; }
    case 'd': t.setHours(0, 0, 0, 0); break;
    case 'h': t.setMinutes(0, 0, 0); break;
    case 'm': t.setSeconds(0, 0); break;
    case 's': t.setMilliseconds(0); break;
  }
  return t.getTime();
}

/**
 * Evaluates a time expression to epoch milliseconds. `roundUp` makes "/d" mean the end
 * of the day (for the upper bound). Returns NaN when the expression is not understood.
 */
export function parseTime(expr, roundUp = false) {
  if (expr === undefined || expr === null || expr === '') return NaN;
  const s = String(expr).trim();
  if (s.startsWith('now')) {
    let t = now();
    const re = /([+-])(\d+)([smhdwMy])|\/([smhdwMy])/gy;
    re.lastIndex = 3;
    let m;
    while (re.lastIndex < s.length && (m = re.exec(s))) {
      if (m[4]) {
        t = roundDown(t, m[4]);
        if (roundUp) t = parseTime(`now+1${m[4]}`, false) - now() + t - 1;
      } else {
        const n = Number(m[2]) * (m[1] === '-' ? -1 : 1);
        if (m[3] === 'M' || m[3] === 'y') {
          const d = new Date(t);
          if (m[3] === 'M') d.setMonth(d.getMonth() + n); else d.setFullYear(d.getFullYear() + n);
          t = d.getTime();
        } else {
          t += n * UNIT_MS[m[3]];
        }
      }
    }
    if (re.lastIndex !== 0 && re.lastIndex < s.length) return NaN;
    return m === null && s.length > 3 ? NaN : t;
  }
  if (/^\d{10,}$/.test(s)) return Number(s);
  const t = Date.parse(s);
  return Number.isNaN(t) ? NaN : t;
}

export const QUICK_RANGES = [
  ['now-15m', 'now', 'Last 15 minutes'],
  ['now-1h', 'now', 'Last 1 hour'],
  ['now-4h', 'now', 'Last 4 hours'],
  ['now-24h', 'now', 'Last 24 hours'],
  ['now-7d', 'now', 'Last 7 days'],
  ['now-30d', 'now', 'Last 30 days'],
  ['now-1y', 'now', 'Last 1 year'],
  ['now/d', 'now/d', 'Today'],
  ['now-1d/d', 'now-1d/d', 'Yesterday'],
];

/** "Last 15 minutes", or the absolute times. */
export function describeRange(from, to) {
  const q = QUICK_RANGES.find(([f, t]) => f === from && t === to);
  if (q) return q[2];
  const m = /^now-(\d+)([smhdwMy])$/.exec(from);
  if (m && to === 'now') return `Last ${m[1]} ${UNIT_NAMES[m[2]]}${m[1] === '1' ? '' : 's'}`;
  const f = (e, up) => (String(e).startsWith('now') ? e : fmtShort(parseTime(e, up)));
  return `${f(from, false)} → ${f(to, true)}`;
}

function fmtShort(ms) {
  if (!Number.isFinite(ms)) return 'invalid';
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Fixed intervals the histogram can use, smallest first. */
export const INTERVALS = [
  ['1s', 1e3], ['5s', 5e3], ['10s', 1e4], ['30s', 3e4], ['1m', 6e4], ['5m', 3e5], ['10m', 6e5],
  ['30m', 18e5], ['1h', 36e5], ['3h', 108e5], ['12h', 432e5], ['1d', 864e5], ['7d', 6048e5], ['30d', 2592e6],
];

/** The smallest interval giving at most ~`buckets` buckets over the range. */
export function autoInterval(fromMs, toMs, buckets = 80) {
  const span = Math.max(1, toMs - fromMs);
  for (const [name, ms] of INTERVALS) if (span / ms <= buckets) return [name, ms];
  return INTERVALS[INTERVALS.length - 1];
}

export function intervalMs(name) {
  const i = INTERVALS.find(([n]) => n === name);
  return i ? i[1] : NaN;
}

/** ISO string for absolute times in the URL. */
export function iso(ms) {
  return new Date(ms).toISOString();
}
