"""The hostile-input corpus (issue #4), run against the live server.

Each case asserts the answer (an Elasticsearch-shaped 4xx or 429, never a 5xx), a
generous liveness bound (a timeout only a hang would reach, never a speed), and that the
server still answers a normal query afterwards. The module ends by checking that the
server's resident memory stayed far below the size of the hostile inputs it was sent.

The module's server runs with low limits (set by flags) so that each limit is reached
with small inputs: the point is that the limit holds and is reported, not its default.
"""

from __future__ import annotations

import json
import re
import select
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import assert_es_error, raw_http

LIVENESS = 120  # seconds: a bound that only a hang would exceed
MAX_BODY = 16 * 1024 * 1024

LIMIT_FLAGS = [
    "--max-body-size", "16mb",
    "--max-concurrent-searches", "2",
    "--search-queue-size", "2",
    "--max-bulk-items", "1000",
    "--max-document-fields", "5000",
    "--max-string-size", "1mb",
]


@pytest.fixture(scope="module")
def srv(tmp_path_factory, request):
    from conftest import ServerFactory

    factory = ServerFactory(tmp_path_factory.mktemp("cairn"), request.node.nodeid)
    s = factory(extra_args=LIMIT_FLAGS)
    lines = []
    for i in range(100):
        lines.append({"index": {"_index": "corpus"}})
        lines.append({"@timestamp": "2026-11-27T10:00:00Z", "message": f"line {i}", "host": f"h{i % 5}"})
    r = s.bulk(lines, params={"refresh": "true"}, timeout=LIVENESS)
    assert r.status_code == 200 and not r.json()["errors"], r.text[:2000]
    yield s
    problems = factory.teardown()
    assert not problems, "server shutdown problems: " + "; ".join(problems)


def still_serving(srv) -> None:
    r = srv.post("/corpus/_search", json={"query": {"term": {"host": "h1"}}, "size": 0}, timeout=LIVENESS)
    assert r.status_code == 200, r.text[:2000]
    assert r.json()["hits"]["total"]["value"] == 20


def ndjson(lines) -> bytes:
    return b"".join((l if isinstance(l, bytes) else json.dumps(l).encode()) + b"\n" for l in lines)


def post_bulk(srv, body: bytes, params=None):
    return srv.post("/_bulk", data=body, params=params, headers={"content-type": "application/x-ndjson"}, timeout=LIVENESS)


def only_item(r) -> dict:
    assert r.status_code == 200, r.text[:2000]
    items = r.json()["items"]
    assert len(items) == 1
    return next(iter(items[0].values()))


def rss_kib(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"^VmRSS:\s+(\d+)\s+kB", text, re.M)
    assert m, text
    return int(m.group(1))


# -- bodies -------------------------------------------------------------------------


def stream_body(srv, total: int, path: str = "/_bulk", chunk: int = 1 << 20):
    """Declares a `total`-byte body and streams it from a small reusable buffer (the
    test never holds it), stopping as soon as the server answers. Returns (status,
    body, bytes sent)."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nContent-Type: application/x-ndjson\r\n"
        f"Content-Length: {total}\r\nConnection: close\r\n\r\n"
    ).encode()
    block = memoryview(b'{"index":{"_index":"big"}}\n{"message":"' + b"x" * (chunk - 50) + b'"}\n')
    deadline = time.monotonic() + LIVENESS
    sent = 0
    data = b""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=LIVENESS) as s:
        s.sendall(head)
        while sent < total:
            readable, writable, _ = select.select([s], [s], [], max(0.0, deadline - time.monotonic()))
            if readable:
                break
            if writable:
                n = min(len(block), total - sent)
                try:
                    sent += s.send(block[:n])
                except (BrokenPipeError, ConnectionResetError):
                    break
            assert time.monotonic() < deadline, f"no answer after sending {sent} bytes"
        while time.monotonic() < deadline:
            try:
                part = s.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            data += part
            head_part, sep, rest = data.partition(b"\r\n\r\n")
            m = re.search(rb"(?im)^content-length:\s*(\d+)", head_part)
            if sep and m and len(rest) >= int(m.group(1)):
                break
    assert data, f"no HTTP answer (sent {sent} of {total} bytes)"
    head_part, _, rest = data.partition(b"\r\n\r\n")
    status = int(head_part.split(b" ", 2)[1])
    return status, rest, sent


def test_one_gigabyte_body_is_413_after_bounded_work(srv):
    total = 1 << 30
    status, body, sent = stream_body(srv, total)
    assert status == 413, body[:500]
    assert json.loads(body)["error"]["type"] == "content_too_long_exception"
    # The server stopped reading at its limit: what went out is the limit plus what the
    # socket buffers took, far from the gigabyte declared.
    assert sent < MAX_BODY + 64 * 1024 * 1024, sent
    still_serving(srv)


# -- JSON nesting --------------------------------------------------------------------


def test_json_nested_100000_deep(srv):
    depth = 100_000
    deep_obj = '{"a":' * depth + "1" + "}" * depth
    deep_arr = "[" * depth + "]" * depth
    # A search body.
    r = srv.post("/corpus/_search", data='{"query":' + deep_obj + "}", headers={"content-type": "application/json"}, timeout=LIVENESS)
    assert_es_error(r, 400, ("x_content_parse_exception", "parsing_exception"))
    # A single document.
    r = srv.put("/deep/_doc/1", data=deep_obj, headers={"content-type": "application/json"}, timeout=LIVENESS)
    assert_es_error(r, 400, ("x_content_parse_exception", "document_parsing_exception", "mapper_parsing_exception"))
    # A bulk document line fails alone; its neighbour is written.
    body = ndjson([{"index": {"_index": "deep"}}, ('{"v":' + deep_arr + "}").encode(), {"index": {"_index": "deep"}}, {"ok": 1}])
    r = post_bulk(srv, body, {"refresh": "true"})
    assert r.status_code == 200, r.text[:2000]
    items = [next(iter(i.values())) for i in r.json()["items"]]
    assert items[0]["status"] == 400 and items[0]["error"]["type"] == "document_parsing_exception", items[0]
    assert items[1]["status"] == 201, items[1]
    # A bulk action line fails the whole request.
    r = post_bulk(srv, ndjson([deep_obj.encode(), {"x": 1}]))
    assert_es_error(r, 400, "illegal_argument_exception")
    # A pipeline definition.
    r = srv.put("/_ingest/pipeline/deep", data=deep_obj, headers={"content-type": "application/json"}, timeout=LIVENESS)
    assert 400 <= r.status_code < 500, r.text[:500]
    still_serving(srv)


# -- documents -----------------------------------------------------------------------


def test_ten_thousand_field_documents(srv):
    doc = {f"f{i}": i for i in range(10_000)}
    r = srv.put("/wide-static", json={"mappings": {"dynamic": False, "properties": {"f0": {"type": "long"}}}}, timeout=LIVENESS)
    assert r.status_code == 200, r.text
    # The per-document limit refuses it before any mapping work, whatever the mapping.
    for index in ("wide", "wide-static"):
        r = post_bulk(srv, ndjson([{"index": {"_index": index}}, doc]))
        item = only_item(r)
        assert item["status"] == 400, item
        assert item["error"]["type"] == "illegal_argument_exception", item
        assert "[5000]" in item["error"]["reason"] and "--max-document-fields" in item["error"]["reason"], item
    # Under it, dynamic mapping still stops at the index's total fields limit...
    doc = {f"f{i}": i for i in range(2000)}
    r = post_bulk(srv, ndjson([{"index": {"_index": "wide"}}, doc]))
    item = only_item(r)
    assert item["status"] == 400, item
    assert "Limit of total fields [1000]" in item["error"]["reason"], item
    # ...and an index that maps nothing new takes it.
    r = post_bulk(srv, ndjson([{"index": {"_index": "wide-static"}}, doc]))
    assert only_item(r)["status"] == 201
    still_serving(srv)


def test_string_over_the_size_limit_names_the_field(srv):
    big = "x" * (1024 * 1024 + 1)
    r = post_bulk(srv, ndjson([{"index": {"_index": "strings"}}, {"a": "ok", "b": {"message": big}}, {"index": {"_index": "strings"}}, {"a": "x" * 1000}]))
    items = [next(iter(i.values())) for i in r.json()["items"]]
    assert items[0]["status"] == 400, items[0]
    assert items[0]["error"]["type"] == "document_parsing_exception"
    assert "[b.message]" in items[0]["error"]["reason"] and "--max-string-size" in items[0]["error"]["reason"]
    assert items[1]["status"] == 201
    r = srv.put("/strings/_doc/big", json={"m": big}, timeout=LIVENESS)
    assert_es_error(r, 400, "document_parsing_exception")
    still_serving(srv)


def test_bulk_item_limit(srv):
    lines = []
    for i in range(1001):
        lines += [{"index": {"_index": "many"}}, {"n": i}]
    r = post_bulk(srv, ndjson(lines))
    err = assert_es_error(r, 400, "illegal_argument_exception")
    assert "[1000]" in err["reason"] and "--max-bulk-items" in err["reason"], err
    r = post_bulk(srv, ndjson(lines[:2000]))
    assert r.status_code == 200 and not r.json()["errors"]
    still_serving(srv)


# -- queries -------------------------------------------------------------------------


def test_hundred_thousand_clause_bool(srv):
    should = [{"term": {"host": f"x{i}"}} for i in range(100_000)]
    r = srv.post("/corpus/_search", json={"query": {"bool": {"should": should}}}, timeout=LIVENESS)
    assert r.status_code == 400, r.text[:500]
    err = r.json()["error"]
    assert "clause" in err["reason"].lower() or "too_many" in err["type"], err
    # The same through the query string parsers.
    q = " OR ".join(f"host:x{i}" for i in range(100_000))
    r = srv.post("/corpus/_search", json={"query": {"query_string": {"query": q}}}, timeout=LIVENESS)
    assert 400 <= r.status_code < 500, r.text[:500]
    still_serving(srv)


def test_bucket_explosion(srv):
    # One-second buckets over thirty years, empty ones included: refused, not built.
    aggs = {"h": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1s", "min_doc_count": 0,
                                     "extended_bounds": {"min": "2000-01-01", "max": "2030-01-01"}}}}
    r = srv.post("/corpus/_search", json={"size": 0, "aggs": aggs}, timeout=LIVENESS)
    assert r.status_code == 400, r.text[:500]
    assert "too_many_buckets_exception" in r.text, r.text[:500]
    still_serving(srv)


def test_catastrophic_regex(srv):
    evil = "(a|aa)*" * 30 + "b"
    r = srv.post("/corpus/_search", json={"query": {"regexp": {"host": {"value": evil, "max_determinized_states": 100000000}}}}, timeout=LIVENESS)
    assert r.status_code in (200, 400), r.text[:500]
    r = srv.post("/corpus/_search", json={"query": {"regexp": {"host": "a" * 5000}}}, timeout=LIVENESS)
    assert_es_error(r, 400, ("illegal_argument_exception", "query_shard_exception", "search_phase_execution_exception"))
    r = srv.post("/corpus/_search", json={"query": {"wildcard": {"host": "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b"}}}, timeout=LIVENESS)
    assert r.status_code in (200, 400), r.text[:500]
    # The same kind of pattern in an ingest pipeline runs on a linear-time engine: the
    # document is processed (or fails alone), ingest does not hang.
    pipeline = {"processors": [{"grok": {"field": "message", "patterns": ["^(a|aa)*(a|aa)*(a|aa)*(a|aa)*b$"]}}]}
    r = srv.put("/_ingest/pipeline/evil", json=pipeline, timeout=LIVENESS)
    if r.status_code == 200:
        r = post_bulk(srv, ndjson([{"index": {"_index": "evil", "pipeline": "evil"}}, {"message": "a" * 100_000}]))
        item = only_item(r)
        assert item["status"] in (201, 400, 500), item
    else:
        assert 400 <= r.status_code < 500, r.text[:500]
    still_serving(srv)


def test_ingest_time_budget_names_the_processor(cairn_factory):
    s = cairn_factory(extra_args=["--ingest-timeout", "1ms"])
    pipeline = {"processors": [{"foreach": {"field": "parts", "processor": {"grok": {"field": "_ingest._value", "patterns": ["%{WORD:w} (a|aa)*%{NUMBER:n}"]}}}}]}
    r = s.put("/_ingest/pipeline/slow", json=pipeline, timeout=LIVENESS)
    assert r.status_code == 200, r.text
    parts = ["word " + "a" * 500 + " 12"] * 20_000
    r = post_bulk(s, ndjson([{"index": {"_index": "slow", "pipeline": "slow"}}, {"parts": parts}, {"index": {"_index": "slow"}}, {"m": 1}]))
    assert r.status_code == 200, r.text[:2000]
    items = [next(iter(i.values())) for i in r.json()["items"]]
    assert items[0]["status"] == 400, items[0]
    reason = items[0]["error"]["reason"]
    assert "time budget" in reason and "[slow]" in reason and ("grok" in reason or "foreach" in reason), reason
    assert items[1]["status"] == 201
    r = s.get("/", timeout=LIVENESS)
    assert r.status_code == 200


def test_dates_beyond_the_indexable_range(srv):
    # Found by the http_request fuzz target: a date past 2262 overflowed the index's
    # nanosecond dates. A new field with such a value is not detected as a date; a date
    # field refuses it; range bounds past it are clamped.
    r = post_bulk(srv, ndjson([{"index": {"_index": "far"}}, {"seen": "9181-11-27T10:00:00Z"}]), {"refresh": "true"})
    assert only_item(r)["status"] == 201
    r = srv.put("/far-dated", json={"mappings": {"properties": {"seen": {"type": "date"}}}}, timeout=LIVENESS)
    assert r.status_code == 200, r.text
    r = post_bulk(srv, ndjson([{"index": {"_index": "far-dated"}}, {"seen": "9181-11-27T10:00:00Z"},
                               {"index": {"_index": "far-dated"}}, {"seen": "2026-11-27T10:00:00Z"}]), {"refresh": "true"})
    items = [next(iter(i.values())) for i in r.json()["items"]]
    assert items[0]["status"] == 400 and "seen" in items[0]["error"]["reason"], items[0]
    assert items[1]["status"] == 201, items[1]
    for rng in ({"gte": "9999-01-01"}, {"lte": "-200000-01-01"}, {"gte": "1000-01-01", "lte": "9999-12-31"}):
        r = srv.post("/far-dated,corpus/_search", json={"query": {"range": {"seen": rng}}}, timeout=LIVENESS)
        assert r.status_code in (200, 400), r.text[:500]
        r = srv.post("/corpus/_search", json={"query": {"range": {"@timestamp": rng}}}, timeout=LIVENESS)
        assert r.status_code in (200, 400), r.text[:500]
    r = srv.post("/far-dated/_search", json={"query": {"range": {"seen": {"gte": "1000-01-01", "lte": "9999-12-31"}}}}, timeout=LIVENESS)
    assert r.status_code == 200 and r.json()["hits"]["total"]["value"] == 1, r.text[:500]
    still_serving(srv)


# -- bytes ---------------------------------------------------------------------------


def test_invalid_utf8(srv):
    bad = b'{"message":"caf\xe9 \xff\xfe"}'
    r = srv.put("/utf/_doc/1", data=bad, headers={"content-type": "application/json"}, timeout=LIVENESS)
    assert 400 <= r.status_code < 500, r.text[:500]
    r = post_bulk(srv, b'{"index":{"_index":"utf"}}\n' + bad + b'\n{"index":{"_index":"utf"}}\n{"ok":true}\n')
    assert r.status_code == 200, r.text[:500]
    items = [next(iter(i.values())) for i in r.json()["items"]]
    assert items[0]["status"] == 400 and items[1]["status"] == 201, items
    r = srv.post("/corpus/_search", data=b'{"query":{"term":{"host":"\xff"}}}', headers={"content-type": "application/json"}, timeout=LIVENESS)
    assert 400 <= r.status_code < 500, r.text[:500]
    r = post_bulk(srv, b'{"index":{"_index":"\xc3\x28"}}\n{"a":1}\n')
    assert 400 <= r.status_code < 500, r.text[:500]
    # Raw bytes above 0x7f in the request target and in a header.
    status, _, _ = raw_http(srv, "GET", "/caf\xe9/_search".encode("latin-1").decode("latin-1"), b"")
    assert 400 <= status < 500
    status, _, _ = raw_http(srv, "GET", "/corpus/_count", b"", {"X-Opaque-Id": "\xff\xfe"})
    assert status in (200, 400)
    still_serving(srv)


def test_nul_bytes(srv):
    # An escaped NUL is valid JSON: stored and returned as sent.
    r = srv.put("/nul/_doc/1?refresh=true", data=b'{"message":"a\\u0000b"}', headers={"content-type": "application/json"}, timeout=LIVENESS)
    assert r.status_code == 201, r.text
    r = srv.get("/nul/_doc/1", timeout=LIVENESS)
    assert r.json()["_source"]["message"] == "a\x00b"
    # A raw NUL inside JSON is not.
    r = srv.put("/nul/_doc/2", data=b'{"message":"a\x00b"}', headers={"content-type": "application/json"}, timeout=LIVENESS)
    assert 400 <= r.status_code < 500, r.text[:500]
    r = post_bulk(srv, b'{"index":{"_index":"nul"}}\n\x00\x00\x00\n{"index":{"_index":"nul"}}\n{"ok":1}\n')
    assert r.status_code == 200, r.text[:500]
    items = [next(iter(i.values())) for i in r.json()["items"]]
    assert items[0]["status"] == 400 and items[1]["status"] == 201, items
    r = post_bulk(srv, b"\x00" * 1000)
    assert 400 <= r.status_code < 500, r.text[:500]
    # In an index name, a query string and the request target.
    r = srv.put("/nul%00name", timeout=LIVENESS)
    assert 400 <= r.status_code < 500, r.text[:500]
    r = srv.get("/corpus/_search", params={"q": "host:\x00"}, timeout=LIVENESS)
    assert r.status_code in (200, 400), r.text[:500]
    status, _, _ = raw_http(srv, "GET", "/corpus/_search\x00", b"")
    assert 400 <= status < 500
    still_serving(srv)


# -- connections ---------------------------------------------------------------------


def _open_stalled_search(srv) -> socket.socket:
    """A search whose headers promise a body that never comes: it holds its place (a
    running slot or a queue place) until it is completed or closed."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=LIVENESS)
    s.sendall(
        f"POST /corpus/_search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n".encode()
    )
    return s


def _read_response(s: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if sep and m and len(rest) >= int(m.group(1)):
            return head, rest
        part = s.recv(65536)
        if not part:
            return head, rest
        data += part


def _read_status(s: socket.socket) -> int:
    head, _ = _read_response(s)
    return int(head.split(b" ", 2)[1])


def test_search_saturation_is_429_and_queued_work_completes(srv):
    # Stalled searches are the probes: each takes a running slot or a queue place and
    # never answers, until one finds every place taken and gets its 429 at once. (A
    # probe with a body would race the stalled ones for the places.)
    stalled: list[socket.socket] = []
    rejected = None
    try:
        deadline = time.monotonic() + LIVENESS
        while rejected is None:
            assert len(stalled) < 50 and time.monotonic() < deadline, "no 429 with 2 running and 2 queued"
            stalled.append(_open_stalled_search(srv))
            readable, _, _ = select.select(stalled, [], [], 0.5)
            if readable:
                rejected = readable[0]
        head, body = _read_response(rejected)
        assert head.startswith(b"HTTP/1.1 429"), head
        err = json.loads(body)["error"]
        assert err["type"] == "es_rejected_execution_exception", err
        assert err["reason"].startswith("rejected execution of search request"), err
        assert "/search, queue capacity = 2" in err["reason"], err
        # Complete every stalled request: the running ones finish, and the queued ones
        # are then admitted, not dropped, and answer too.
        for s in stalled:
            if s is not rejected:
                try:
                    s.sendall(b"{}")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # a later probe that was refused and closed
        statuses = [_read_status(s) for s in stalled if s is not rejected]
        assert statuses.count(200) == 4, statuses
        assert set(statuses) <= {200, 429}, statuses
    finally:
        for s in stalled:
            s.close()
    still_serving(srv)


def test_flood_of_concurrent_searches(srv):
    statuses: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    body = {"query": {"query_string": {"query": "line AND host:h*"}}, "aggs": {"h": {"terms": {"field": "host"}}}}

    def client():
        try:
            with requests.Session() as sess:
                for _ in range(5):
                    r = sess.post(srv.u("/corpus/_search"), json=body, timeout=LIVENESS)
                    with lock:
                        statuses.append(r.status_code)
                    if r.status_code == 429:
                        assert r.json()["error"]["type"] == "es_rejected_execution_exception"
        except BaseException as e:  # noqa: BLE001 - reported below
            with lock:
                errors.append(e)

    threads = [threading.Thread(target=client) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(LIVENESS)
    assert not any(t.is_alive() for t in threads), "a search client hung"
    assert not errors, errors[:3]
    assert len(statuses) == 200
    assert set(statuses) <= {200, 429}, sorted(set(statuses))
    assert statuses.count(200) > 0
    still_serving(srv)


def test_slowloris_is_cut_off_and_others_are_served(cairn_factory):
    s = cairn_factory(extra_args=["--header-read-timeout", "2s"])
    slow = socket.create_connection(("127.0.0.1", s.port), timeout=LIVENESS)
    slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    # Generous against the 2 s asked for, yet below hyper's own 30 s default, so the
    # test shows that the flag is applied.
    deadline = time.monotonic() + 20
    closed = False
    i = 0
    try:
        while time.monotonic() < deadline:
            # Meanwhile other clients are served.
            assert requests.get(s.u("/"), timeout=LIVENESS).status_code == 200
            try:
                slow.sendall(f"X-Drip-{i}: x\r\n".encode())
                i += 1
                readable, _, _ = select.select([slow], [], [], 0.5)
                if readable:
                    data = slow.recv(4096)
                    # Closed, or a 408 before closing: either way, cut off.
                    if not data or data.startswith(b"HTTP/1.1 408"):
                        closed = True
                        break
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        assert closed, "the server kept a connection that never finished its headers"
    finally:
        slow.close()
    assert requests.get(s.u("/"), timeout=LIVENESS).status_code == 200


def test_stalled_body_is_cut_off_and_frees_its_slot(cairn_factory):
    """A search or bulk that sends its headers and stalls its body holds a running
    slot: --body-read-timeout bounds that, with a 408, and the slot serves others."""
    s = cairn_factory(extra_args=["--body-read-timeout", "2s", "--max-concurrent-searches", "1", "--search-queue-size", "0"])
    stalled = _open_stalled_search(s)
    try:
        t0 = time.monotonic()
        status = _read_status(stalled)
        assert status == 408, status
        assert time.monotonic() - t0 < LIVENESS
    finally:
        stalled.close()
    # The slot is free again.
    r = requests.post(s.u("/_search"), json={"query": {"match_all": {}}}, timeout=LIVENESS)
    assert r.status_code == 200, r.text


def test_single_document_writes_share_the_write_gate(cairn_factory):
    """`PUT /{index}/_doc/{id}` and friends take a write slot like `_bulk`: with one slot
    and no queue, a second write while one is running gets Elasticsearch's 429, and a
    realtime GET is never held up."""
    s = cairn_factory(extra_args=["--max-concurrent-bulk", "1", "--bulk-queue-size", "0"])
    # The index exists first, so that a probe holds the slot only for a moment.
    assert requests.put(s.u("/w"), timeout=LIVENESS).status_code == 200
    running = None
    try:
        deadline = time.monotonic() + LIVENESS
        attempt = 0
        while True:
            if running is None:
                # Headers promise a body that has not come yet: the write holds the
                # only slot.
                running = socket.create_connection(("127.0.0.1", s.port), timeout=LIVENESS)
                running.sendall(b"PUT /w/_doc/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n")
                time.sleep(0.05)
            attempt += 1
            probe = f"2-{attempt}"
            r = requests.put(s.u(f"/w/_doc/{probe}"), json={"n": 2}, timeout=LIVENESS)
            if r.status_code == 429 or time.monotonic() > deadline:
                break
            # The stalled write lost the race for the slot to a probe and was refused
            # itself (it has an answer waiting): send it again.
            if select.select([running], [], [], 0)[0]:
                running.close()
                running = None
            time.sleep(0.05)
        assert r.status_code == 429, r.text
        err = r.json()["error"]
        assert err["type"] == "es_rejected_execution_exception", err
        assert f"rejected execution of write request [PUT /w/_doc/{probe}]" in err["reason"], err
        assert requests.get(s.u(f"/w/_doc/{probe}"), timeout=LIVENESS).status_code == 404
        running.sendall(b'{"n": 1}\n')
        assert _read_status(running) == 201
    finally:
        if running is not None:
            running.close()
    # The slot is free again.
    r = requests.put(s.u("/w/_doc/2"), json={"n": 2}, timeout=LIVENESS)
    assert r.status_code == 201, r.text


def test_percent_before_a_multibyte_character_in_the_path(srv):
    """Found by fuzzing the HTTP path: `%` followed by a multi-byte character in an index
    expression used to panic the request's task."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=LIVENESS) as s:
        s.sendall(b"GET /logge:hemp\xc6\x9fsec$l*%21N@D%2\xc6\x9fsec$/_search HTTP/1.1\r\nHost: x\r\n\r\n")
        status = _read_status(s)
    assert 200 <= status < 500, status
    assert requests.get(srv.u("/"), timeout=LIVENESS).status_code == 200


def rss_anon_kib(pid: int) -> int:
    m = re.search(r"^RssAnon:\s+(\d+)\s+kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert m
    return int(m.group(1))


def test_fuzzy_and_regex_over_hundreds_of_fields(srv):
    """Found by fuzzing the HTTP path: an unqualified `q=term~` or `q=/regex/` expands to
    every field, and each field used to build its own automaton (megabytes each): 1.1 GiB
    and seconds for one request on an index with a few hundred fields. One automaton per
    request now serves every field."""
    doc = {"@timestamp": "2026-11-27T10:00:00Z", "message": "wide needle"}
    # Long names: tantivy built each fuzzy DFA over the whole JSON path and value.
    doc.update({f"field.with.a.rather.long.name.as.kubernetes.labels.have.{i:03}": "seahostbge" for i in range(400)})
    r = post_bulk(srv, ndjson([{"index": {"_index": "wide"}}, doc]), params={"refresh": "true"})
    assert not only_item(r).get("error"), r.text[:2000]
    before = rss_anon_kib(srv.proc.pid)
    for q in ["seahostbge~", "seahostbgx~2", "/seah.*bg[a-z]/", "sea*bge"]:
        r = srv.get("/wide/_search", params={"q": q}, timeout=LIVENESS)
        assert r.status_code == 200, r.text[:2000]
        assert r.json()["hits"]["total"]["value"] == 1, (q, r.text[:2000])
    grown = (rss_anon_kib(srv.proc.pid) - before) / 1024
    assert grown < 256, f"RssAnon grew {grown:.0f} MiB over four queries"
    still_serving(srv)


def test_zz_memory_stayed_bounded(srv):
    # Runs last in the module (pytest keeps file order): after the corpus, the server's
    # resident memory is far below the gigabyte it was offered.
    still_serving(srv)
    rss_mib = rss_kib(srv.proc.pid) / 1024
    assert rss_mib < 768, f"VmRSS {rss_mib:.0f} MiB after the hostile corpus"
