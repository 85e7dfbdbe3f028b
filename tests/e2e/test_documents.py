"""Single-document APIs, index management and search basics, per the Elasticsearch 8 docs."""

from datetime import datetime, timedelta, timezone

from conftest import assert_es_error

BASE = datetime(2024, 5, 10, 12, 0, tzinfo=timezone.utc)
ENV = {"CAIRN_NOW": "2024-05-10T12:30:00Z"}


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_document_crud(cairn_factory):
    srv = cairn_factory(env=ENV)
    r = srv.put("/docs/_doc/1", json={"@timestamp": iso(BASE), "v": 1})
    assert r.status_code == 201, r.text
    assert r.json()["result"] == "created" and r.json()["_version"] == 1, r.text

    r = srv.put("/docs/_doc/1", json={"@timestamp": iso(BASE), "v": 2})
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "updated" and r.json()["_version"] == 2, r.text

    err = assert_es_error(srv.put("/docs/_create/1", json={"@timestamp": iso(BASE), "v": 3}), 409, "version_conflict_engine_exception")
    assert "[1]" in err["reason"], err

    r = srv.get("/docs/_doc/1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["found"] is True and body["_source"] == {"@timestamp": iso(BASE), "v": 2} and body["_version"] == 2, body

    assert srv.head("/docs/_doc/1").status_code == 200
    assert srv.head("/docs/_doc/nope").status_code == 404
    r = srv.get("/docs/_doc/nope")
    assert r.status_code == 404 and r.json() == {"_index": "docs", "_id": "nope", "found": False}, r.text

    r = srv.delete("/docs/_doc/1")
    assert r.status_code == 200 and r.json()["result"] == "deleted", r.text
    r = srv.delete("/docs/_doc/1")
    assert r.status_code == 404 and r.json()["result"] == "not_found", r.text
    assert srv.get("/docs/_doc/1").status_code == 404

    # refresh=wait_for: searchable when the call returns.
    r = srv.post("/docs/_doc", params={"refresh": "wait_for"}, json={"@timestamp": iso(BASE), "v": 9})
    assert r.status_code == 201, r.text
    new_id = r.json()["_id"]
    r = srv.post("/docs/_search", json={"query": {"term": {"v": 9}}})
    assert r.status_code == 200 and [h["_id"] for h in r.json()["hits"]["hits"]] == [new_id], r.text


def test_index_management(cairn_factory):
    srv = cairn_factory(env=ENV)
    r = srv.put("/mgmt", json={"mappings": {"properties": {"status": {"type": "long"}}}})
    assert r.status_code == 200 and r.json() == {"acknowledged": True, "shards_acknowledged": True, "index": "mgmt"}, r.text
    assert_es_error(srv.put("/mgmt"), 400, "resource_already_exists_exception")
    assert_es_error(srv.put("/Upper-Case"), 400, "invalid_index_name_exception")
    assert srv.head("/mgmt").status_code == 200
    assert srv.head("/nope").status_code == 404

    r = srv.put("/mgmt/_mapping", json={"properties": {"host": {"type": "keyword"}}})
    assert r.status_code == 200 and r.json() == {"acknowledged": True}, r.text
    props = srv.get("/mgmt/_mapping").json()["mgmt"]["mappings"]["properties"]
    assert props == {"status": {"type": "long"}, "host": {"type": "keyword"}}, props
    err = assert_es_error(srv.put("/mgmt/_mapping", json={"properties": {"status": {"type": "keyword"}}}), 400, "illegal_argument_exception")
    assert "status" in err["reason"], err

    r = srv.post("/mgmt/_flush")
    assert r.status_code == 200 and r.json()["_shards"]["failed"] == 0, r.text

    assert srv.delete("/mgmt").json() == {"acknowledged": True}
    assert srv.head("/mgmt").status_code == 404
    # Recreating the name starts empty.
    assert srv.put("/mgmt").status_code == 200
    assert srv.get("/mgmt/_mapping").json()["mgmt"]["mappings"] in ({}, {"properties": {}})


def test_nodes(cairn):
    r = cairn.get("/_nodes")
    assert r.status_code == 200, r.text
    nodes = r.json()["nodes"]
    assert len(nodes) == 1, nodes
    node = next(iter(nodes.values()))
    assert node["version"].startswith("8."), node
    assert "http" in node and node["http"]["publish_address"], node


def load_events(srv, index, n):
    lines = []
    for i in range(n):
        lines += [{"index": {"_index": index, "_id": f"e{i}"}}, {"@timestamp": iso(BASE - timedelta(minutes=i)), "i": i, "kind": "even" if i % 2 == 0 else "odd", "message": f"event number {i}"}]
    r = srv.bulk(lines, params={"refresh": "true"})
    assert r.status_code == 200 and r.json()["errors"] is False, r.text


def test_search_sort_paging_and_queries(cairn_factory):
    srv = cairn_factory(env=ENV)
    load_events(srv, "events", 30)

    r = srv.post("/events/_search", json={"query": {"match_all": {}}, "sort": [{"@timestamp": "desc"}], "size": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["hits"]["total"] == {"value": 30, "relation": "eq"}, body["hits"]["total"]
    assert [h["_id"] for h in body["hits"]["hits"]] == ["e0", "e1", "e2", "e3", "e4"]
    assert body["hits"]["hits"][0]["sort"] == [int(BASE.timestamp() * 1000)], body["hits"]["hits"][0]
    assert body["_shards"]["failed"] == 0 and body["timed_out"] is False

    r = srv.post("/events/_search", json={"sort": [{"@timestamp": {"order": "asc"}}], "size": 3, "from": 2})
    assert [h["_id"] for h in r.json()["hits"]["hits"]] == ["e27", "e26", "e25"], r.text

    r = srv.get("/events/_search", params={"q": "kind:odd", "size": 0})
    assert r.status_code == 200 and r.json()["hits"]["total"]["value"] == 15, r.text

    q = {"bool": {"filter": [{"term": {"kind": "even"}}, {"range": {"@timestamp": {"gte": iso(BASE - timedelta(minutes=9))}}}], "must_not": [{"term": {"i": 4}}]}}
    r = srv.post("/events/_search", json={"query": q, "size": 20, "sort": [{"@timestamp": "desc"}]})
    assert [h["_id"] for h in r.json()["hits"]["hits"]] == ["e0", "e2", "e6", "e8"], r.text

    r = srv.post("/events/_count", json={"query": {"match": {"message": "number"}}})
    assert r.json()["count"] == 30, r.text
    r = srv.post("/events/_count", json={"query": {"range": {"i": {"gte": 10, "lt": 20}}}})
    assert r.json()["count"] == 10, r.text

    err = assert_es_error(srv.post("/events/_search", json={"query": {"no_such_query": {}}}), 400, {"parsing_exception", "x_content_parse_exception"})
    assert "no_such_query" in err["reason"], err


def test_delete_by_query(cairn_factory):
    srv = cairn_factory(env=ENV)
    load_events(srv, "dbq", 20)
    r = srv.post("/dbq/_delete_by_query", params={"refresh": "true"}, json={"query": {"term": {"kind": "odd"}}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["deleted"] == 10 and body["total"] == 10 and body["failures"] == [], body
    assert srv.count("dbq") == 10
    assert srv.get("/dbq/_doc/e1").status_code == 404
    assert srv.get("/dbq/_doc/e2").status_code == 200
    # And after a restart, the deletes hold.
    srv.restart()
    assert srv.count("dbq") == 10
    assert srv.get("/dbq/_doc/e1").status_code == 404


def test_source_is_returned_as_sent(cairn):
    """`_source` comes back exactly as sent (DESIGN: kept as sent; ES returns the original),
    also for a document without @timestamp, which Cairn places by its ingest time."""
    docs = {
        "no-ts": {"a": 2, "b": {"c": [1, 2, 3], "d": None}},
        "with-ts": {"z": "last key first", "@timestamp": "2024-05-10T12:00:00Z", "ünï": "cödé ✓", "f": 1.5, "neg": -3},
    }
    for id_, doc in docs.items():
        r = cairn.put(f"/src/_doc/{id_}", json=doc)
        assert r.status_code == 201, r.text
    for id_, doc in docs.items():
        got = cairn.get(f"/src/_doc/{id_}").json()["_source"]
        assert list(got.items()) == list(doc.items()), f"GET {id_}: sent {doc}, got {got}"
    cairn.refresh("src")
    hits = cairn.post("/src/_search", json={"query": {"match_all": {}}}).json()["hits"]["hits"]
    for h in hits:
        assert list(h["_source"].items()) == list(docs[h["_id"]].items()), f"search {h['_id']}: sent {docs[h['_id']]}, got {h['_source']}"
    assert len(hits) == 2
