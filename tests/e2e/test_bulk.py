"""`_bulk` semantics, item by item, as Elasticsearch 8 documents them."""

import gzip
import json
import re
from datetime import datetime, timezone

import pytest

from conftest import assert_es_error, raw_http

NOW = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")

DOC_PARSING = {"document_parsing_exception", "mapper_parsing_exception"}


def op_of(item: dict) -> tuple[str, dict]:
    assert len(item) == 1, f"a bulk item has exactly one key (its op): {item}"
    (op, body), = item.items()
    return op, body


def create_index(srv, name, properties):
    r = srv.put(f"/{name}", json={"mappings": {"properties": properties}})
    assert r.status_code == 200, r.text
    assert r.json()["acknowledged"] is True


def get_doc(srv, index, id_):
    return srv.get(f"/{index}/_doc/{id_}")


def test_mixed_bulk_exact_item_statuses(cairn):
    create_index(cairn, "bulk-mixed", {"status": {"type": "long"}, "@timestamp": {"type": "date"}})
    lines = [
        {"index": {"_index": "bulk-mixed", "_id": "good-1"}},
        {"@timestamp": NOW, "message": "good one", "status": 200},
        {"create": {"_index": "bulk-mixed", "_id": "dup"}},
        {"@timestamp": NOW, "message": "first create", "status": 201},
        {"index": {"_index": "bulk-mixed", "_id": "bad-json"}},
        '{"@timestamp": "' + NOW + '", "message": "truncated",',
        {"index": {"_index": "bulk-mixed", "_id": "bad-type"}},
        {"@timestamp": NOW, "message": "wrong type", "status": "not-a-number"},
        {"create": {"_index": "bulk-mixed", "_id": "dup"}},
        {"@timestamp": NOW, "message": "second create", "status": 409},
        {"index": {"_index": "bulk-mixed"}},
        {"@timestamp": NOW, "message": "auto id", "status": 202},
        {"create": {"_index": "bulk-mixed", "_id": "good-2"}},
        {"@timestamp": NOW, "message": "good two", "status": 203},
    ]
    r = cairn.bulk(lines, params={"refresh": "true"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["errors"] is True
    items = body["items"]
    assert [op_of(i)[0] for i in items] == ["index", "create", "index", "index", "create", "index", "create"], items
    bodies = [op_of(i)[1] for i in items]
    assert [b["status"] for b in bodies] == [201, 201, 400, 400, 409, 201, 201], json.dumps(items, indent=1)

    good1, dup1, bad_json, bad_type, dup2, auto, good2 = bodies
    for b, id_ in [(good1, "good-1"), (dup1, "dup"), (good2, "good-2")]:
        assert b["_id"] == id_ and b["_index"] == "bulk-mixed", b
        assert b["result"] == "created" and b["_version"] == 1, b
        assert "error" not in b, b
    assert isinstance(auto["_id"], str) and auto["_id"], auto
    assert auto["result"] == "created", auto

    assert bad_json["_id"] == "bad-json", bad_json
    assert bad_json["error"]["type"] in DOC_PARSING, bad_json
    assert bad_json["error"]["reason"], bad_json

    assert bad_type["_id"] == "bad-type", bad_type
    assert bad_type["error"]["type"] in DOC_PARSING, bad_type
    assert "status" in bad_type["error"]["reason"], f"the reason must name the field [status]: {bad_type}"

    assert dup2["_id"] == "dup", dup2
    assert dup2["error"]["type"] == "version_conflict_engine_exception", dup2
    assert "dup" in dup2["error"]["reason"], dup2

    # The good items are searchable (the bulk asked for refresh=true), the bad ones are not there.
    assert cairn.count("bulk-mixed") == 4
    r = cairn.post("/bulk-mixed/_search", json={"query": {"match_all": {}}, "size": 10})
    assert r.status_code == 200, r.text
    ids = sorted(h["_id"] for h in r.json()["hits"]["hits"])
    assert ids == sorted(["good-1", "dup", "good-2", auto["_id"]]), ids
    r = get_doc(cairn, "bulk-mixed", "dup")
    assert r.status_code == 200 and r.json()["_source"]["message"] == "first create", r.text
    for missing in ["bad-json", "bad-type"]:
        r = get_doc(cairn, "bulk-mixed", missing)
        assert r.status_code == 404 and r.json()["found"] is False, r.text


@pytest.mark.parametrize(
    "bad_action",
    ['{"index": "not-an-object"}', '{"frobnicate": {"_index": "bulk-badaction"}}'],
    ids=["action-not-object", "unknown-action"],
)
def test_malformed_action_line_rejects_whole_request(cairn, bad_action):
    lines = [
        {"index": {"_index": "bulk-badaction", "_id": "ok-1"}},
        {"@timestamp": NOW, "message": "would be fine"},
        bad_action,
        {"@timestamp": NOW, "message": "x"},
        {"index": {"_index": "bulk-badaction", "_id": "ok-2"}},
        {"@timestamp": NOW, "message": "would be fine too"},
    ]
    r = cairn.bulk(lines, params={"refresh": "true"})
    err = assert_es_error(r, 400, "illegal_argument_exception")
    assert "line [3]" in err["reason"] or "action" in err["reason"].lower(), err
    # Nothing was written: Elasticsearch parses the whole body before executing any item.
    assert cairn.get("/bulk-badaction/_doc/ok-1").status_code == 404
    assert cairn.get("/bulk-badaction/_doc/ok-2").status_code == 404
    assert cairn.head("/bulk-badaction").status_code == 404


def test_index_with_existing_id_replaces(cairn):
    r = cairn.bulk([{"index": {"_index": "bulk-replace", "_id": "r1"}}, {"@timestamp": NOW, "v": 1, "old": True}])
    assert r.status_code == 200 and r.json()["errors"] is False, r.text
    r = cairn.bulk([{"index": {"_index": "bulk-replace", "_id": "r1"}}, {"@timestamp": NOW, "v": 2}], params={"refresh": "true"})
    assert r.status_code == 200 and r.json()["errors"] is False, r.text
    _, item = op_of(r.json()["items"][0])
    assert item["status"] == 200 and item["result"] == "updated" and item["_version"] == 2, item
    assert cairn.count("bulk-replace") == 1
    r = get_doc(cairn, "bulk-replace", "r1")
    assert r.status_code == 200
    assert r.json()["_source"] == {"@timestamp": NOW, "v": 2}, r.json()
    assert r.json()["_version"] == 2, r.json()


def test_delete(cairn):
    r = cairn.bulk(
        [{"index": {"_index": "bulk-delete", "_id": "d1"}}, {"@timestamp": NOW, "v": 1},
         {"index": {"_index": "bulk-delete", "_id": "d2"}}, {"@timestamp": NOW, "v": 2}],
        params={"refresh": "true"},
    )
    assert r.status_code == 200 and r.json()["errors"] is False, r.text
    assert cairn.count("bulk-delete") == 2
    r = cairn.bulk(
        [{"delete": {"_index": "bulk-delete", "_id": "d1"}}, {"delete": {"_index": "bulk-delete", "_id": "never-existed"}}],
        params={"refresh": "true"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    # A delete of a missing id is a 404 "not_found" result, not a failure: errors stays false.
    assert body["errors"] is False, body
    (op1, d1), (op2, d2) = [op_of(i) for i in body["items"]]
    assert op1 == op2 == "delete"
    assert d1["status"] == 200 and d1["result"] == "deleted" and d1["_id"] == "d1", d1
    assert d2["status"] == 404 and d2["result"] == "not_found" and "error" not in d2, d2
    assert cairn.count("bulk-delete") == 1
    r = get_doc(cairn, "bulk-delete", "d1")
    assert r.status_code == 404 and r.json()["found"] is False, r.text
    assert get_doc(cairn, "bulk-delete", "d2").status_code == 200


def test_update_doc_doc_as_upsert_upsert(cairn):
    r = cairn.bulk([{"index": {"_index": "bulk-update", "_id": "u1"}}, {"@timestamp": NOW, "a": 1, "nested": {"x": 1}}])
    assert r.status_code == 200 and r.json()["errors"] is False, r.text

    r = cairn.bulk(
        [
            {"update": {"_index": "bulk-update", "_id": "u1"}},
            {"doc": {"b": 2, "nested": {"y": 2}}},
            {"update": {"_index": "bulk-update", "_id": "u-missing"}},
            {"doc": {"c": 1}},
            {"update": {"_index": "bulk-update", "_id": "u2"}},
            {"doc": {"@timestamp": NOW, "c": 3}, "doc_as_upsert": True},
            {"update": {"_index": "bulk-update", "_id": "u3"}},
            {"doc": {"d": 4}, "upsert": {"@timestamp": NOW, "d": 0, "e": 5}},
        ],
        params={"refresh": "true"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["errors"] is True, body
    items = [op_of(i) for i in body["items"]]
    assert [op for op, _ in items] == ["update"] * 4, items
    (_, upd), (_, missing), (_, as_upsert), (_, upsert) = items
    assert upd["status"] == 200 and upd["result"] == "updated" and upd["_version"] == 2, upd
    assert missing["status"] == 404 and missing["error"]["type"] == "document_missing_exception", missing
    assert as_upsert["status"] == 201 and as_upsert["result"] == "created", as_upsert
    assert upsert["status"] == 201 and upsert["result"] == "created", upsert

    assert get_doc(cairn, "bulk-update", "u1").json()["_source"] == {"@timestamp": NOW, "a": 1, "nested": {"x": 1, "y": 2}, "b": 2}
    assert get_doc(cairn, "bulk-update", "u-missing").status_code == 404
    assert get_doc(cairn, "bulk-update", "u2").json()["_source"] == {"@timestamp": NOW, "c": 3}
    # `upsert` is what gets indexed when the document does not exist ...
    assert get_doc(cairn, "bulk-update", "u3").json()["_source"] == {"@timestamp": NOW, "d": 0, "e": 5}
    assert cairn.count("bulk-update") == 3

    r = cairn.bulk(
        [
            {"update": {"_index": "bulk-update", "_id": "u3"}},
            {"doc": {"d": 4}, "upsert": {"@timestamp": NOW, "d": 0, "e": 5}},
            {"update": {"_index": "bulk-update", "_id": "u1"}},
            {"doc": {"a": 1}},
        ],
        params={"refresh": "true"},
    )
    assert r.status_code == 200 and r.json()["errors"] is False, r.text
    (_, again), (_, noop) = [op_of(i) for i in r.json()["items"]]
    # ... and `doc` is applied when it does.
    assert again["status"] == 200 and again["result"] == "updated", again
    assert get_doc(cairn, "bulk-update", "u3").json()["_source"] == {"@timestamp": NOW, "d": 4, "e": 5}
    # An update that changes nothing is a noop (detect_noop defaults to true).
    assert noop["status"] == 200 and noop["result"] == "noop", noop
    assert cairn.count("bulk-update") == 3


def test_gzip_request_body(cairn):
    lines = []
    for i in range(3):
        lines += [{"index": {"_index": "bulk-gzip", "_id": f"g{i}"}}, {"@timestamp": NOW, "message": f"gzipped {i}"}]
    raw = "".join(json.dumps(l) + "\n" for l in lines).encode()
    r = cairn.post(
        "/_bulk",
        data=gzip.compress(raw),
        params={"refresh": "true"},
        headers={"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["errors"] is False and [op_of(i)[1]["status"] for i in body["items"]] == [201, 201, 201], body
    assert cairn.count("bulk-gzip") == 3
    assert get_doc(cairn, "bulk-gzip", "g2").json()["_source"] == {"@timestamp": NOW, "message": "gzipped 2"}


def _ndjson_of_size(index: str, target_bytes: int, prefix: str) -> bytes:
    out = []
    size = 0
    i = 0
    filler = "x" * 900
    while size < target_bytes:
        line = json.dumps({"index": {"_index": index, "_id": f"{prefix}{i}"}}) + "\n" + json.dumps({"@timestamp": NOW, "message": filler}) + "\n"
        out.append(line)
        size += len(line)
        i += 1
    return "".join(out).encode()


def test_body_over_limit_is_413(cairn_factory):
    srv = cairn_factory(extra_args=["--max-body-size", "1mb"])
    ndjson = {"Content-Type": "application/x-ndjson"}

    small = _ndjson_of_size("bulk-limit", 900 * 1024, "s")
    r = srv.post("/_bulk", data=small, headers=ndjson, params={"refresh": "true"})
    assert r.status_code == 200 and r.json()["errors"] is False, r.text[:500]
    n_small = len(r.json()["items"])

    big = _ndjson_of_size("bulk-limit", 1536 * 1024, "b")
    status, _, body = raw_http(srv, "POST", "/_bulk?refresh=true", big, ndjson)
    assert status == 413, (status, body[:500])

    # A gzip body that inflates past the limit is refused as well (the limit bounds memory).
    bomb = gzip.compress(_ndjson_of_size("bulk-limit", 3 * 1024 * 1024, "z"))
    assert len(bomb) < 1024 * 1024
    status, _, body = raw_http(srv, "POST", "/_bulk?refresh=true", bomb, {**ndjson, "Content-Encoding": "gzip"})
    assert status == 413, (status, body[:500])

    # Nothing from the refused requests was written, and the server still takes writes.
    srv.refresh("bulk-limit")
    assert srv.count("bulk-limit") == n_small
    assert srv.get("/bulk-limit/_doc/b0").status_code == 404
    assert srv.get("/bulk-limit/_doc/z0").status_code == 404
    r = srv.bulk([{"index": {"_index": "bulk-limit", "_id": "after"}}, {"@timestamp": NOW, "m": 1}])
    assert r.status_code == 200 and r.json()["errors"] is False, r.text


def test_x_elastic_product_header(cairn):
    responses = {
        "GET /": cairn.get("/"),
        "POST /_bulk": cairn.bulk([{"index": {"_index": "bulk-hdr"}}, {"@timestamp": NOW, "m": 1}]),
        "GET /bulk-hdr/_search": cairn.get("/bulk-hdr/_search"),
        "GET /no-such-index/_search (404)": cairn.get("/no-such-index/_search"),
    }
    for what, r in responses.items():
        assert r.headers.get("X-Elastic-Product") == "Elasticsearch", f"{what}: {r.status_code} headers={dict(r.headers)}"


def test_error_shape_missing_index(cairn):
    for method, path in [
        ("GET", "/no-such-index/_search"),
        ("POST", "/no-such-index/_search"),
        ("GET", "/no-such-index/_count"),
        ("GET", "/no-such-index/_doc/1"),
        ("GET", "/no-such-index/_mapping"),
        ("GET", "/no-such-index"),
        ("DELETE", "/no-such-index"),
    ]:
        r = getattr(cairn, method.lower())(path)
        err = assert_es_error(r, 404, "index_not_found_exception")
        assert err["reason"] == "no such index [no-such-index]", (method, path, err)
        assert err.get("index") == "no-such-index", (method, path, err)
        assert err["root_cause"][0]["type"] == "index_not_found_exception", (method, path, err)


def test_index_in_path_and_content_types(cairn):
    # POST /{index}/_bulk: action lines without _index go to the path's index.
    lines = [{"index": {"_id": "p1"}}, {"@timestamp": NOW, "m": 1}, {"create": {}}, {"@timestamp": NOW, "m": 2},
             {"index": {"_index": "bulk-other", "_id": "o1"}}, {"@timestamp": NOW, "m": 3}]
    r = cairn.bulk(lines, path="/bulk-path/_bulk", params={"refresh": "wait_for"})
    assert r.status_code == 200 and r.json()["errors"] is False, r.text
    assert [op_of(i)[1]["_index"] for i in r.json()["items"]] == ["bulk-path", "bulk-path", "bulk-other"], r.text
    assert cairn.count("bulk-path") == 2 and cairn.count("bulk-other") == 1

    # Shippers send NDJSON under several content types; all are accepted.
    for i, ctype in enumerate(["application/json", "application/x-ndjson", "application/vnd.elasticsearch+x-ndjson; compatible-with=8"]):
        r = cairn.bulk([{"index": {"_id": f"ct{i}"}}, {"@timestamp": NOW, "ct": ctype}], path="/bulk-ctype/_bulk", headers={"Content-Type": ctype})
        assert r.status_code == 200 and r.json()["errors"] is False, (ctype, r.text)


def test_timestamp_window_rejects_per_item(cairn_factory):
    srv = cairn_factory(extra_args=["--max-past", "30d", "--max-future", "2d"], env={"CAIRN_NOW": "2024-05-10T12:00:00Z"})
    lines = [
        {"index": {"_index": "bulk-window", "_id": "in-window"}}, {"@timestamp": "2024-05-01T00:00:00Z", "m": 1},
        {"index": {"_index": "bulk-window", "_id": "too-old"}}, {"@timestamp": "2024-04-01T00:00:00Z", "m": 2},
        {"index": {"_index": "bulk-window", "_id": "too-new"}}, {"@timestamp": "2024-05-13T00:00:00Z", "m": 3},
        {"index": {"_index": "bulk-window", "_id": "not-a-date"}}, {"@timestamp": "yesterday-ish", "m": 4},
        {"index": {"_index": "bulk-window", "_id": "epoch-millis"}}, {"@timestamp": 1715342400000, "m": 5},
    ]
    r = srv.bulk(lines, params={"refresh": "true"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["errors"] is True
    res = {op_of(i)[1]["_id"]: op_of(i)[1] for i in body["items"]}
    assert res["in-window"]["status"] == 201 and res["epoch-millis"]["status"] == 201, res
    for bad in ["too-old", "too-new", "not-a-date"]:
        assert 400 <= res[bad]["status"] < 500, res[bad]
        assert "@timestamp" in res[bad]["error"]["reason"], res[bad]
    assert res["not-a-date"]["error"]["type"] in DOC_PARSING, res["not-a-date"]
    assert srv.count("bulk-window") == 2
