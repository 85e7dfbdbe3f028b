"""Hostile queries get Elasticsearch's error with bounded work, and the server keeps serving.

Each case asserts the status and error type, plus a generous liveness bound (the
request returns at all within a timeout far above normal), never a speed.
"""

import json

import pytest

LIVENESS = 60  # seconds: a bound that only a hang would exceed


@pytest.fixture(scope="module")
def srv(cairn_module):
    lines = []
    for i in range(200):
        lines.append({"index": {"_index": "hostile"}})
        lines.append({"@timestamp": "2026-11-27T10:00:00Z", "message": f"line {i} aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "host": f"h{i % 7}", "n": i})
    r = cairn_module.bulk(lines, params={"refresh": "true"})
    assert r.status_code == 200 and not r.json()["errors"]
    return cairn_module


def search(srv, body, path="/hostile/_search"):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return srv.post(path, data=data, headers={"content-type": "application/json"}, timeout=LIVENESS)


def still_serving(srv):
    r = search(srv, {"query": {"term": {"host": "h1"}}, "size": 0})
    assert r.status_code == 200
    assert r.json()["hits"]["total"]["value"] > 0


def test_deep_nesting_is_refused(srv):
    depth = 100_000
    body = '{"query":' + '{"bool":{"must":' * depth + '{"match_all":{}}' + "}}" * depth + "}"
    r = search(srv, body)
    assert r.status_code == 400
    assert r.json()["error"]["type"] in ("x_content_parse_exception", "parsing_exception")
    still_serving(srv)


def test_nested_bool_over_the_depth_limit(srv):
    q = {"match_all": {}}
    for _ in range(40):
        q = {"bool": {"must": [q]}}
    r = search(srv, {"query": q})
    assert r.status_code == 400
    assert "depth" in r.json()["error"]["reason"] or "nested" in r.json()["error"]["reason"]
    still_serving(srv)


def test_hundred_thousand_clause_bool(srv):
    should = [{"term": {"host": f"x{i}"}} for i in range(100_000)]
    r = search(srv, {"query": {"bool": {"should": should}}})
    assert r.status_code == 400
    err = r.json()["error"]
    assert "clause" in err["reason"].lower() or "too_many" in err["type"]
    still_serving(srv)


def test_catastrophic_regex(srv):
    pattern = "".join(f"({c}|{c}{c})*" for c in "abcdefghijklmnopqrstuvwxyz") + "(a|aa)*(a|aa)*b"
    r = search(srv, {"query": {"regexp": {"host": pattern}}})
    # Either refused as too complex, or answered: never a hang.
    assert r.status_code in (200, 400)
    if r.status_code == 400:
        assert r.json()["error"]["type"] in ("too_complex_to_determinize_exception", "illegal_argument_exception", "parsing_exception", "query_shard_exception")
    long_pattern = "a" * 5000
    r = search(srv, {"query": {"regexp": {"host": long_pattern}}})
    assert r.status_code == 400
    still_serving(srv)


def test_huge_size_and_window(srv):
    r = search(srv, {"size": 1_000_000})
    assert r.status_code == 400
    err = r.json()["error"]
    assert "Result window is too large" in json.dumps(err)
    r = search(srv, {"from": 9_999, "size": 2})
    assert r.status_code == 400
    still_serving(srv)


def test_malformed_and_unknown(srv):
    r = search(srv, '{"query": {"match_all": {}')
    assert r.status_code == 400
    r = search(srv, {"query": {"no_such_query": {}}})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "parsing_exception"
    r = search(srv, {"query": {"match_all": {}}, "bogus_key": 1})
    assert r.status_code == 400
    still_serving(srv)


def test_scroll_keep_alive_limit(srv):
    r = srv.post("/hostile/_search?scroll=2d", json={"size": 1}, timeout=LIVENESS)
    assert r.status_code == 400
    assert "search.max_keep_alive" in r.json()["error"]["reason"]
    r = srv.post("/_search/scroll", json={"scroll_id": "nope", "scroll": "1m"}, timeout=LIVENESS)
    assert r.status_code == 404
    still_serving(srv)
