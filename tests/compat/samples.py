"""Real sample logs for the compatibility suite, parsed in plain Python (nothing from Cairn).

Two indices:
- `compat-apache`: the 10,000-line Apache combined log of elastic/examples (May 2015, UTC);
- `compat-nasa`: every 100th line of the NASA-KSC July 1995 trace (common log format, -0400).

Each line becomes an ECS-like document (nested objects as a shipper would send them); the
reference evaluator works on the flattened form (`flat`), with `@timestamp` as epoch millis.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "tests" / "data" / "web-access"
APACHE_FILE = DATA_DIR / "elastic-examples_apache_logs.log"
NASA_FILE = DATA_DIR / "nasa-http-jul1995_every100th.log"

APACHE_INDEX = "compat-apache"
NASA_INDEX = "compat-nasa"

# "Now" for date math: a fixed instant after the Apache data (17-20 May 2015, UTC).
NOW_RFC3339 = "2015-05-21T06:00:00Z"
NOW_MS = int(datetime(2015, 5, 21, 6, 0, 0, tzinfo=timezone.utc).timestamp() * 1000)

MAPPING = {
    "properties": {
        "@timestamp": {"type": "date"},
        "message": {"type": "text"},
        "event": {"properties": {"dataset": {"type": "keyword"}}},
        "source": {"properties": {"ip": {"type": "keyword"}, "address": {"type": "keyword"}}},
        "http": {
            "properties": {
                "version": {"type": "keyword"},
                "request": {"properties": {"method": {"type": "keyword"}, "referrer": {"type": "keyword"}}},
                "response": {
                    "properties": {
                        "status_code": {"type": "long"},
                        "body": {"properties": {"bytes": {"type": "long"}}},
                    }
                },
            }
        },
        "url": {"properties": {"original": {"type": "keyword"}}},
        "user_agent": {"properties": {"original": {"type": "keyword"}}},
    }
}

# field name -> type, for the reference evaluator
FIELD_TYPES = {
    "@timestamp": "date",
    "message": "text",
    "event.dataset": "keyword",
    "source.ip": "keyword",
    "source.address": "keyword",
    "http.version": "keyword",
    "http.request.method": "keyword",
    "http.request.referrer": "keyword",
    "http.response.status_code": "long",
    "http.response.body.bytes": "long",
    "url.original": "keyword",
    "user_agent.original": "keyword",
}

# Combined / common log format. One Apache line lacks the closing quote of its user agent
# (it is kept: the user agent then runs to the end of the line).
LINE_RE = re.compile(
    r'^(?P<host>\S+) \S+ \S+ \[(?P<ts>[^\]]+)\] "(?P<req>[^"]*)" (?P<status>\d{3}) (?P<bytes>\S+)'
    r'(?: "(?P<ref>[^"]*)" "(?P<ua>[^"]*)"?)?\s*$'
)
IPV4_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


def _ts(s: str) -> datetime:
    return datetime.strptime(s, "%d/%b/%Y:%H:%M:%S %z")


def _set(d: dict, dotted: str, value) -> None:
    parts = dotted.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value


def parse_line(line: str, dataset: str) -> dict | None:
    """Returns the flat document (dotted keys) for one log line, or None if it does not parse."""
    m = LINE_RE.match(line)
    if not m:
        return None
    ts = _ts(m["ts"])
    flat: dict = {}
    # Apache data is UTC: send "Z"; NASA keeps its -04:00 offset (Cairn must convert).
    if ts.utcoffset().total_seconds() == 0:
        flat["@timestamp"] = ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        flat["@timestamp"] = ts.isoformat()
    flat["event.dataset"] = dataset
    host = m["host"]
    if IPV4_RE.match(host):
        flat["source.ip"] = host
    flat["source.address"] = host
    req = m["req"].split()  # "GET /path HTTP/1.0"; NASA has "GET /" and runs of spaces too
    if len(req) in (2, 3):
        flat["http.request.method"] = req[0]
        flat["url.original"] = req[1]
        if len(req) == 3:
            flat["http.version"] = req[2].split("/", 1)[-1]
    flat["http.response.status_code"] = int(m["status"])
    if m["bytes"] != "-":
        flat["http.response.body.bytes"] = int(m["bytes"])
    if m["ref"] not in (None, "-"):
        flat["http.request.referrer"] = m["ref"]
    if m["ua"] not in (None, "-"):
        flat["user_agent.original"] = m["ua"]
    flat["message"] = line
    return flat


def nest(flat: dict) -> dict:
    out: dict = {}
    for k, v in flat.items():
        if k == "@timestamp":
            out[k] = v
        else:
            _set(out, k, v)
    return out


def ts_millis(s: str) -> int:
    return int(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000)


class Doc:
    __slots__ = ("id", "index", "flat", "source", "ts")

    def __init__(self, id_: str, index: str, flat: dict):
        self.id = id_
        self.index = index
        self.source = nest(flat)  # what is sent and must come back as _source
        self.flat = dict(flat)
        self.ts = ts_millis(flat["@timestamp"])
        self.flat["@timestamp"] = self.ts  # the evaluator works on epoch millis

    def __repr__(self):
        return f"Doc({self.index}/{self.id})"


def load_docs() -> list[Doc]:
    docs: list[Doc] = []
    for path, index, prefix, dataset in (
        (APACHE_FILE, APACHE_INDEX, "apache", "apache.access"),
        (NASA_FILE, NASA_INDEX, "nasa", "nasa.access"),
    ):
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.rstrip("\n")
                flat = parse_line(line, dataset)
                assert flat is not None, f"{path.name}:{n} does not parse: {line!r}"
                docs.append(Doc(f"{prefix}-{n:05d}", index, flat))
    return docs


_CACHE: list[Doc] | None = None


def all_docs() -> list[Doc]:
    global _CACHE
    if _CACHE is None:
        _CACHE = load_docs()
    return _CACHE
