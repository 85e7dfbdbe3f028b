"""A small reference evaluator of the Elasticsearch 8 query DSL and aggregations.

It works over the documents of `samples.py` (flat dicts, `@timestamp` in epoch millis) and
imports nothing from Cairn: the expected results of the compatibility suite come from here,
written from the Elasticsearch reference, not from Cairn's parsers or engine.

Scope and deliberate simplifications (the suite only uses queries inside this scope):
- Text analysis of `text` fields: split on every non-alphanumeric character, lowercase
  (Cairn's documented analyzer). Queries over text use plain words, for which
  Elasticsearch's standard analyzer gives the same tokens on this data.
- `keyword` fields are not analyzed; `long` fields compare numerically; `date` fields are
  epoch millis with ES date math (`now-1d/d`, `||`, rounding up for `gt`/`lte`).
- query_string / simple_query_string / kql are *not* parsed here: each test case carries a
  hand-written DSL equivalent that this module evaluates instead.
- Scores are not computed: callers compare counts, id sets and sort orders.
"""

from __future__ import annotations

import calendar
import math
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from samples import FIELD_TYPES, NOW_MS

# ------------------------------------------------------------------------------ analysis

_TOKEN_RE = re.compile(r"[^\W_]+")


def analyze(text: str) -> list[str]:
    return [t.lower() for t in _TOKEN_RE.findall(text)]


_TOKEN_CACHE: dict[tuple, list[str]] = {}


def tokens(doc, field: str) -> list[str]:
    key = (id(doc), field, _ANALYZER)
    t = _TOKEN_CACHE.get(key)
    if t is None:
        v = doc.flat.get(field)
        t = _analyze_doc(v) if isinstance(v, str) else []
        _TOKEN_CACHE[key] = t
    return t


def ftype(field: str) -> str:
    if field in ("_id", "_index"):
        return "keyword"
    return FIELD_TYPES.get(field, "unmapped")


def value(doc, field: str):
    if field == "_id":
        return doc.id
    if field == "_index":
        return doc.index
    return doc.flat.get(field)


# ------------------------------------------------------------------------------ dates

_UNIT_RE = re.compile(r"([+-])(\d+)([yMwdhHms])|/([yMwdhHms])")


def _tz(tz: str | None):
    if tz is None:
        return timezone.utc
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", tz)
    if m:
        sign = 1 if m[1] == "+" else -1
        return timezone(sign * timedelta(hours=int(m[2]), minutes=int(m[3])))
    if tz in ("Z", "UTC"):
        return timezone.utc
    return ZoneInfo(tz)


def _parse_date_str(s: str, tz) -> datetime:
    """strict_date_optional_time (the default date format) and epoch millis strings."""
    if re.fullmatch(r"-?\d{5,}", s):  # epoch millis
        return datetime.fromtimestamp(int(s) / 1000, timezone.utc)
    s2 = s.replace("Z", "+00:00")
    if re.fullmatch(r"\d{4}", s2):
        s2 += "-01-01"
    elif re.fullmatch(r"\d{4}-\d{2}", s2):
        s2 += "-01"
    dt = datetime.fromisoformat(s2)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt


def _round(dt: datetime, unit: str, up: bool) -> datetime:
    """Rounds down to the start of `unit`; if `up`, to the last millisecond of it."""
    if unit == "y":
        lo = dt.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "M":
        lo = dt.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "w":
        lo = (dt - timedelta(days=dt.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    elif unit == "d":
        lo = dt.replace(hour=0, minute=0, second=0, microsecond=0)
    elif unit in "hH":
        lo = dt.replace(minute=0, second=0, microsecond=0)
    elif unit == "m":
        lo = dt.replace(second=0, microsecond=0)
    elif unit == "s":
        lo = dt.replace(microsecond=0)
    else:
        raise ValueError(unit)
    if not up:
        return lo
    return _add(lo, 1, unit) - timedelta(milliseconds=1)


def _add(dt: datetime, n: int, unit: str) -> datetime:
    if unit == "y":
        return dt.replace(year=dt.year + n)
    if unit == "M":
        m = dt.month - 1 + n
        y = dt.year + m // 12
        m = m % 12 + 1
        return dt.replace(year=y, month=m, day=min(dt.day, calendar.monthrange(y, m)[1]))
    delta = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1), "H": timedelta(hours=1),
             "m": timedelta(minutes=1), "s": timedelta(seconds=1)}[unit]
    return dt + n * delta


def date_math(v, up: bool = False, tz: str | None = None) -> int:
    """Epoch millis of an ES date value: millis, date string, `now...` or `date||...`."""
    if isinstance(v, (int, float)):
        return int(v)
    z = _tz(tz)
    if v.startswith("now"):
        base = datetime.fromtimestamp(NOW_MS / 1000, timezone.utc).astimezone(z)
        expr = v[3:]
    elif "||" in v:
        d, expr = v.split("||", 1)
        base = _parse_date_str(d, z).astimezone(z)
    else:
        dt = _parse_date_str(v, z)
        if up and dt.microsecond == 0:
            # round-up parsing fills the missing milliseconds with 999 (lte / gt)
            return int(dt.timestamp() * 1000) + 999
        return int(dt.timestamp() * 1000)
    pos = 0
    while pos < len(expr):
        m = _UNIT_RE.match(expr, pos)
        if not m:
            raise ValueError(f"bad date math {v!r}")
        if m[4]:
            base = _round(base, m[4], up)
        else:
            base = _add(base, int(m[2]) * (1 if m[1] == "+" else -1), m[3])
        pos = m.end()
    return int(base.timestamp() * 1000)


# ------------------------------------------------------------------------------ helpers

def _as_number(v):
    if isinstance(v, bool):
        raise ValueError(v)
    if isinstance(v, (int, float)):
        return v
    return float(v) if "." in str(v) else int(v)


def _field_and_params(body: dict, value_key: str = "value"):
    """`{field: value}` or `{field: {value_key: value, ...options}}`."""
    assert len(body) == 1, body
    (field, spec), = body.items()
    if isinstance(spec, dict):
        return field, dict(spec)
    return field, {value_key: spec}


def wildcard_to_re(pattern: str) -> re.Pattern:
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.S)


def lucene_regexp_to_re(pattern: str) -> re.Pattern:
    """Lucene regexp (the subset the suite uses: . * + ? {n,m} [] () | and \\ escapes) is
    always anchored: it must match the whole term."""
    for ch in "&~<>@#":
        assert ch not in pattern.replace("\\" + ch, ""), f"operator {ch!r} not supported by the reference"
    return re.compile(pattern, re.S)


def damerau(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (Lucene's fuzzy with transpositions)."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2 = None
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def auto_fuzziness(term: str, fuzziness) -> int:
    if fuzziness in (None, "AUTO", "auto"):
        n = len(term)
        return 0 if n <= 2 else 1 if n <= 5 else 2
    return int(fuzziness)


def min_should_match(n_optional: int, spec) -> int:
    """Elasticsearch's Queries.calculateMinShouldMatch (integers and percentages)."""
    if spec is None:
        return 0
    s = str(spec).strip()
    if s.endswith("%"):
        calc = int(n_optional * int(s[:-1]) / 100)  # Java int arithmetic truncates to 0
        result = n_optional + calc if calc < 0 else calc
    else:
        calc = int(s)
        result = n_optional + calc if calc < 0 else calc
    return min(n_optional, max(0, result))


def _listify(x):
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


# ------------------------------------------------------------------------------ queries

class Unsupported(Exception):
    pass


def _text_or_keyword_terms(doc, field: str) -> list[str]:
    """Indexed terms of a string field: tokens for text, the whole value for keyword."""
    t = ftype(field)
    if t == "text":
        return tokens(doc, field)
    v = value(doc, field)
    if v is None:
        return []
    return [str(v)]


def _term_eq(doc, field: str, v, case_insensitive=False) -> bool:
    t = ftype(field)
    dv = value(doc, field)
    if dv is None and t != "text":
        return False
    if t == "long":
        try:
            return dv == _as_number(v)
        except ValueError:
            return False
    if t == "date":
        lo = date_math(v, False)
        hi = date_math(v, True)
        return lo <= dv <= hi
    if t == "text":
        toks = tokens(doc, field)
        s = str(v)
        return (s.lower() in toks) if case_insensitive else (s in toks)
    if case_insensitive:
        return str(dv).lower() == str(v).lower()
    return str(dv) == str(v)


def _analyze_for(field: str, text) -> list[str]:
    t = ftype(field)
    if t == "text":
        return _analyze_doc(str(text))
    return [text]  # keyword / numeric: the value as one term


def _match_field(doc, field: str, query_text, operator="or", msm=None, fuzziness=None, zero_terms="none") -> bool:
    field = field.split("^", 1)[0]  # "message^2": a boost does not change what matches
    terms = _analyze_for(field, query_text)
    if not terms:
        return zero_terms == "all"  # zero_terms_query (default none)
    if ftype(field) != "text":
        return _term_eq(doc, field, terms[0])
    toks = tokens(doc, field)
    if fuzziness is not None:
        hits = [any(damerau(q, tk, auto_fuzziness(q, fuzziness)) <= auto_fuzziness(q, fuzziness) for tk in toks) for q in terms]
    else:
        s = set(toks)
        hits = [q in s for q in terms]
    if str(operator).lower() == "and":
        return all(hits)
    need = max(1, min_should_match(len(terms), msm)) if msm is not None else 1
    return sum(hits) >= need


def _phrase_field(doc, field: str, text, slop: int = 0) -> bool:
    field = field.split("^", 1)[0]
    terms = _analyze_for(field, text)
    if not terms:
        return False
    if ftype(field) != "text":
        return _term_eq(doc, field, terms[0])
    toks = tokens(doc, field)
    positions = [[i for i, tk in enumerate(toks) if tk == q] for q in terms]
    if any(not p for p in positions):
        return False
    if slop == 0:
        first = positions[0]
        return any(all(p + k in set(positions[k]) for k in range(1, len(terms))) for p in first)
    # sloppy phrase (distinct positions): max-min of (pos_i - i) <= slop
    def rec(k, used, offsets):
        if k == len(terms):
            return max(offsets) - min(offsets) <= slop
        for p in positions[k]:
            if p in used:
                continue
            o = offsets + [p - k]
            if max(o) - min(o) > slop:
                continue
            if rec(k + 1, used | {p}, o):
                return True
        return False
    return rec(0, frozenset(), [])


def _range(doc, field: str, params: dict) -> bool:
    t = ftype(field)
    dv = value(doc, field)
    if dv is None:
        return False
    tz = params.get("time_zone")
    fmt = params.get("format")
    bounds = {}
    for op in ("gt", "gte", "lt", "lte"):
        if op in params and params[op] is not None:
            bounds[op] = params[op]
    # legacy from/to/include_lower/include_upper
    if "from" in params and params["from"] is not None:
        bounds["gte" if params.get("include_lower", True) else "gt"] = params["from"]
    if "to" in params and params["to"] is not None:
        bounds["lte" if params.get("include_upper", True) else "lt"] = params["to"]

    def conv(op, v):
        if t == "date":
            if fmt is not None:
                v = _parse_with_format(v, fmt, tz)
            return date_math(v, up=op in ("gt", "lte"), tz=tz)
        if t == "long":
            return _as_number(v)
        return str(v)

    x = dv if t in ("date", "long") else str(dv)
    for op, v in bounds.items():
        b = conv(op, v)
        if op == "gt" and not x > b:
            return False
        if op == "gte" and not x >= b:
            return False
        if op == "lt" and not x < b:
            return False
        if op == "lte" and not x <= b:
            return False
    return True


def _parse_with_format(v, fmt: str, tz):
    if isinstance(v, (int, float)) or fmt in ("epoch_millis",):
        return int(v)
    if fmt == "epoch_second":
        return int(v) * 1000
    java_to_py = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
    pyfmt = fmt
    for j, p in java_to_py.items():
        pyfmt = pyfmt.replace(j, p)
    dt = datetime.strptime(v, pyfmt).replace(tzinfo=_tz(tz))
    return int(dt.timestamp() * 1000)


def matches(q: dict, doc) -> bool:
    assert isinstance(q, dict) and len(q) == 1, f"one query kind per object: {q}"
    (kind, body), = q.items()
    if kind == "match_all":
        return True
    if kind == "match_none":
        return False
    if kind == "term":
        field, p = _field_and_params(body)
        return _term_eq(doc, field, p["value"], p.get("case_insensitive", False))
    if kind == "terms":
        body = {k: v for k, v in body.items() if k != "boost"}
        (field, vals), = body.items()
        return any(_term_eq(doc, field, v) for v in vals)
    if kind == "range":
        (field, p), = body.items()
        return _range(doc, field, p)
    if kind == "exists":
        f = body["field"]
        if ftype(f) == "unmapped":
            return False
        return value(doc, f) is not None
    if kind == "ids":
        return doc.id in set(body["values"])
    if kind == "prefix":
        field, p = _field_and_params(body)
        pre = p["value"]
        ci = p.get("case_insensitive", False)
        return any((t.lower().startswith(pre.lower()) if ci else t.startswith(pre)) for t in _text_or_keyword_terms(doc, field))
    if kind == "wildcard":
        field, p = _field_and_params(body)
        pat = p.get("value", p.get("wildcard"))
        rx = wildcard_to_re(pat.lower() if p.get("case_insensitive") else pat)
        return any(rx.fullmatch(t.lower() if p.get("case_insensitive") else t) for t in _text_or_keyword_terms(doc, field))
    if kind == "regexp":
        field, p = _field_and_params(body)
        rx = lucene_regexp_to_re(p["value"])
        ci = p.get("case_insensitive", False)
        if ci:
            rx = re.compile(rx.pattern, re.S | re.I)
        return any(rx.fullmatch(t) for t in _text_or_keyword_terms(doc, field))
    if kind == "fuzzy":
        field, p = _field_and_params(body)
        v = str(p["value"])
        k = auto_fuzziness(v, p.get("fuzziness", "AUTO"))
        pl = int(p.get("prefix_length", 0))
        trans = p.get("transpositions", True)
        assert trans, "reference implements transpositions=true only"
        return any(t[:pl] == v[:pl] and damerau(v, t, k) <= k for t in _text_or_keyword_terms(doc, field))
    if kind == "match":
        field, p = _field_and_params(body, "query")
        return _match_field(doc, field, p["query"], p.get("operator", "or"), p.get("minimum_should_match"), p.get("fuzziness"),
                            p.get("zero_terms_query", "none"))
    if kind == "match_phrase":
        field, p = _field_and_params(body, "query")
        return _phrase_field(doc, field, p["query"], int(p.get("slop", 0)))
    if kind == "multi_match":
        fields = body["fields"]
        typ = body.get("type", "best_fields")
        qtext = body["query"]
        op = body.get("operator", "or")
        if typ in ("best_fields", "most_fields"):
            return any(_match_field(doc, f, qtext, op, body.get("minimum_should_match")) for f in fields)
        if typ == "phrase":
            return any(_phrase_field(doc, f, qtext, int(body.get("slop", 0))) for f in fields)
        if typ == "cross_fields":
            # every term (analysed per field) must be found in at least one field when operator=and
            terms = _analyze_doc(qtext)
            per_term = [any(_match_field(doc, f, t) for f in fields) for t in terms]
            return all(per_term) if op.lower() == "and" else any(per_term)
        raise Unsupported(f"multi_match type {typ}")
    if kind == "bool":
        must = _listify(body.get("must"))
        flt = _listify(body.get("filter"))
        should = _listify(body.get("should"))
        must_not = _listify(body.get("must_not"))
        if not all(matches(c, doc) for c in must + flt):
            return False
        if any(matches(c, doc) for c in must_not):
            return False
        if should:
            msm = body.get("minimum_should_match")
            if msm is None:
                need = 0 if (must or flt) else 1
            else:
                need = min_should_match(len(should), msm)
            if need > 0 and sum(1 for c in should if matches(c, doc)) < need:
                return False
        return True
    if kind == "constant_score":
        return matches(body["filter"], doc)
    raise Unsupported(f"query kind {kind!r} (give the case a hand-written DSL equivalent)")


def search(q: dict | None, docs, indices: set[str] | None = None) -> list:
    q = q or {"match_all": {}}
    return [d for d in docs if (indices is None or d.index in indices) and matches(q, d)]


# ------------------------------------------------------------------------------ aggregations

def _values(docs, field):
    out = []
    for d in docs:
        v = value(d, field)
        if v is not None:
            out.append(v)
    return out


def _fmt_double(x) -> str:
    return repr(float(x))


def iso_millis(ms: int, tz: str | None = None) -> str:
    """strict_date_optional_time rendering, as ES uses for key_as_string."""
    dt = datetime.fromtimestamp(ms / 1000, timezone.utc).astimezone(_tz(tz))
    s = dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}"
    off = dt.utcoffset()
    if off == timedelta(0):
        return s + "Z"
    total = int(off.total_seconds() // 60)
    sign = "+" if total >= 0 else "-"
    total = abs(total)
    return s + f"{sign}{total // 60:02d}:{total % 60:02d}"


CAL_UNITS = {"minute": "m", "1m": "m", "hour": "h", "1h": "h", "day": "d", "1d": "d", "week": "w", "1w": "w",
             "month": "M", "1M": "M", "year": "y", "1y": "y"}


def parse_fixed(s: str) -> int:
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", s)
    n, u = int(m[1]), m[2]
    return n * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[u]


def date_bucket_key(ms: int, spec: dict) -> int:
    tz = spec.get("time_zone")
    z = _tz(tz)
    if "calendar_interval" in spec:
        unit = CAL_UNITS[spec["calendar_interval"]]
        dt = datetime.fromtimestamp(ms / 1000, timezone.utc).astimezone(z)
        return int(_round(dt, unit, False).timestamp() * 1000)
    iv = parse_fixed(spec["fixed_interval"])
    off = 0
    if tz is not None:
        off = int(datetime.fromtimestamp(ms / 1000, timezone.utc).astimezone(z).utcoffset().total_seconds() * 1000)
    return (ms + off) // iv * iv - off


def _next_date_key(key: int, spec: dict) -> int:
    if "calendar_interval" in spec:
        unit = CAL_UNITS[spec["calendar_interval"]]
        dt = datetime.fromtimestamp(key / 1000, timezone.utc).astimezone(_tz(spec.get("time_zone")))
        return int(_add(dt, 1, unit).timestamp() * 1000)
    return key + parse_fixed(spec["fixed_interval"])


def agg_date_histogram(docs, spec: dict) -> list[dict]:
    counts: dict[int, int] = {}
    for ms in _values(docs, spec["field"]):
        k = date_bucket_key(ms, spec)
        counts[k] = counts.get(k, 0) + 1
    if not counts:
        return []
    mdc = spec.get("min_doc_count", 0)
    keys = []
    k = min(counts)
    last = max(counts)
    while k <= last:
        keys.append(k)
        k = _next_date_key(k, spec)
    return [{"key_as_string": iso_millis(k, spec.get("time_zone")), "key": k, "doc_count": counts.get(k, 0)}
            for k in keys if counts.get(k, 0) >= mdc]


def agg_histogram(docs, spec: dict) -> list[dict]:
    iv = spec["interval"]
    counts: dict[float, int] = {}
    for v in _values(docs, spec["field"]):
        k = math.floor(v / iv) * iv
        counts[k] = counts.get(k, 0) + 1
    if not counts:
        return []
    mdc = spec.get("min_doc_count", 0)
    out = []
    k = min(counts)
    while k <= max(counts):
        if counts.get(k, 0) >= mdc:
            out.append({"key": float(k), "doc_count": counts.get(k, 0)})
        k += iv
    return out


def agg_terms(docs, spec: dict) -> dict:
    field = spec["field"]
    counts: dict = {}
    for d in docs:
        v = value(d, field)
        if v is None:
            if "missing" in spec:
                v = spec["missing"]
            else:
                continue
        counts[v] = counts.get(v, 0) + 1
    mdc = spec.get("min_doc_count", 1)
    items = [(k, c) for k, c in counts.items() if c >= mdc]
    order = spec.get("order", {"_count": "desc"})
    (okey, odir), = order.items()
    if okey == "_count":
        items.sort(key=lambda kc: kc[0])  # tie-break: key ascending
        items.sort(key=lambda kc: kc[1], reverse=(odir == "desc"))
    elif okey == "_key":
        items.sort(key=lambda kc: kc[0], reverse=(odir == "desc"))
    else:
        raise Unsupported(order)
    size = spec.get("size", 10)
    top = items[:size]
    return {
        "doc_count_error_upper_bound": 0,
        "sum_other_doc_count": sum(c for _, c in items[size:]),
        "buckets": [{"key": k, "doc_count": c} for k, c in top],
    }


def agg_range(docs, spec: dict) -> list[dict]:
    vals = _values(docs, spec["field"])
    out = []
    for r in spec["ranges"]:
        lo, hi = r.get("from"), r.get("to")
        key = r.get("key") or f"{'*' if lo is None else _fmt_double(lo)}-{'*' if hi is None else _fmt_double(hi)}"
        n = sum(1 for v in vals if (lo is None or v >= lo) and (hi is None or v < hi))
        b = {"key": key, "doc_count": n}
        if lo is not None:
            b["from"] = float(lo)
        if hi is not None:
            b["to"] = float(hi)
        out.append(b)
    return out


def agg_stats(docs, field: str) -> dict:
    vals = _values(docs, field)
    if not vals:
        return {"count": 0, "min": None, "max": None, "avg": None, "sum": 0.0}
    return {"count": len(vals), "min": float(min(vals)), "max": float(max(vals)),
            "avg": sum(vals) / len(vals), "sum": float(sum(vals))}


def exact_percentile_bounds(vals: list, p: float, slack: float) -> tuple[float, float]:
    """The range of values between ranks (p - slack)% and (p + slack)%: an approximate
    percentile (t-digest) must fall inside it."""
    s = sorted(vals)
    n = len(s)
    lo_rank = max(0, math.floor((p - slack) / 100 * (n - 1)))
    hi_rank = min(n - 1, math.ceil((p + slack) / 100 * (n - 1)))
    return float(s[lo_rank]), float(s[hi_rank])


def composite_all(docs, sources: list[dict]) -> list[dict]:
    """All composite buckets (terms sources, ascending, docs missing a value skipped)."""
    counts: dict = {}
    names = []
    for src in sources:
        (name, spec), = src.items()
        assert list(spec) == ["terms"], spec
        names.append((name, spec["terms"]["field"]))
    for d in docs:
        vals = tuple(value(d, f) for _, f in names)
        if any(v is None for v in vals):
            continue
        counts[vals] = counts.get(vals, 0) + 1
    return [{"key": {n: v for (n, _), v in zip(names, k)}, "doc_count": counts[k]} for k in sorted(counts)]


# ------------------------------------------------------------------------------ analyzer check

_STD_RUN = re.compile(r"[^\W_]+|_+")


def standard_tokens(text: str) -> list[str]:
    """An approximation of Elasticsearch's standard analyzer (Unicode UAX#29 word breaks) for
    ASCII text: runs of letters/digits/underscores, joined across one `.` or `'` between two
    letters or two digits, `:` between two letters, `,` between two digits; lowercased.

    Used only to check that a case's expectation does not depend on the analyzer difference
    (Cairn splits on every non-alphanumeric character, ES keeps `search.png` or `1.1` whole)."""
    runs = [(m.start(), m.end()) for m in re.finditer(r"[A-Za-z0-9_]+", text)]
    out, cur = [], None
    for a, b in runs:
        if cur is not None and a - cur[1] == 1:
            sep, l, r = text[cur[1]], text[cur[1] - 1], text[a]
            join = (
                (sep in ".'" and ((l.isalpha() and r.isalpha()) or (l.isdigit() and r.isdigit())))
                or (sep == ":" and l.isalpha() and r.isalpha())
                or (sep == "," and l.isdigit() and r.isdigit())
            )
            if join:
                cur = (cur[0], b)
                continue
        if cur is not None:
            out.append(text[cur[0]:cur[1]].lower())
        cur = (a, b)
    if cur is not None:
        out.append(text[cur[0]:cur[1]].lower())
    return out


_ANALYZER = "simple"


def set_analyzer(name: str) -> None:
    """"simple" (Cairn's, the default) or "standard" (ES's, approximated) for `text` fields."""
    global _ANALYZER
    assert name in ("simple", "standard")
    _ANALYZER = name


def _analyze_doc(text: str) -> list[str]:
    return standard_tokens(text) if _ANALYZER == "standard" else analyze(text)
