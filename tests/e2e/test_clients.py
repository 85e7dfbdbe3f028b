"""The official, unmodified Python clients against `cairn serve`.

`elasticsearch` 8.x refuses any 2xx response without `X-Elastic-Product: Elasticsearch`,
and sends `application/vnd.elasticsearch+json; compatible-with=8` as its content type, so
these tests also check that Cairn passes the client's product check.
"""

from datetime import datetime, timedelta, timezone

import pytest
from elasticsearch import Elasticsearch
from elasticsearch import helpers as es_helpers
from opensearchpy import OpenSearch
from opensearchpy import helpers as os_helpers


def ts(minutes_ago: int = 0) -> str:
    t = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


MAPPINGS = {
    "properties": {
        "@timestamp": {"type": "date"},
        "status": {"type": "long"},
        "host": {"type": "keyword"},
        "message": {"type": "text"},
    }
}


@pytest.fixture
def es(cairn):
    client = Elasticsearch(cairn.url, request_timeout=30, max_retries=0)
    yield client
    client.close()


@pytest.fixture
def osc(cairn):
    client = OpenSearch(hosts=[cairn.url], timeout=30, max_retries=0)
    yield client
    client.close()


# --------------------------------------------------------------------------- elasticsearch


def test_es_info(es):
    info = es.info()
    assert info["version"]["number"].startswith("8."), info
    assert info.get("cluster_name"), info
    assert info.get("tagline") == "You Know, for Search", info


def test_es_index_get_bulk_count(es):
    doc = {"@timestamp": ts(5), "message": "first doc", "host": "web-1"}
    r = es.index(index="client-es", id="first", document=doc)
    assert r["result"] == "created", r
    assert r["_id"] == "first" and r["_index"] == "client-es" and r["_version"] == 1, r

    # Realtime get: visible by id before any refresh.
    got = es.get(index="client-es", id="first")
    assert got["found"] is True
    assert got["_source"] == doc

    actions = [
        {"_index": "client-es", "_id": f"b{i}", "_source": {"@timestamp": ts(i), "message": f"bulk line {i}", "host": f"web-{i % 3}", "status": 200 + i}}
        for i in range(250)
    ]
    ok, errors = es_helpers.bulk(es, actions, chunk_size=100)
    assert ok == 250 and errors == [], (ok, errors)

    es.indices.refresh(index="client-es")
    assert es.count(index="client-es")["count"] == 251

    got = es.get(index="client-es", id="b42")
    assert got["_source"]["message"] == "bulk line 42"
    assert got["_source"]["status"] == 242

    res = es.search(index="client-es", query={"term": {"host": "web-1"}}, size=0, track_total_hits=True)
    # b1, b4, ..., b249 (83 docs) plus "first".
    assert res["hits"]["total"] == {"value": 84, "relation": "eq"}, res["hits"]["total"]

    res = es.search(index="client-es", query={"match": {"message": "first"}}, sort=[{"@timestamp": "desc"}])
    assert [h["_id"] for h in res["hits"]["hits"]] == ["first"], res


def test_es_create_with_mappings_get_mapping_exists(es):
    r = es.indices.create(index="client-es-mapped", mappings=MAPPINGS)
    assert r["acknowledged"] is True and r["index"] == "client-es-mapped", r
    m = es.indices.get_mapping(index="client-es-mapped")
    assert m.body == {"client-es-mapped": {"mappings": MAPPINGS}}, m.body
    assert es.indices.exists(index="client-es-mapped")
    assert not es.indices.exists(index="client-es-missing")


# --------------------------------------------------------------------------- opensearch-py


def test_opensearch_info(osc):
    info = osc.info()
    assert info["version"]["number"].startswith("8."), info
    assert info.get("cluster_name"), info


def test_opensearch_index_get_bulk_count(osc):
    r = osc.index(index="client-os", id="first", body={"@timestamp": ts(5), "message": "first doc", "host": "web-1"})
    assert r["result"] == "created", r

    got = osc.get(index="client-os", id="first")
    assert got["found"] is True and got["_source"]["message"] == "first doc", got

    actions = [
        {"_index": "client-os", "_id": f"b{i}", "_source": {"@timestamp": ts(i), "message": f"bulk line {i}", "host": f"web-{i % 3}"}}
        for i in range(120)
    ]
    ok, errors = os_helpers.bulk(osc, actions, chunk_size=50)
    assert ok == 120 and errors == [], (ok, errors)

    osc.indices.refresh(index="client-os")
    assert osc.count(index="client-os")["count"] == 121
    assert osc.get(index="client-os", id="b7")["_source"]["message"] == "bulk line 7"


def test_opensearch_create_with_mappings_get_mapping_exists(osc):
    r = osc.indices.create(index="client-os-mapped", body={"mappings": MAPPINGS})
    assert r["acknowledged"] is True, r
    m = osc.indices.get_mapping(index="client-os-mapped")
    assert m == {"client-os-mapped": {"mappings": MAPPINGS}}, m
    assert osc.indices.exists(index="client-os-mapped") is True
    assert osc.indices.exists(index="client-os-missing") is False


# --------------------------------------------------------------------------- real sample data


def nginx_docs():
    """The nginx access log sample (tests/data/NOTICE.md), one document per line."""
    import re

    from conftest import DATA_DIR

    docs = []
    for n, line in enumerate((DATA_DIR / "web-access" / "nginx-access_access.log").read_text().splitlines()):
        m = re.search(r"\[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]", line)
        t = datetime.strptime(m.group(1), "%d/%b/%Y:%H:%M:%S %z")
        docs.append({"_id": f"line-{n}", "@timestamp": t.isoformat(), "message": line})
    return docs


def test_es_real_access_log_search(cairn_factory):
    # "now" just after the sample's last line, so the 2016 lines are inside --max-past on any day.
    srv = cairn_factory(env={"CAIRN_NOW": "2020-06-10T00:00:00Z"})
    es = Elasticsearch(srv.url, request_timeout=30, max_retries=0)
    docs = nginx_docs()
    assert len(docs) == 14
    actions = [{"_index": "client-nginx", "_id": d["_id"], "_source": {"@timestamp": d["@timestamp"], "message": d["message"]}} for d in docs]
    ok, errors = es_helpers.bulk(es, actions, refresh=True)
    assert ok == 14 and errors == []

    assert es.count(index="client-nginx")["count"] == 14
    firefox = es.search(index="client-nginx", query={"match": {"message": "firefox"}}, sort=[{"@timestamp": "desc"}])
    assert firefox["hits"]["total"]["value"] == 3
    # Newest first: 11:05:07, 11:04:59, 11:04:58 on 7 Dec 2016 (+01:00).
    assert [h["_id"] for h in firefox["hits"]["hits"]] == ["line-11", "line-10", "line-9"]
    assert firefox["hits"]["hits"][0]["_source"]["message"] == docs[11]["message"]

    chrome = es.count(index="client-nginx", query={"match": {"message": "Chrome"}})
    assert chrome["count"] == 11

    dec7 = es.count(index="client-nginx", query={"range": {"@timestamp": {"gte": "2016-12-07T00:00:00Z", "lt": "2016-12-08T00:00:00Z"}}})
    assert dec7["count"] == 9

    both = es.count(
        index="client-nginx",
        query={"bool": {"must": [{"match": {"message": "firefox"}}], "filter": [{"range": {"@timestamp": {"lt": "2016-12-07T10:04:59Z"}}}]}},
    )
    # 11:04:58+01:00 is 10:04:58Z: only that one.
    assert both["count"] == 1


def test_es_filter_path_and_pretty(es, cairn):
    """`filter_path` as the official client sends it (a list joined with commas), on
    `_bulk` the way shippers filter it, on search with `*`, `**` and exclusions, on an
    error; `pretty` reformats without changing the content."""
    ops = [
        {"create": {"_index": "fp", "_id": "1"}}, {"@timestamp": ts(), "host": "a", "status": 200},
        {"create": {"_index": "fp", "_id": "1"}}, {"@timestamp": ts(), "host": "b", "status": 500},
    ]
    r = es.bulk(operations=ops, refresh=True, filter_path=["errors", "items.*.error", "items.*.status"])
    assert r["errors"] is True
    assert r["items"][0] == {"create": {"status": 201}}
    assert r["items"][1]["create"]["status"] == 409
    assert r["items"][1]["create"]["error"]["type"] == "version_conflict_engine_exception"
    assert set(r.body) == {"errors", "items"}

    hits = es.search(index="fp", filter_path=["hits.hits._id", "hits.hits._source.h*"])
    assert hits.body == {"hits": {"hits": [{"_id": "1", "_source": {"host": "a"}}]}}
    deep = es.search(index="fp", filter_path="**.status,-**._shards")
    assert deep.body == {"hits": {"hits": [{"_source": {"status": 200}}]}}
    nothing = es.search(index="fp", filter_path="no.such.path")
    assert nothing.body == {}

    err = cairn.get("/missing-index/_search", params={"filter_path": "status,error.type"})
    assert err.status_code == 404
    assert err.json() == {"error": {"type": "index_not_found_exception"}, "status": 404}

    pretty = cairn.get("/fp/_count", params={"pretty": "true"})
    assert pretty.text.startswith("{\n") and pretty.json()["count"] == 1
