"""Administrative endpoints that shippers, Kibana-era tooling and operators call."""

import re

import pytest

from conftest import assert_es_error

# Time is fixed so that data stream backing index names are predictable.
CAIRN_NOW = "2024-05-10T12:00:00Z"
DAY = "2024.05.10"
TS = "2024-05-10T11:59:00.000Z"

DOC_PARSING = {"document_parsing_exception", "mapper_parsing_exception"}


@pytest.fixture
def srv(cairn_factory):
    return cairn_factory(env={"CAIRN_NOW": CAIRN_NOW})


def ok(r, status=200):
    assert r.status_code == status, f"{r.request.method} {r.url}: expected {status}, got {r.status_code}: {r.text[:1000]}"
    return r


def load(srv, index, n, start=0):
    lines = []
    for i in range(start, start + n):
        lines += [{"index": {"_index": index, "_id": f"{index}-{i}"}}, {"@timestamp": TS, "message": f"line {i}", "n": i}]
    r = ok(srv.bulk(lines, params={"refresh": "true"}))
    assert r.json()["errors"] is False, r.text


def put_ds_template(srv, name, pattern):
    r = ok(srv.put(f"/_index_template/{name}", json={"index_patterns": [pattern], "data_stream": {}, "priority": 100}))
    assert r.json() == {"acknowledged": True}


# --------------------------------------------------------------------------- _cat, health, stats


def parse_cat_table(text):
    rows = [line.split() for line in text.strip().splitlines()]
    return rows[0], rows[1:]


def test_cat_indices(srv):
    load(srv, "cat-a", 3)
    load(srv, "cat-b", 1)

    r = ok(srv.get("/_cat/indices", params={"v": "true"}))
    header, rows = parse_cat_table(r.text)
    for col in ["health", "status", "index", "uuid", "pri", "rep", "docs.count", "docs.deleted", "store.size", "pri.store.size"]:
        assert col in header, (col, header)
    by_index = {row[header.index("index")]: dict(zip(header, row)) for row in rows}
    assert by_index["cat-a"]["docs.count"] == "3", by_index
    assert by_index["cat-b"]["docs.count"] == "1", by_index
    assert by_index["cat-a"]["status"] == "open" and by_index["cat-a"]["health"] in ("green", "yellow"), by_index

    r = ok(srv.get("/_cat/indices", params={"format": "json"}))
    entries = {e["index"]: e for e in r.json()}
    assert entries["cat-a"]["docs.count"] == "3" and entries["cat-b"]["docs.count"] == "1", entries
    assert {"health", "status", "index", "uuid", "docs.count", "store.size"} <= set(entries["cat-a"]), entries["cat-a"]

    r = ok(srv.get("/_cat/indices", params={"h": "index,docs.count"}))
    rows = {tuple(line.split()) for line in r.text.strip().splitlines()}
    assert ("cat-a", "3") in rows and ("cat-b", "1") in rows, r.text
    assert all(len(row) == 2 for row in rows), r.text

    r = ok(srv.get("/_cat/indices", params={"h": "index,docs.count", "format": "json"}))
    assert sorted((e["index"], e["docs.count"]) for e in r.json() if e["index"].startswith("cat-")) == [("cat-a", "3"), ("cat-b", "1")]
    assert all(set(e) == {"index", "docs.count"} for e in r.json()), r.json()

    r = ok(srv.get("/_cat/indices/cat-a", params={"format": "json", "h": "index,docs.count"}))
    assert r.json() == [{"index": "cat-a", "docs.count": "3"}], r.json()


def test_stats(srv):
    load(srv, "stats-a", 4)
    body = ok(srv.get("/stats-a/_stats")).json()
    assert body["_all"]["primaries"]["docs"]["count"] == 4, body["_all"]
    assert body["indices"]["stats-a"]["primaries"]["docs"]["count"] == 4, body["indices"]
    assert body["indices"]["stats-a"]["primaries"]["store"]["size_in_bytes"] > 0, body["indices"]


def test_cluster_health_and_cat_health(srv):
    body = ok(srv.get("/_cluster/health")).json()
    assert body["status"] in ("green", "yellow"), body
    assert body["timed_out"] is False, body
    assert body["number_of_nodes"] == 1 and body["number_of_data_nodes"] == 1, body
    assert isinstance(body["cluster_name"], str) and body["cluster_name"], body
    for key in ["active_primary_shards", "active_shards", "relocating_shards", "initializing_shards", "unassigned_shards"]:
        assert isinstance(body.get(key), int), (key, body)

    rows = ok(srv.get("/_cat/health", params={"format": "json"})).json()
    assert len(rows) == 1 and rows[0]["status"] in ("green", "yellow"), rows
    header, rows = parse_cat_table(ok(srv.get("/_cat/health", params={"v": "true"})).text)
    assert "status" in header and len(rows) == 1, (header, rows)


def test_license_and_xpack(srv):
    lic = ok(srv.get("/_license")).json()["license"]
    assert lic["status"] == "active", lic
    assert isinstance(lic["type"], str) and lic["type"], lic
    assert isinstance(lic["uid"], str) and lic["uid"], lic

    xp = ok(srv.get("/_xpack")).json()
    assert xp["license"]["status"] == "active", xp
    assert isinstance(xp["features"], dict), xp
    assert isinstance(xp.get("build"), dict), xp


# --------------------------------------------------------------------------- ILM and templates


def test_ilm_policy_crud(srv):
    policy = {
        "policy": {
            "phases": {
                "hot": {"actions": {"rollover": {"max_age": "1d", "max_primary_shard_size": "50gb"}}},
                "delete": {"min_age": "30d", "actions": {"delete": {}}},
            }
        }
    }
    assert ok(srv.put("/_ilm/policy/x", json=policy)).json() == {"acknowledged": True}
    got = ok(srv.get("/_ilm/policy/x")).json()
    assert list(got) == ["x"], got
    assert got["x"]["version"] == 1, got
    assert isinstance(got["x"]["modified_date"], str), got
    phases = got["x"]["policy"]["phases"]
    assert phases["delete"]["min_age"] == "30d" and "delete" in phases["delete"]["actions"], phases
    assert phases["hot"]["actions"]["rollover"]["max_age"] == "1d", phases

    # Updating bumps the version.
    policy["policy"]["phases"]["delete"]["min_age"] = "60d"
    assert ok(srv.put("/_ilm/policy/x", json=policy)).json() == {"acknowledged": True}
    got = ok(srv.get("/_ilm/policy/x")).json()
    assert got["x"]["version"] == 2 and got["x"]["policy"]["phases"]["delete"]["min_age"] == "60d", got

    assert "x" in ok(srv.get("/_ilm/policy")).json()

    assert ok(srv.delete("/_ilm/policy/x")).json() == {"acknowledged": True}
    assert_es_error(srv.get("/_ilm/policy/x"), 404, "resource_not_found_exception")
    assert_es_error(srv.delete("/_ilm/policy/x"), 404, "resource_not_found_exception")


def test_legacy_template(srv):
    tpl = {
        "index_patterns": ["legacy-*"],
        "order": 1,
        "settings": {"number_of_shards": 1},
        "mappings": {"properties": {"code": {"type": "long"}, "svc": {"type": "keyword"}}},
    }
    assert ok(srv.put("/_template/legacy-x", json=tpl)).json() == {"acknowledged": True}
    got = ok(srv.get("/_template/legacy-x")).json()
    assert got["legacy-x"]["index_patterns"] == ["legacy-*"], got
    assert got["legacy-x"]["order"] == 1, got
    assert got["legacy-x"]["mappings"]["properties"] == tpl["mappings"]["properties"], got
    assert ok(srv.head("/_template/legacy-x")).status_code == 200

    # A new index that matches picks the template's mappings up.
    r = ok(srv.bulk([{"index": {"_index": "legacy-1", "_id": "1"}}, {"@timestamp": TS, "code": 7, "svc": "api"}], params={"refresh": "true"}))
    assert r.json()["errors"] is False, r.text
    props = ok(srv.get("/legacy-1/_mapping")).json()["legacy-1"]["mappings"]["properties"]
    assert props["code"] == {"type": "long"} and props["svc"] == {"type": "keyword"}, props
    r = ok(srv.post("/legacy-1/_search", json={"query": {"range": {"code": {"gte": 5, "lte": 8}}}}))
    assert r.json()["hits"]["total"]["value"] == 1, r.text
    # ... and a string in the long field is refused.
    r = ok(srv.bulk([{"index": {"_index": "legacy-1", "_id": "2"}}, {"@timestamp": TS, "code": "seven"}]))
    item = r.json()["items"][0]["index"]
    assert item["status"] == 400 and item["error"]["type"] in DOC_PARSING, item

    assert ok(srv.delete("/_template/legacy-x")).json() == {"acknowledged": True}
    assert srv.head("/_template/legacy-x").status_code == 404
    assert srv.get("/_template/legacy-x").status_code == 404


# --------------------------------------------------------------------------- names and wildcards


def test_delete_with_wildcard_is_refused(srv):
    load(srv, "logs-a", 1)
    load(srv, "logs-b", 1)
    for path in ["/logs-*", "/_all", "/*"]:
        err = assert_es_error(srv.delete(path), 400, "illegal_argument_exception")
        assert "wildcard" in err["reason"].lower() or "_all" in err["reason"], (path, err)
    assert ok(srv.head("/logs-a")).status_code == 200
    assert ok(srv.head("/logs-b")).status_code == 200
    assert srv.count("logs-a") == 1

    # By its exact name, it works.
    assert ok(srv.delete("/logs-a")).json() == {"acknowledged": True}
    assert srv.head("/logs-a").status_code == 404
    assert srv.head("/logs-b").status_code == 200


def test_resolve_index(srv):
    load(srv, "logs-a", 1)
    load(srv, "logs-b", 1)
    load(srv, "other-x", 1)
    put_ds_template(srv, "ds-tpl", "logs-ds-*")
    r = ok(srv.bulk([{"create": {"_index": "logs-ds-test"}}, {"@timestamp": TS, "message": "x"}]))
    assert r.json()["errors"] is False, r.text

    body = ok(srv.get("/_resolve/index/logs-*")).json()
    # Backing indices are hidden: a wildcard does not list them among the indices.
    assert [i["name"] for i in body["indices"]] == ["logs-a", "logs-b"], body
    assert all("open" in i["attributes"] for i in body["indices"]), body
    assert body["aliases"] == [], body
    assert body["data_streams"] == [
        {"name": "logs-ds-test", "backing_indices": [f".ds-logs-ds-test-{DAY}-000001"], "timestamp_field": "@timestamp"}
    ], body

    body = ok(srv.get("/_resolve/index/other-x")).json()
    assert [i["name"] for i in body["indices"]] == ["other-x"] and body["data_streams"] == [], body


# --------------------------------------------------------------------------- data streams


def test_data_stream_writes(srv):
    tpl = {
        "index_patterns": ["logs-dsx-*"],
        "data_stream": {},
        "priority": 100,
        "template": {
            "settings": {"index.cairn.retention": "14d"},
            "mappings": {"properties": {"level": {"type": "keyword"}, "latency_ms": {"type": "long"}}},
        },
    }
    assert ok(srv.put("/_index_template/dsx-template", json=tpl)).json() == {"acknowledged": True}
    ds = "logs-dsx-default"
    backing = f".ds-{ds}-{DAY}-000001"

    r = ok(srv.bulk([{"create": {"_index": ds}}, {"@timestamp": TS, "message": "first"}]))
    body = r.json()
    assert body["errors"] is False, body
    item = body["items"][0]["create"]
    assert item["status"] == 201 and item["_index"] == backing, item

    r = ok(srv.bulk([
        {"index": {"_index": ds, "_id": "with-index-op"}}, {"@timestamp": TS, "message": "index op"},
        {"create": {"_index": ds}}, {"message": "no timestamp"},
        {"create": {"_index": ds, "_id": "second"}}, {"@timestamp": TS, "message": "second"},
    ]))
    body = r.json()
    assert body["errors"] is True, body
    index_op, no_ts, second = [list(i.values())[0] for i in body["items"]]
    assert index_op["status"] == 400 and index_op["error"]["type"] == "illegal_argument_exception", index_op
    assert "create" in index_op["error"]["reason"], index_op
    assert no_ts["status"] == 400 and no_ts["error"]["type"] in DOC_PARSING, no_ts
    assert "@timestamp" in no_ts["error"]["reason"], no_ts
    assert second["status"] == 201 and second["_index"] == backing, second

    # The document APIs follow the same rule: PUT _doc/{id} is an index op and is refused,
    # _create/{id} works, and POST _doc (auto id) is a create (ES "Use a data stream" docs).
    assert_es_error(srv.put(f"/{ds}/_doc/x", json={"@timestamp": TS, "m": 1}), 400, "illegal_argument_exception")
    r = ok(srv.put(f"/{ds}/_create/third", json={"@timestamp": TS, "message": "third"}), 201)
    assert r.json()["_index"] == backing and r.json()["result"] == "created", r.text
    r = ok(srv.post(f"/{ds}/_doc", json={"@timestamp": TS, "message": "fourth", "level": "warn", "latency_ms": 7}), 201)
    assert r.json()["_index"] == backing and r.json()["result"] == "created", r.text

    # The backing index got the template's mappings and settings.
    index = ok(srv.get(f"/{backing}")).json()[backing]
    props = index["mappings"]["properties"]
    assert props.get("level") == {"type": "keyword"} and props.get("latency_ms") == {"type": "long"}, props
    assert props.get("@timestamp", {}).get("type") == "date", props
    assert index["settings"]["index"].get("cairn", {}).get("retention") == "14d", index["settings"]

    streams = ok(srv.get(f"/_data_stream/{ds}")).json()["data_streams"]
    assert len(streams) == 1, streams
    s = streams[0]
    assert s["name"] == ds and s["generation"] == 1 and s["template"] == "dsx-template", s
    assert s["timestamp_field"] == {"name": "@timestamp"}, s
    assert [i["index_name"] for i in s["indices"]] == [backing], s

    srv.refresh(ds)
    assert srv.count(ds) == 4
    hits = ok(srv.post(f"/{ds}/_search", json={"query": {"match_all": {}}})).json()["hits"]["hits"]
    assert {h["_index"] for h in hits} == {backing}, hits
    assert sorted(h["_source"]["message"] for h in hits) == ["first", "fourth", "second", "third"]
    assert ok(srv.get(f"/{backing}/_doc/second")).json()["_source"]["message"] == "second"


# --------------------------------------------------------------------------- metrics


def ingested_docs(text: str) -> float:
    """The server-wide ingested-documents counter (Prometheus text format).

    Of the counter families named like *ingest*doc*, the one with an unlabelled sample is
    the total (per-index families carry an `index` label)."""
    counters = set(re.findall(r"(?m)^# TYPE (\S+) counter$", text))
    families = [c for c in counters if re.search(r"doc", c) and re.search(r"ingest", c)]
    assert families, f"no ingested-docs counter among {sorted(counters)}"
    totals = []
    for fam in families:
        samples = re.findall(rf"(?m)^{re.escape(fam)}(\{{[^}}]*\}})?\s+(\S+)$", text)
        totals += [float(v) for labels, v in samples if not labels]
    assert len(totals) == 1, f"expected one unlabelled ingested-docs total among {families}, found {totals}"
    return totals[0]


def test_metrics(srv):
    r = ok(srv.get("/_cairn/metrics"))
    assert r.headers["Content-Type"].startswith("text/plain"), r.headers
    assert ingested_docs(r.text) == 0

    load(srv, "metrics-a", 7)
    assert ingested_docs(ok(srv.get("/_cairn/metrics")).text) == 7

    load(srv, "metrics-b", 3)
    text = ok(srv.get("/_cairn/metrics")).text
    assert ingested_docs(text) == 10


def test_catch_all_template_skips_internal_indices(cairn):
    """A user's `*` template (retention, mappings) must not reach Cairn's internal
    `.cairn-*` indices (UI objects, alert state), as Elasticsearch keeps global
    templates off hidden indices; a template naming dot-indices explicitly still does."""
    r = cairn.put("/_index_template/catchall", json={
        "index_patterns": ["*"],
        "template": {"settings": {"index.cairn.retention": "1d"}, "mappings": {"properties": {"zz": {"type": "long"}}}},
    })
    assert r.status_code == 200, r.text
    assert cairn.put("/logs-tpl").status_code == 200
    assert cairn.put("/.cairn-tpl").status_code == 200
    user = cairn.get("/logs-tpl/_settings").json()["logs-tpl"]["settings"]["index"]
    internal = cairn.get("/.cairn-tpl/_settings").json()[".cairn-tpl"]["settings"]["index"]
    assert user.get("cairn", {}).get("retention") == "1d", user
    assert "retention" not in internal.get("cairn", {}), internal
    assert "zz" not in cairn.get("/.cairn-tpl/_mapping").json()[".cairn-tpl"]["mappings"].get("properties", {})
    r = cairn.put("/_index_template/dots", json={"index_patterns": [".cairn-x*"], "priority": 5,
                                                  "template": {"settings": {"index.cairn.retention": "7d"}}})
    assert r.status_code == 200
    assert cairn.put("/.cairn-xyz").status_code == 200
    assert cairn.get("/.cairn-xyz/_settings").json()[".cairn-xyz"]["settings"]["index"]["cairn"]["retention"] == "7d"
