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
