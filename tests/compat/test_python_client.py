"""The official `elasticsearch` Python client (8.x, unmodified) against Cairn's search APIs:
search, count, helpers.scan (scroll), msearch, and point in time with search_after.
Expected results come from the independent reference evaluator (reference.py)."""

from __future__ import annotations

import pytest
from elasticsearch import Elasticsearch, NotFoundError, helpers

import reference as R
from samples import APACHE_INDEX as AP, NASA_INDEX as NA

SCRATCH = "scratch-pit"  # outside compat-*, so the query cases never see it


@pytest.fixture(scope="module")
def es(compat_server):
    client = Elasticsearch(compat_server.url, request_timeout=60)
    yield client
    client.close()


def _ids(docs, query, indices):
    return {d.id for d in R.search(query, docs, indices)}


def test_client_search(es, docs):
    q = {"term": {"http.request.method": "POST"}}
    resp = es.search(index=AP, query=q, size=20)
    assert resp["hits"]["total"] == {"value": 5, "relation": "eq"}
    assert {h["_id"] for h in resp["hits"]["hits"]} == _ids(docs, q, {AP})


def test_client_search_sort_and_source(es, docs, docs_by_id):
    q = {"match": {"message": "bingbot"}}
    resp = es.search(index=AP, query=q, sort=[{"@timestamp": "desc"}], size=5, source=["url.original"])
    want = sorted(R.search(q, docs, {AP}), key=lambda d: d.ts, reverse=True)
    hits = resp["hits"]["hits"]
    assert [docs_by_id[h["_id"]].ts for h in hits] == [d.ts for d in want[:5]]
    for h in hits:
        assert h["_source"] == {"url": {"original": docs_by_id[h["_id"]].flat["url.original"]}}


def test_client_count(es, docs):
    q = {"match": {"message": "chrome windows"}}
    assert es.count(index=AP, query=q)["count"] == len(_ids(docs, q, {AP}))
    assert es.count(index="compat-*")["count"] == 10500


def test_client_search_index_not_found(es):
    with pytest.raises(NotFoundError) as ei:
        es.search(index="no-such-index", query={"match_all": {}})
    assert ei.value.meta.status == 404
    assert ei.value.error == "index_not_found_exception"


@pytest.mark.parametrize("index,query,size", [
    (NA, None, 100),
    (AP, {"range": {"@timestamp": {"gte": "now-1d/d"}}}, 500),
    (AP, {"match": {"message": "googlebot"}}, 1000),
])
def test_helpers_scan(es, docs, index, query, size):
    body = {"query": query} if query else None
    got = [h["_id"] for h in helpers.scan(es, index=index, query=body, size=size, scroll="2m")]
    assert len(got) == len(set(got)), "scan returned a document twice"
    assert set(got) == _ids(docs, query, {index})


def test_helpers_scan_preserve_order(es, docs):
    got = [h["_id"] for h in helpers.scan(es, index=NA, query={"sort": [{"@timestamp": "asc"}]}, size=64, preserve_order=True)]
    want = [d.id for d in sorted(R.search(None, docs, {NA}), key=lambda d: d.ts)]
    assert got == want


def test_scroll_and_clear(es, docs):
    resp = es.search(index=NA, scroll="1m", size=200, sort=["_doc"])
    sid = resp["_scroll_id"]
    seen = [h["_id"] for h in resp["hits"]["hits"]]
    assert resp["hits"]["total"]["value"] == 500
    while True:
        resp = es.scroll(scroll_id=sid, scroll="1m")
        if not resp["hits"]["hits"]:
            break
        seen += [h["_id"] for h in resp["hits"]["hits"]]
        sid = resp["_scroll_id"]
    assert sorted(seen) == sorted(_ids(docs, None, {NA}))
    cleared = es.clear_scroll(scroll_id=sid)
    assert cleared["succeeded"] is True
    with pytest.raises(NotFoundError):
        es.scroll(scroll_id=sid, scroll="1m")


def test_client_msearch(es, docs):
    q1 = {"term": {"http.response.status_code": 404}}
    q2 = {"match_phrase": {"message": "shuttle countdown"}}
    resp = es.msearch(searches=[
        {"index": AP}, {"query": q1, "size": 0},
        {"index": NA}, {"query": q2, "size": 100},
        {"index": "no-such-index"}, {"query": {"match_all": {}}},
        {"index": "compat-*"}, {"query": {"match_all": {}}, "size": 0, "track_total_hits": True},
    ])
    r = resp["responses"]
    assert len(r) == 4
    assert r[0]["hits"]["total"]["value"] == len(_ids(docs, q1, {AP}))
    assert {h["_id"] for h in r[1]["hits"]["hits"]} == _ids(docs, q2, {NA})
    assert r[2].get("status") == 404 and r[2]["error"]["type"] == "index_not_found_exception"
    assert r[3]["hits"]["total"] == {"value": 10500, "relation": "eq"}
    for item in (r[0], r[1], r[3]):
        assert item.get("status", 200) == 200


def test_pit_search_after_walk(es, docs):
    """open_point_in_time + search(pit=..., search_after=...) visits every NASA doc once, in order."""
    pit = es.open_point_in_time(index=NA, keep_alive="1m")["id"]
    try:
        got, after = [], None
        for _ in range(100):
            kw = {"search_after": after} if after else {}
            resp = es.search(pit={"id": pit, "keep_alive": "1m"}, sort=[{"@timestamp": "asc"}], size=45, **kw)
            hits = resp["hits"]["hits"]
            if not hits:
                break
            pit = resp.get("pit_id", pit)
            got += [h["_id"] for h in hits]
            after = hits[-1]["sort"]
        want = [d.id for d in sorted(R.search(None, docs, {NA}), key=lambda d: d.ts)]
        assert got == want
    finally:
        assert es.close_point_in_time(id=pit)["succeeded"] is True


def test_pit_search_after_with_ties(es, docs):
    """Apache 404s share timestamps: a PIT walk (implicit _shard_doc tiebreaker) still returns each once."""
    q = {"term": {"http.response.status_code": 404}}
    pit = es.open_point_in_time(index=AP, keep_alive="1m")["id"]
    try:
        got, after = [], None
        for _ in range(100):
            kw = {"search_after": after} if after else {}
            resp = es.search(pit={"id": pit, "keep_alive": "1m"}, query=q, sort=[{"@timestamp": "desc"}], size=10, **kw)
            hits = resp["hits"]["hits"]
            if not hits:
                break
            pit = resp.get("pit_id", pit)
            got += [h["_id"] for h in hits]
            after = hits[-1]["sort"]
        want = sorted(R.search(q, docs, {AP}), key=lambda d: d.ts, reverse=True)
        assert len(got) == len(set(got)) == len(want)
        by = {d.id: d for d in want}
        assert [by[i].ts for i in got] == [d.ts for d in want]
    finally:
        es.close_point_in_time(id=pit)


def test_pit_is_a_frozen_view(es):
    es.indices.create(index=SCRATCH, mappings={"properties": {"@timestamp": {"type": "date"}, "n": {"type": "long"}}})
    try:
        helpers.bulk(es, ({"_index": SCRATCH, "_id": str(i), "@timestamp": f"2015-05-20T00:00:{i:02d}Z", "n": i} for i in range(10)),
                     refresh=True)
        pit = es.open_point_in_time(index=SCRATCH, keep_alive="1m")["id"]
        try:
            es.index(index=SCRATCH, id="new", document={"@timestamp": "2015-05-20T00:01:00Z", "n": 99}, refresh=True)
            es.delete(index=SCRATCH, id="3", refresh=True)
            assert es.count(index=SCRATCH)["count"] == 10  # live view: 10 - 1 + 1
            resp = es.search(pit={"id": pit, "keep_alive": "1m"}, size=50, sort=[{"@timestamp": "asc"}])
            assert [h["_id"] for h in resp["hits"]["hits"]] == [str(i) for i in range(10)]
        finally:
            es.close_point_in_time(id=pit)
    finally:
        es.indices.delete(index=SCRATCH)


def test_pit_closed_is_gone(es):
    pit = es.open_point_in_time(index=NA, keep_alive="1m")["id"]
    es.close_point_in_time(id=pit)
    with pytest.raises(NotFoundError):
        es.search(pit={"id": pit, "keep_alive": "1m"}, size=1)
