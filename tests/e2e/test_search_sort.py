"""Sort values in a date `format`, as Kibana's Discover asks for them, and paging
with those values through `search_after`."""


def test_sort_format_and_search_after(cairn):
    lines = []
    for i, ts in enumerate(["2026-11-27T10:00:00.123Z", "2026-11-27T10:00:01Z", "2026-11-27T10:00:02Z"]):
        lines += [{"index": {"_index": "sortfmt"}}, {"@timestamp": ts, "m": i}]
    assert not cairn.bulk(lines, params={"refresh": "true"}).json()["errors"]
    sort = [{"@timestamp": {"order": "desc", "format": "strict_date_optional_time", "unmapped_type": "boolean"}}]
    r = cairn.post("/sortfmt/_search", json={"size": 2, "sort": sort})
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]["hits"]
    assert [h["sort"] for h in hits] == [["2026-11-27T10:00:02.000Z"], ["2026-11-27T10:00:01.000Z"]]
    r = cairn.post("/sortfmt/_search", json={"size": 2, "sort": sort, "search_after": hits[-1]["sort"]})
    assert [(h["_source"]["m"], h["sort"]) for h in r.json()["hits"]["hits"]] == [(0, ["2026-11-27T10:00:00.123Z"])]
    # Without a format the value is epoch milliseconds, as in Elasticsearch.
    r = cairn.post("/sortfmt/_search", json={"size": 1, "sort": [{"@timestamp": "asc"}]})
    assert r.json()["hits"]["hits"][0]["sort"] == [1795773600123]


def test_several_sort_clauses_and_paging(cairn):
    """Every clause applies in turn (Elasticsearch semantics), the hit's `sort` has one
    value per clause, and `search_after` with those values pages without gaps or
    repeats, including Kibana's `[@timestamp desc, _doc desc]`."""
    docs = []
    for i in range(30):
        docs.append({"@timestamp": f"2026-11-27T10:00:{i // 3:02d}Z", "svc": ["a", "b", "c"][i % 3], "n": i, "lat": (i * 7) % 11})
    lines = []
    for d in docs:
        lines += [{"index": {"_index": "multisort"}}, d]
    assert not cairn.bulk(lines, params={"refresh": "true"}).json()["errors"]

    def page_all(sort, size=4):
        seen, after = [], None
        while True:
            body = {"size": size, "sort": sort}
            if after is not None:
                body["search_after"] = after
            r = cairn.post("/multisort/_search", json=body)
            assert r.status_code == 200, r.text
            hits = r.json()["hits"]["hits"]
            if not hits:
                return seen
            assert all(len(h["sort"]) == len(sort) for h in hits), hits[0]["sort"]
            seen += [h["_source"] for h in hits]
            after = hits[-1]["sort"]

    got = page_all([{"svc": "asc"}, {"lat": {"order": "desc"}}, {"n": "asc"}])
    want = sorted(docs, key=lambda d: (d["svc"], -d["lat"], d["n"]))
    assert [d["n"] for d in got] == [d["n"] for d in want]
    got = page_all([{"lat": "asc"}, {"@timestamp": "desc"}, {"n": "desc"}], size=7)
    want = sorted(docs, key=lambda d: (d["lat"], -int(d["@timestamp"][17:19]), -d["n"]))
    assert [d["n"] for d in got] == [d["n"] for d in want]
    # Kibana's Discover: newest first, then _doc as the tiebreaker; every document once.
    kib = [{"@timestamp": {"order": "desc", "format": "strict_date_optional_time", "unmapped_type": "boolean"}},
           {"_doc": {"order": "desc", "unmapped_type": "boolean"}}]
    got = page_all(kib, size=4)
    assert sorted(d["n"] for d in got) == list(range(30))
    ts = [d["@timestamp"] for d in got]
    assert ts == sorted(ts, reverse=True)
    # URI sort with two clauses.
    r = cairn.get("/multisort/_search", params={"sort": "svc:desc,n:asc", "size": 3})
    assert [h["_source"]["n"] for h in r.json()["hits"]["hits"]] == [2, 5, 8]
    # search_after with the wrong number of values is a clear 400.
    r = cairn.post("/multisort/_search", json={"sort": [{"svc": "asc"}, {"n": "asc"}], "search_after": ["a", 1, 2, 3]})
    assert r.status_code == 400 and "search_after" in r.json()["error"]["reason"]


def test_terminate_after_and_timeout(cairn):
    lines = []
    for i in range(20):
        # Two days: two partitions of ten documents each.
        lines += [{"index": {"_index": "bounded"}}, {"@timestamp": f"2026-11-{26 + i % 2}T10:00:{i:02d}Z", "n": i}]
    assert not cairn.bulk(lines, params={"refresh": "true"}).json()["errors"]
    r = cairn.post("/bounded/_search", json={"terminate_after": 3, "size": 100})
    body = r.json()
    assert r.status_code == 200 and body["terminated_early"] is True
    # At most 3 documents collected per partition (Cairn's shard).
    assert body["hits"]["total"]["value"] == 6 and len(body["hits"]["hits"]) == 6
    r = cairn.get("/bounded/_search", params={"terminate_after": "50"})
    assert r.json()["terminated_early"] is False and r.json()["hits"]["total"]["value"] == 20
    assert "terminated_early" not in cairn.post("/bounded/_search", json={}).json()
    # A timeout that has passed before the first partition: partial (empty) results,
    # flagged, not an error.
    r = cairn.post("/bounded/_search", json={"timeout": "1nanos"})
    assert r.status_code == 200 and r.json()["timed_out"] is True
    r = cairn.post("/bounded/_search", json={"timeout": "30s"})
    assert r.json()["timed_out"] is False and r.json()["hits"]["total"]["value"] == 20
    r = cairn.post("/bounded/_search", json={"timeout": "soon"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "parse_exception"
    r = cairn.post("/bounded/_search", json={"terminate_after": -1})
    assert r.status_code == 400


def test_timeout_applies_to_aggregations(cairn):
    lines = []
    for i in range(10):
        lines += [{"index": {"_index": "aggtimeout"}}, {"@timestamp": f"2026-11-27T10:00:{i:02d}Z", "svc": "a"}]
    assert not cairn.bulk(lines, params={"refresh": "true"}).json()["errors"]
    aggs = {"h": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1m"}}, "t": {"terms": {"field": "svc"}}}
    r = cairn.post("/aggtimeout/_search", json={"size": 0, "aggs": aggs, "timeout": "1nanos"})
    assert r.status_code == 200 and r.json()["timed_out"] is True
    assert r.json()["aggregations"]["t"]["buckets"] == []
    r = cairn.post("/aggtimeout/_search", json={"size": 0, "aggs": aggs})
    assert r.json()["timed_out"] is False
    assert r.json()["aggregations"]["t"]["buckets"] == [{"key": "a", "doc_count": 10}]
