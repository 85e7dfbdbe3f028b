"""Search compatibility suite: Elasticsearch 8 query DSL, search options and aggregations
over real sample logs, each checked against `reference.py` (an independent evaluator that
imports nothing from Cairn).

A query case sends its query to `_search` (exact total, ids when the result is small) and to
`_count`. Cases written in a query language (query_string, simple_query_string, KQL) carry a
hand-written DSL equivalent (`expect=`) that the reference evaluates instead.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
import requests

import reference as R
import samples
from samples import APACHE_INDEX as AP, NASA_INDEX as NA

BOTH = "compat-*"
SMALL = 200  # results up to this size are compared id by id
AGG_PENDING_MARK = "aggregations pending"


# ============================================================================== query cases

class Case:
    def __init__(self, id, query, *, index=AP, expect=None, params=None):
        self.id = id
        self.query = query
        self.index = index
        self.expect = expect  # DSL equivalent for the reference (query languages)
        self.params = params or {}

    def reference_query(self):
        return self.expect if self.expect is not None else self.query

    def indices(self):
        return {AP, NA} if self.index == BOTH else {self.index}


def C(*a, **kw):
    c = Case(*a, **kw)
    return pytest.param(c, id=c.id)


def term(f, v):
    return {"term": {f: v}}


def match(f, v, **o):
    return {"match": {f: dict(query=v, **o) if o else v}}


def rng(f, **o):
    return {"range": {f: o}}


def bool_(**o):
    return {"bool": o}


M = "message"
METHOD = "http.request.method"
STATUS = "http.response.status_code"
BYTES = "http.response.body.bytes"
URL = "url.original"
IP = "source.ip"
UA = "user_agent.original"
REF = "http.request.referrer"
TS = "@timestamp"

QUERY_CASES = [
    # --- match_all / match_none
    C("match_all", {"match_all": {}}),
    C("match_all-both-indices", {"match_all": {}}, index=BOTH),
    C("match_all-nasa", {"match_all": {}}, index=NA),
    C("match_none", {"match_none": {}}),
    C("no-query", None),
    # --- term
    C("term-keyword", term(METHOD, "POST")),
    C("term-keyword-case-sensitive", term(METHOD, "post")),
    C("term-keyword-case_insensitive", {"term": {METHOD: {"value": "post", "case_insensitive": True}}}),
    C("term-long", term(STATUS, 404)),
    C("term-long-as-string", term(STATUS, "404")),
    C("term-text-token", term(M, "googlebot")),
    C("term-text-not-analyzed", term(M, "Googlebot")),
    C("term-url", term(URL, "/favicon.ico")),
    C("term-ip-keyword", term(IP, "83.149.9.216")),
    C("term-date", term(TS, "2015-05-17T10:05:03Z")),
    C("term-version", term("http.version", "1.0")),
    C("term-version-nasa", term("http.version", "1.0"), index=NA),
    C("term-_index", term("_index", NA), index=BOTH),
    C("term-boost", {"term": {METHOD: {"value": "HEAD", "boost": 2.0}}}),
    C("term-no-match", term(URL, "/no/such/page")),
    C("term-unmapped-field", term("no.such.field", "x")),
    # --- terms
    C("terms-keyword", {"terms": {METHOD: ["POST", "OPTIONS", "HEAD"]}}),
    C("terms-long", {"terms": {STATUS: [500, 403, 416]}}),
    C("terms-ip", {"terms": {IP: ["66.249.73.135", "46.105.14.53"]}}),
    C("terms-text", {"terms": {M: ["wget", "curl"]}}),
    C("terms-url", {"terms": {URL: ["/reset.css", "/style2.css"]}}),
    C("terms-both-indices", {"terms": {STATUS: [404, 304]}}, index=BOTH),
    # --- range
    C("range-long-gte-lt", rng(STATUS, gte=400, lt=500)),
    C("range-long-gt-lte", rng(STATUS, gt=400, lte=500)),
    C("range-long-gte", rng(STATUS, gte=500)),
    C("range-bytes-lt", rng(BYTES, lt=100)),
    C("range-bytes-gte-big", rng(BYTES, gte=1000000)),
    C("range-long-strings", rng(STATUS, gte="400", lte="499")),
    C("range-empty", rng(STATUS, gt=600)),
    C("range-legacy-from-to", {"range": {BYTES: {"from": 1000, "to": 2000, "include_lower": True, "include_upper": False}}}),
    C("range-keyword", rng(IP, gte="200", lt="201")),
    C("range-date-iso", rng(TS, gte="2015-05-18T00:00:00Z", lt="2015-05-19T00:00:00Z")),
    C("range-date-offset-in-value", rng(TS, gte="2015-05-18T10:00:00+02:00", lt="2015-05-18T12:00:00+02:00")),
    C("range-date-epoch-millis", rng(TS, gte=1431907200000, lt=1431910800000)),
    C("range-date-format", rng(TS, gte="18/05/2015", lt="19/05/2015", format="dd/MM/yyyy")),
    C("range-date-now-1d-round-gte", rng(TS, gte="now-1d/d")),
    C("range-date-now-3d-round-lt", rng(TS, lt="now-3d/d")),
    C("range-date-now-2d-round-gt", rng(TS, gt="now-2d/d")),
    C("range-date-now-2d-round-lte", rng(TS, lte="now-2d/d")),
    C("range-date-now-window", rng(TS, gte="now-3d/d", lte="now-3d/d")),
    C("range-date-now-36h", rng(TS, gte="now-36h")),
    C("range-date-now-hours-round", rng(TS, gte="now-40h/h", lt="now-38h/h")),
    C("range-date-now-time_zone", rng(TS, gte="now-1d/d", time_zone="+02:00")),
    C("range-date-local-time_zone", rng(TS, gte="2015-05-18T00:00:00", lt="2015-05-18T06:00:00", time_zone="-05:00")),
    C("range-date-anchor-math", rng(TS, gte="2015-05-18T13:37:00Z||+1d/d", lt="2015-05-19T12:00:00Z")),
    C("range-date-nasa-offset", rng(TS, gte="1995-07-01T12:00:00-04:00", lt="1995-07-01T13:00:00-04:00"), index=NA),
    C("range-date-nasa-utc", rng(TS, gte="1995-07-01T16:00:00Z", lt="1995-07-01T17:00:00Z"), index=NA),
    C("range-date-both-indices", rng(TS, lt="2000-01-01"), index=BOTH),
    # --- exists
    C("exists-bytes", {"exists": {"field": BYTES}}),
    C("exists-referrer", {"exists": {"field": REF}}),
    C("exists-user_agent", {"exists": {"field": UA}}),
    C("exists-text", {"exists": {"field": M}}),
    C("exists-ip-nasa", {"exists": {"field": IP}}, index=NA),
    C("exists-unmapped", {"exists": {"field": "no.such.field"}}),
    C("exists-version-nasa", {"exists": {"field": "http.version"}}, index=NA),
    # --- prefix
    C("prefix-url", {"prefix": {URL: "/presentations/"}}),
    C("prefix-url-tags", {"prefix": {URL: {"value": "/blog/tags/"}}}),
    C("prefix-ip", {"prefix": {IP: "66.249."}}),
    C("prefix-text-token", {"prefix": {M: "andro"}}),
    C("prefix-ua", {"prefix": {UA: "Mozilla/5.0 (compatible; Googlebot"}}),
    C("prefix-case_insensitive", {"prefix": {URL: {"value": "/BLOG/", "case_insensitive": True}}}),
    C("prefix-case-sensitive", {"prefix": {URL: "/BLOG/"}}),
    C("prefix-nasa", {"prefix": {URL: "/shuttle/countdown"}}, index=NA),
    # --- wildcard
    C("wildcard-suffix", {"wildcard": {URL: "*.png"}}),
    C("wildcard-question", {"wildcard": {IP: "66.249.7?.*"}}),
    C("wildcard-text-token", {"wildcard": {M: "saf?ri"}}),
    C("wildcard-text-leading", {"wildcard": {M: "*ndroid"}}),
    C("wildcard-infix", {"wildcard": {UA: "*Windows NT 6.1*"}}),
    C("wildcard-case_insensitive", {"wildcard": {URL: {"value": "*.PNG", "case_insensitive": True}}}),
    C("wildcard-key-wildcard", {"wildcard": {URL: {"wildcard": "/images/*.jpg"}}}),
    C("wildcard-escaped-star", {"wildcard": {URL: "*\\**"}}),
    C("wildcard-nasa", {"wildcard": {URL: "/history/apollo/*"}}, index=NA),
    # --- regexp
    C("regexp-url", {"regexp": {URL: "/blog/.*\\.html"}}),
    C("regexp-ip", {"regexp": {IP: "66\\.249\\.[0-9]+\\.[0-9]+"}}),
    C("regexp-anchored-prefix", {"regexp": {URL: "/presentations/.*"}}),
    C("regexp-anchored-no-partial", {"regexp": {URL: "presentations"}}),
    C("regexp-text-token", {"regexp": {M: "andr[a-z]+d"}}),
    C("regexp-alternation", {"regexp": {METHOD: "(POST|HEAD)"}}),
    C("regexp-ua-infix", {"regexp": {UA: ".*(iPhone|iPad).*"}}),
    C("regexp-repetition", {"regexp": {URL: "/[a-z]{4}/[a-z]+/"}}),
    C("regexp-case_insensitive", {"regexp": {METHOD: {"value": "po.t", "case_insensitive": True}}}),
    C("regexp-optional", {"regexp": {"http.version": "1\\.1?"}}),
    # --- fuzzy
    C("fuzzy-auto-1edit", {"fuzzy": {M: "chrom"}}),
    C("fuzzy-auto-transposition", {"fuzzy": {M: {"value": "andriod"}}}),
    C("fuzzy-1", {"fuzzy": {M: {"value": "safary", "fuzziness": 1}}}),
    C("fuzzy-keyword", {"fuzzy": {METHOD: {"value": "GOT", "fuzziness": 1}}}),
    C("fuzzy-prefix_length", {"fuzzy": {M: {"value": "gooblebot", "fuzziness": 2, "prefix_length": 3}}}),
    C("fuzzy-0", {"fuzzy": {M: {"value": "ubuntu", "fuzziness": 0}}}),
    C("fuzzy-auto-short-exact", {"fuzzy": {M: {"value": "os", "fuzziness": "AUTO"}}}),
    # --- ids
    C("ids", {"ids": {"values": ["apache-00001", "apache-00002", "nasa-00001"]}}),
    C("ids-both-indices", {"ids": {"values": ["apache-00001", "apache-00002", "nasa-00001"]}}, index=BOTH),
    C("ids-none", {"ids": {"values": ["nope-1"]}}),
    # --- match
    C("match-word", match(M, "chrome")),
    C("match-analyzed-case", match(M, "Chrome")),
    C("match-or", match(M, "chrome windows")),
    C("match-and", match(M, "chrome windows", operator="and")),
    C("match-msm-2", match(M, "chrome windows macintosh ubuntu", minimum_should_match=2)),
    C("match-msm-75pct", match(M, "chrome windows macintosh ubuntu", minimum_should_match="75%")),
    C("match-msm-neg1", match(M, "chrome windows macintosh ubuntu", minimum_should_match=-1)),
    C("match-msm-neg25pct", match(M, "chrome windows macintosh ubuntu", minimum_should_match="-25%")),
    C("match-keyword-exact", match(METHOD, "POST")),
    C("match-keyword-no-normalizer", match(METHOD, "post")),
    C("match-long", match(STATUS, "404")),
    C("match-fuzziness", match(M, "andriod", fuzziness="AUTO")),
    C("match-punctuation", match(M, "Mozilla (compatible;")),
    C("match-zero-terms-none", match(M, "!!! ...")),
    C("match-zero-terms-all", match(M, "!!! ...", zero_terms_query="all")),
    C("match-nasa", match(M, "countdown"), index=NA),
    C("match-both-indices", match(M, "missions history"), index=BOTH),
    # --- match_phrase
    C("match_phrase", {"match_phrase": {M: "like gecko"}}),
    C("match_phrase-reversed", {"match_phrase": {M: "gecko like"}}),
    C("match_phrase-3-terms", {"match_phrase": {M: "khtml like gecko"}}),
    C("match_phrase-compatible-googlebot", {"match_phrase": {M: "compatible googlebot"}}),
    C("match_phrase-gap-slop0", {"match_phrase": {M: {"query": "khtml gecko"}}}),
    C("match_phrase-gap-slop1", {"match_phrase": {M: {"query": "khtml gecko", "slop": 1}}}),
    C("match_phrase-keyword", {"match_phrase": {URL: "/favicon.ico"}}),
    C("match_phrase-nasa", {"match_phrase": {M: "shuttle countdown"}}, index=NA),
    # --- multi_match
    C("multi_match-keyword-and-text", {"multi_match": {"query": "POST", "fields": [M, METHOD]}}),
    C("multi_match-two-fields", {"multi_match": {"query": "android", "fields": [M, UA]}}),
    C("multi_match-phrase", {"multi_match": {"query": "like gecko", "type": "phrase", "fields": [M]}}),
    C("multi_match-and", {"multi_match": {"query": "chrome windows", "operator": "and", "fields": [M, URL]}}),
    C("multi_match-boost", {"multi_match": {"query": "ubuntu", "fields": ["message^2", URL]}}),
    C("multi_match-most_fields", {"multi_match": {"query": "ipad", "type": "most_fields", "fields": [M, UA]}}),
    # --- bool
    C("bool-must", bool_(must=[match(M, "chrome"), term(METHOD, "GET")])),
    C("bool-filter-must_not", bool_(filter=[rng(STATUS, gte=400)], must_not=[term(STATUS, 404)])),
    C("bool-should", bool_(should=[term(METHOD, "POST"), term(METHOD, "HEAD")])),
    C("bool-should-msm2", bool_(should=[match(M, "chrome"), match(M, "windows"), match(M, "macintosh")], minimum_should_match=2)),
    C("bool-must-should-optional", bool_(must=[term(STATUS, 404)], should=[match(M, "chrome")])),
    C("bool-must-should-msm1", bool_(must=[term(STATUS, 404)], should=[match(M, "chrome")], minimum_should_match=1)),
    C("bool-filter-should-optional", bool_(filter=[term(STATUS, 304)], should=[match(M, "googlebot")])),
    C("bool-must_not-only", bool_(must_not=[term(STATUS, 200)])),
    C("bool-nested", bool_(should=[bool_(must=[match(M, "android"), term(STATUS, 200)]), bool_(must=[match(M, "ipad"), rng(BYTES, gte=100000)])])),
    C("bool-filter-list", bool_(filter=[term(METHOD, "GET"), rng(STATUS, gte=300, lt=400), {"exists": {"field": REF}}])),
    C("bool-should-msm-50pct", bool_(should=[match(M, "chrome"), match(M, "windows"), match(M, "macintosh"), match(M, "ubuntu")], minimum_should_match="50%")),
    C("bool-should-msm-neg1", bool_(should=[match(M, "chrome"), match(M, "safari"), match(M, "windows")], minimum_should_match=-1)),
    C("bool-empty", {"bool": {}}),
    C("bool-must_not-all", bool_(must_not=[{"match_all": {}}])),
    C("bool-single-clause-object", {"bool": {"must": match(M, "slurp"), "filter": rng(TS, gte="now-2d/d")}}),
    C("bool-deep", bool_(filter=[bool_(must_not=[bool_(should=[term(STATUS, 200), term(STATUS, 304)])])])),
    C("bool-date-and-text", bool_(filter=[rng(TS, gte="now-1d/d"), match(M, "googlebot")])),
    C("bool-nasa-mixed", bool_(must=[{"prefix": {URL: "/images/"}}], must_not=[{"exists": {"field": IP}}]), index=NA),
    C("bool-both-indices", bool_(should=[term("_index", NA), term(STATUS, 500)]), index=BOTH),
    # --- constant_score
    C("constant_score", {"constant_score": {"filter": term(STATUS, 304)}}),
    C("constant_score-bool", {"constant_score": {"filter": bool_(must=[match(M, "feed")], must_not=[term(STATUS, 200)]), "boost": 1.5}}),
    # --- query_string (hand-written DSL equivalents)
    C("qs-field-term", {"query_string": {"query": "http.response.status_code:404"}}, expect=term(STATUS, 404)),
    C("qs-and", {"query_string": {"query": "message:chrome AND message:windows"}},
      expect=bool_(must=[match(M, "chrome"), match(M, "windows")])),
    C("qs-or-group", {"query_string": {"query": "http.request.method:(POST OR HEAD)"}},
      expect=bool_(should=[term(METHOD, "POST"), term(METHOD, "HEAD")])),
    C("qs-range-inclusive", {"query_string": {"query": "http.response.status_code:[400 TO 499]"}}, expect=rng(STATUS, gte=400, lte=499)),
    C("qs-range-exclusive-lower", {"query_string": {"query": "http.response.status_code:{400 TO 499]"}}, expect=rng(STATUS, gt=400, lte=499)),
    C("qs-range-gte-shorthand", {"query_string": {"query": "http.response.status_code:>=500"}}, expect=rng(STATUS, gte=500)),
    C("qs-not-default-field", {"query_string": {"query": "chrome -windows", "default_field": M}},
      expect=bool_(should=[match(M, "chrome")], must_not=[match(M, "windows")])),
    C("qs-quoted-keyword", {"query_string": {"query": 'url.original:"/favicon.ico"'}}, expect=term(URL, "/favicon.ico")),
    C("qs-prefix-text", {"query_string": {"query": "message:andro*"}}, expect={"prefix": {M: "andro"}}),
    C("qs-fuzzy", {"query_string": {"query": "message:andriod~"}}, expect={"fuzzy": {M: "andriod"}}),
    C("qs-phrase", {"query_string": {"query": 'message:"like gecko"'}}, expect={"match_phrase": {M: "like gecko"}}),
    C("qs-exists", {"query_string": {"query": "_exists_:http.request.referrer"}}, expect={"exists": {"field": REF}}),
    C("qs-default_operator-and", {"query_string": {"query": "chrome windows", "default_field": M, "default_operator": "AND"}},
      expect=match(M, "chrome windows", operator="and")),
    C("qs-pure-not", {"query_string": {"query": "NOT http.response.status_code:200"}}, expect=bool_(must_not=[term(STATUS, 200)])),
    C("qs-fields", {"query_string": {"query": "ubuntu", "fields": [M]}}, expect=match(M, "ubuntu")),
    C("qs-grouped-and", {"query_string": {"query": "http.response.status_code:(404 OR 500) AND http.request.method:GET"}},
      expect=bool_(must=[bool_(should=[term(STATUS, 404), term(STATUS, 500)]), term(METHOD, "GET")])),
    C("qs-wildcard-keyword", {"query_string": {"query": "url.original:*.jpg"}}, expect={"wildcard": {URL: "*.jpg"}}),
    C("qs-date-range", {"query_string": {"query": "@timestamp:[2015-05-19T00:00:00Z TO 2015-05-19T06:00:00Z}"}},
      expect=rng(TS, gte="2015-05-19T00:00:00Z", lt="2015-05-19T06:00:00Z")),
    C("uri-q", None, params={"q": "http.request.method:POST"}, expect=term(METHOD, "POST")),
    C("uri-q-df-and", None, params={"q": "chrome windows", "df": M, "default_operator": "AND"}, expect=match(M, "chrome windows", operator="and")),
    # --- simple_query_string
    C("sqs-or", {"simple_query_string": {"query": "chrome | windows", "fields": [M]}}, expect=match(M, "chrome windows")),
    C("sqs-and", {"simple_query_string": {"query": "chrome + windows", "fields": [M]}}, expect=match(M, "chrome windows", operator="and")),
    C("sqs-not-and", {"simple_query_string": {"query": "chrome -windows", "fields": [M], "default_operator": "and"}},
      expect=bool_(must=[match(M, "chrome")], must_not=[match(M, "windows")])),
    C("sqs-phrase", {"simple_query_string": {"query": '"like gecko"', "fields": [M]}}, expect={"match_phrase": {M: "like gecko"}}),
    C("sqs-prefix", {"simple_query_string": {"query": "andro*", "fields": [M]}}, expect={"prefix": {M: "andro"}}),
    C("sqs-fuzzy", {"simple_query_string": {"query": "andriod~2", "fields": [M]}}, expect={"fuzzy": {M: {"value": "andriod", "fuzziness": 2}}}),
    C("sqs-group", {"simple_query_string": {"query": "(chrome | safari) + ubuntu", "fields": [M]}},
      expect=bool_(must=[bool_(should=[match(M, "chrome"), match(M, "safari")]), match(M, "ubuntu")])),
    C("sqs-keyword-field", {"simple_query_string": {"query": "POST", "fields": [METHOD]}}, expect=term(METHOD, "POST")),
    # --- KQL (Cairn extension {"kql": {"query": ...}}; hand-written DSL equivalents)
    C("kql-field", {"kql": {"query": "http.response.status_code:404"}}, expect=term(STATUS, 404)),
    C("kql-or", {"kql": {"query": "http.request.method:POST or http.request.method:HEAD"}},
      expect=bool_(should=[term(METHOD, "POST"), term(METHOD, "HEAD")])),
    C("kql-and-not", {"kql": {"query": "message:chrome and not message:windows"}},
      expect=bool_(must=[match(M, "chrome")], must_not=[match(M, "windows")])),
    C("kql-range", {"kql": {"query": "http.response.status_code >= 500"}}, expect=rng(STATUS, gte=500)),
    C("kql-value-list", {"kql": {"query": "http.response.status_code:(404 or 500)"}}, expect={"terms": {STATUS: [404, 500]}}),
    C("kql-wildcard-keyword", {"kql": {"query": "url.original:*.png"}}, expect={"wildcard": {URL: "*.png"}}),
    C("kql-phrase", {"kql": {"query": 'message:"like gecko"'}}, expect={"match_phrase": {M: "like gecko"}}),
    C("kql-exists", {"kql": {"query": "http.request.referrer:*"}}, expect={"exists": {"field": REF}}),
    C("kql-not-exists", {"kql": {"query": "not http.request.referrer:*"}}, expect=bool_(must_not=[{"exists": {"field": REF}}])),
    C("kql-date-range", {"kql": {"query": '@timestamp >= "2015-05-19T00:00:00Z" and @timestamp < "2015-05-20T00:00:00Z"'}},
      expect=rng(TS, gte="2015-05-19T00:00:00Z", lt="2015-05-20T00:00:00Z")),
    C("kql-grouping", {"kql": {"query": "http.request.method:GET and (message:ubuntu or message:android)"}},
      expect=bool_(must=[term(METHOD, "GET"), bool_(should=[match(M, "ubuntu"), match(M, "android")])])),
    C("kql-wildcard-nasa", {"kql": {"query": "url.original:/shuttle/*"}}, index=NA, expect={"prefix": {URL: "/shuttle/"}}),
    C("kql-free-text", {"kql": {"query": "googlebot"}}, expect=match(M, "googlebot")),
    C("kql-ip-wildcard", {"kql": {"query": "source.ip:66.249.*"}}, expect={"prefix": {IP: "66.249."}}),
]


def _touches_text(q) -> bool:
    return '"message' in json.dumps(q) or '"kql"' in json.dumps(q) or "query_string" in json.dumps(q)


def _expected(case: Case, docs) -> list:
    return R.search(case.reference_query(), docs, case.indices())


def _search(srv, index, body=None, params=None, method="post"):
    if method == "get":
        return srv.get(f"/{index}/_search", params=params)
    return srv.post(f"/{index}/_search", json=body, params=params)


@pytest.mark.parametrize("case", QUERY_CASES)
def test_query(compat_server, docs, case: Case):
    want = _expected(case, docs)
    want_ids = {d.id for d in want}
    size = len(want) if len(want) <= SMALL else 20
    if case.query is None and case.params:
        params = dict(case.params, size=str(size), track_total_hits="true", _source="false")
        r = _search(compat_server, case.index, params=params, method="get")
    else:
        body = {"size": size, "track_total_hits": True, "_source": False}
        if case.query is not None:
            body["query"] = case.query
        r = _search(compat_server, case.index, body)
    assert r.status_code == 200, f"{r.status_code}: {r.text[:1500]}"
    res = r.json()
    total = res["hits"]["total"]
    got_ids = [h["_id"] for h in res["hits"]["hits"]]
    assert total == {"value": len(want), "relation": "eq"}, f"total {total}, expected {len(want)}; first hits {got_ids[:10]}"
    assert len(got_ids) == len(set(got_ids)), f"duplicate hits: {got_ids}"
    if len(want) <= SMALL:
        assert set(got_ids) == want_ids, f"missing {sorted(want_ids - set(got_ids))[:20]}, unexpected {sorted(set(got_ids) - want_ids)[:20]}"
    else:
        assert len(got_ids) == size
        assert set(got_ids) <= want_ids, f"hits that should not match: {sorted(set(got_ids) - want_ids)[:20]}"
    # the same query through _count
    if case.query is not None or not case.params:
        cr = compat_server.post(f"/{case.index}/_count", json={"query": case.query} if case.query is not None else None)
    else:
        cr = compat_server.get(f"/{case.index}/_count", params=case.params)
    assert cr.status_code == 200, f"_count {cr.status_code}: {cr.text[:1000]}"
    assert cr.json()["count"] == len(want)


@pytest.mark.parametrize("case", [p for p in QUERY_CASES if _touches_text(p.values[0].reference_query())])
def test_expectation_is_analyzer_independent(docs, case: Case):
    """The reference tokenizes `text` like Cairn (split on non-alphanumerics). The cases are
    chosen so that Elasticsearch's standard analyzer (approximated) gives the same answer:
    otherwise the case would not be testing ES compatibility."""
    simple = {d.id for d in _expected(case, docs)}
    R.set_analyzer("standard")
    try:
        standard = {d.id for d in _expected(case, docs)}
    finally:
        R.set_analyzer("simple")
    assert simple == standard, f"{len(simple)} vs {len(standard)} hits: choose words both analyzers agree on"


def test_enough_cases():
    assert len(QUERY_CASES) >= 150


# ============================================================================== sort, paging

def _check_sorted(got_ids, want_sorted, key, by_id):
    """`got_ids` must be the first len(got_ids) of `want_sorted` up to ties of `key`."""
    n = len(got_ids)
    assert n == min(n, len(want_sorted))
    want_keys = [key(d) for d in want_sorted[:n]]
    got_keys = [key(by_id[i]) for i in got_ids]
    assert got_keys == want_keys, f"sort keys {got_keys[:20]} != expected {want_keys[:20]}"
    allowed = {d.id for d in want_sorted}
    assert set(got_ids) <= allowed and len(set(got_ids)) == n


def _sorted_docs(docs, field, desc, missing_last=True):
    have = [d for d in docs if R.value(d, field) is not None]
    miss = [d for d in docs if R.value(d, field) is None]
    have.sort(key=lambda d: R.value(d, field), reverse=desc)
    return have + miss


SORT_CASES = [
    ("ts-asc", AP, None, [{TS: "asc"}], TS, False, 10),
    ("ts-desc", AP, None, [{TS: "desc"}], TS, True, 10),
    ("ts-asc-order-object", AP, None, [{TS: {"order": "asc"}}], TS, False, 25),
    ("ts-desc-string-form", AP, None, [TS], TS, False, 5),  # a bare field name sorts ascending
    ("ts-asc-filtered", AP, term(STATUS, 404), [{TS: "asc"}], TS, False, 50),
    ("ts-desc-filtered", AP, match(M, "bingbot"), [{TS: "desc"}], TS, True, 100),
    ("ts-desc-nasa", NA, None, [{TS: "desc"}], TS, True, 30),
    ("ts-asc-both-indices", BOTH, None, [{TS: "asc"}], TS, False, 20),
    ("ts-desc-both-indices", BOTH, rng(STATUS, gte=400), [{TS: "desc"}], TS, True, 20),
    ("bytes-desc", AP, None, [{BYTES: "desc"}], BYTES, True, 10),
    ("bytes-asc-missing-last", AP, term(STATUS, 304), [{BYTES: "asc"}], BYTES, False, 30),
    ("url-asc", AP, None, [{URL: "asc"}], URL, False, 10),
]


@pytest.mark.parametrize("cid,index,query,sort,field,desc,size", SORT_CASES, ids=[c[0] for c in SORT_CASES])
def test_sort(compat_server, docs, docs_by_id, cid, index, query, sort, field, desc, size):
    cand = R.search(query, docs, {AP, NA} if index == BOTH else {index})
    want = _sorted_docs(cand, field, desc)
    body = {"size": size, "sort": sort, "_source": False}
    if query:
        body["query"] = query
    r = _search(compat_server, index, body)
    assert r.status_code == 200, r.text[:1500]
    hits = r.json()["hits"]["hits"]
    got = [h["_id"] for h in hits]
    assert len(got) == min(size, len(want))
    _check_sorted(got, want, lambda d: R.value(d, field), docs_by_id)
    if field == TS:
        for h in hits:  # sort values of a date field are epoch millis
            assert h.get("sort") == [docs_by_id[h["_id"]].ts], h


def test_sort_uri_param(compat_server, docs, docs_by_id):
    want = _sorted_docs(R.search(None, docs, {AP}), TS, True)
    r = compat_server.get(f"/{AP}/_search", params={"sort": "@timestamp:desc", "size": "7"})
    assert r.status_code == 200, r.text[:1000]
    _check_sorted([h["_id"] for h in r.json()["hits"]["hits"]], want, lambda d: d.ts, docs_by_id)


@pytest.mark.parametrize("page_size", [25, 100])
def test_from_size_paging_covers_all(compat_server, docs, docs_by_id, page_size):
    """Pages of a sorted query (distinct timestamps: NASA sample) concatenate to the full order."""
    want = _sorted_docs(R.search(None, docs, {NA}), TS, False)
    assert len({d.ts for d in want}) == len(want)
    got = []
    for frm in range(0, len(want) + page_size, page_size):
        r = _search(compat_server, NA, {"from": frm, "size": page_size, "sort": [{TS: "asc"}], "_source": False})
        assert r.status_code == 200, r.text[:1000]
        res = r.json()
        assert res["hits"]["total"]["value"] == len(want)
        got += [h["_id"] for h in res["hits"]["hits"]]
    assert got == [d.id for d in want]


def test_from_beyond_total(compat_server):
    r = _search(compat_server, AP, {"query": term(METHOD, "POST"), "from": 10, "size": 10})
    assert r.status_code == 200, r.text[:1000]
    res = r.json()
    assert res["hits"]["hits"] == [] and res["hits"]["total"] == {"value": 5, "relation": "eq"}


def test_size_zero(compat_server, docs):
    r = _search(compat_server, AP, {"query": match(M, "googlebot"), "size": 0})
    assert r.status_code == 200, r.text[:1000]
    res = r.json()
    assert res["hits"]["hits"] == []
    assert res["hits"]["total"] == {"value": len(R.search(match(M, "googlebot"), docs, {AP})), "relation": "eq"}


def test_from_size_middle_page(compat_server, docs, docs_by_id):
    want = _sorted_docs(R.search(term(STATUS, 404), docs, {AP}), TS, True)
    r = _search(compat_server, AP, {"query": term(STATUS, 404), "from": 40, "size": 20, "sort": [{TS: "desc"}]})
    assert r.status_code == 200, r.text[:1000]
    got = [h["_id"] for h in r.json()["hits"]["hits"]]
    assert [docs_by_id[i].ts for i in got] == [d.ts for d in want[40:60]]


# ============================================================================== search_after

def test_search_after_asc(compat_server, docs, docs_by_id):
    allv = _sorted_docs(R.search(None, docs, {AP}), TS, False)
    after = allv[1234].ts
    want = [d for d in allv if d.ts > after]
    r = _search(compat_server, AP, {"size": 15, "sort": [{TS: "asc"}], "search_after": [after], "_source": False})
    assert r.status_code == 200, r.text[:1000]
    _check_sorted([h["_id"] for h in r.json()["hits"]["hits"]], want, lambda d: d.ts, docs_by_id)


def test_search_after_desc_filtered(compat_server, docs, docs_by_id):
    allv = _sorted_docs(R.search(term(STATUS, 404), docs, {AP}), TS, True)
    after = allv[100].ts
    want = [d for d in allv if d.ts < after]
    r = _search(compat_server, AP, {"query": term(STATUS, 404), "size": 30, "sort": [{TS: "desc"}], "search_after": [after]})
    assert r.status_code == 200, r.text[:1000]
    _check_sorted([h["_id"] for h in r.json()["hits"]["hits"]], want, lambda d: d.ts, docs_by_id)


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_search_after_chain(compat_server, docs, order):
    """Walking the NASA sample (distinct timestamps) with search_after visits every doc once, in order."""
    want = _sorted_docs(R.search(None, docs, {NA}), TS, order == "desc")
    got, after = [], None
    for _ in range(100):
        body = {"size": 60, "sort": [{TS: order}], "_source": False}
        if after is not None:
            body["search_after"] = after
        r = _search(compat_server, NA, body)
        assert r.status_code == 200, r.text[:1000]
        hits = r.json()["hits"]["hits"]
        if not hits:
            break
        got += [h["_id"] for h in hits]
        after = hits[-1]["sort"]
    assert got == [d.id for d in want]


def test_search_after_past_the_end(compat_server, docs):
    last = max(d.ts for d in docs if d.index == AP)
    r = _search(compat_server, AP, {"size": 10, "sort": [{TS: "asc"}], "search_after": [last]})
    assert r.status_code == 200, r.text[:1000]
    assert r.json()["hits"]["hits"] == []


# ============================================================================== _source filtering

def _glob(pat: str, path: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(path, pat)


def _filter_source(src: dict, includes: list, excludes: list) -> dict:
    """ES source filtering: a leaf is kept if it (or an ancestor) matches an include (or there
    are no includes) and neither it nor an ancestor matches an exclude."""

    def walk(obj, prefix):
        out = {}
        for k, v in obj.items():
            path = f"{prefix}{k}"
            if any(_glob(p, path) for p in excludes):
                continue
            if isinstance(v, dict):
                if includes and any(_glob(p, path) for p in includes) and not excludes:
                    out[k] = v
                    continue
                sub = walk(v, path + ".") if not (includes and any(_glob(p, path) for p in includes)) else walk_all(v, path + ".")
                if sub:
                    out[k] = sub
            else:
                if not includes or any(_glob(p, path) for p in includes):
                    out[k] = v
        return out

    def walk_all(obj, prefix):
        out = {}
        for k, v in obj.items():
            path = f"{prefix}{k}"
            if any(_glob(p, path) for p in excludes):
                continue
            if isinstance(v, dict):
                sub = walk_all(v, path + ".")
                if sub:
                    out[k] = sub
            else:
                out[k] = v
        return out

    return walk(src, "")


SOURCE_CASES = [
    ("source-true", {"_source": True}, None, None),
    ("source-false", {"_source": False}, "NONE", None),
    ("source-string", {"_source": "url.original"}, ["url.original"], []),
    ("source-list", {"_source": ["@timestamp", "http.response.status_code"]}, ["@timestamp", "http.response.status_code"], []),
    ("source-wildcard", {"_source": ["http.response.*"]}, ["http.response.*"], []),
    ("source-object-path", {"_source": ["http"]}, ["http"], []),
    ("source-includes-excludes", {"_source": {"includes": ["http.*", "@timestamp"], "excludes": ["http.response.body"]}},
     ["http.*", "@timestamp"], ["http.response.body"]),
    ("source-excludes-only", {"_source": {"excludes": ["message", "user_agent"]}}, [], ["message", "user_agent"]),
    ("source-uri-params", {"__params": {"_source_includes": "source.*,url.original", "_source_excludes": "source.address"}},
     ["source.*", "url.original"], ["source.address"]),
]


@pytest.mark.parametrize("cid,opts,includes,excludes", SOURCE_CASES, ids=[c[0] for c in SOURCE_CASES])
def test_source_filtering(compat_server, docs_by_id, cid, opts, includes, excludes):
    q = {"ids": {"values": ["apache-00001", "apache-00017", "apache-04242"]}}
    opts = dict(opts)
    params = opts.pop("__params", None)
    r = _search(compat_server, AP, dict(query=q, **opts), params=params)
    assert r.status_code == 200, r.text[:1000]
    hits = r.json()["hits"]["hits"]
    assert len(hits) == 3
    for h in hits:
        src = docs_by_id[h["_id"]].source
        if includes == "NONE":
            assert "_source" not in h, h
            continue
        want = src if includes is None else _filter_source(src, includes, excludes)
        assert h.get("_source") == want, f"{h['_id']}: got {h.get('_source')}, want {want}"


def test_source_roundtrip_exact(compat_server, docs):
    """_source comes back exactly as sent (NASA offsets and the unterminated Apache line too)."""
    ids = ["nasa-00001", "nasa-00091", "nasa-00374", "apache-00001"]
    ids += [d.id for d in docs if d.index == AP and d.source["message"].endswith("bot.html")][:1]
    r = _search(compat_server, BOTH, {"query": {"ids": {"values": ids}}, "size": 10})
    assert r.status_code == 200, r.text[:1000]
    by_id = {d.id: d for d in docs}
    hits = r.json()["hits"]["hits"]
    assert {h["_id"] for h in hits} == set(ids)
    for h in hits:
        assert h["_source"] == by_id[h["_id"]].source
        assert h["_index"] == by_id[h["_id"]].index


# ============================================================================== track_total_hits

TTH_CASES = [
    ("default-over-10k", BOTH, None, None, {"value": 10000, "relation": "gte"}),
    ("default-exactly-10k", AP, None, None, {"value": 10000, "relation": "eq"}),
    ("default-small", AP, match(M, "chrome"), None, "exact"),
    ("true-over-10k", BOTH, None, True, {"value": 10500, "relation": "eq"}),
    ("false", AP, match(M, "chrome"), False, None),
    ("number-below", AP, match(M, "chrome"), 100, {"value": 100, "relation": "gte"}),
    ("number-above", AP, match(M, "chrome"), 5000, "exact"),
    ("number-equal", AP, match(M, "chrome"), "COUNT", "exact"),
]


@pytest.mark.parametrize("cid,index,query,tth,want", TTH_CASES, ids=[c[0] for c in TTH_CASES])
def test_track_total_hits(compat_server, docs, cid, index, query, tth, want):
    n = len(R.search(query, docs, {AP, NA} if index == BOTH else {index}))
    if tth == "COUNT":
        tth = n
    if want == "exact":
        want = {"value": n, "relation": "eq"}
    body = {"size": 3}
    if query:
        body["query"] = query
    if tth is not None:
        body["track_total_hits"] = tth
    r = _search(compat_server, index, body)
    assert r.status_code == 200, r.text[:1000]
    hits = r.json()["hits"]
    if want is None:
        assert "total" not in hits, hits.get("total")
    else:
        assert hits.get("total") == want
    assert len(hits["hits"]) == 3


def test_rest_total_hits_as_int(compat_server, docs):
    r = _search(compat_server, AP, {"query": term(STATUS, 404), "size": 0}, params={"rest_total_hits_as_int": "true"})
    assert r.status_code == 200, r.text[:1000]
    assert r.json()["hits"]["total"] == 213


# ============================================================================== errors

def _err(r, status, types=None, reason_has=None):
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:1500]}"
    body = r.json()
    assert body.get("status") == status, body
    err = body.get("error")
    assert isinstance(err, dict) and err.get("type") and err.get("reason") is not None, body
    assert isinstance(err.get("root_cause"), list) and err["root_cause"], body
    if types:
        assert err["type"] in types or any(c.get("type") in types for c in err["root_cause"]), body
    if reason_has:
        assert reason_has in json.dumps(body), body
    return err


def test_error_unknown_query(compat_server):
    r = _search(compat_server, AP, {"query": {"no_such_query": {"field": "x"}}})
    _err(r, 400, {"parsing_exception"}, "unknown query [no_such_query]")


def test_error_query_two_fields(compat_server):
    r = _search(compat_server, AP, {"query": {"term": {METHOD: "GET", STATUS: 200}}})
    _err(r, 400, {"parsing_exception"})


def test_error_bool_unknown_key(compat_server):
    r = _search(compat_server, AP, {"query": {"bool": {"must": [], "musst": []}}})
    # ES 8 parses bool with an ObjectParser: "[bool] unknown field [musst] did you mean [must]?"
    _err(r, 400, {"x_content_parse_exception"}, "musst")


@pytest.mark.parametrize("frm,size", [(9995, 10), (0, 10001), (10000, 1)])
def test_error_result_window(compat_server, frm, size):
    r = _search(compat_server, AP, {"from": frm, "size": size})
    _err(r, 400, reason_has="Result window is too large")


def test_result_window_edge_ok(compat_server):
    r = _search(compat_server, AP, {"from": 9990, "size": 10, "_source": False})
    assert r.status_code == 200, r.text[:1000]
    assert len(r.json()["hits"]["hits"]) == 10


def test_error_malformed_json(compat_server):
    r = compat_server.post(f"/{AP}/_search", data=b'{"query": {"match_all": {}', headers={"Content-Type": "application/json"})
    _err(r, 400)


def test_error_negative_size(compat_server):
    _err(_search(compat_server, AP, {"size": -1}), 400)


def test_error_search_after_with_from(compat_server):
    # SearchRequest.validate(): "[from] parameter must be set to 0 when [search_after] is used"
    _err(_search(compat_server, AP, {"from": 5, "size": 5, "sort": [{TS: "asc"}], "search_after": [1431907200000]}), 400,
         {"action_request_validation_exception"}, "must be set to 0 when [search_after] is used")


def test_error_regexp_too_complex(compat_server):
    r = _search(compat_server, AP, {"query": {"regexp": {URL: "[ab]*a[ab]{30}"}}})
    assert 400 <= r.status_code < 500, f"{r.status_code}: {r.text[:1000]}"
    _err(r, r.status_code)


def test_error_regexp_too_long(compat_server):
    r = _search(compat_server, AP, {"query": {"regexp": {URL: "a" * 1001}}})
    assert 400 <= r.status_code < 500, f"{r.status_code}: {r.text[:1000]}"
    _err(r, r.status_code)


def test_error_query_string_syntax(compat_server):
    _err(_search(compat_server, AP, {"query": {"query_string": {"query": "message:(chrome"}}}), 400)


def test_error_kql_syntax(compat_server):
    _err(_search(compat_server, AP, {"query": {"kql": {"query": "message:(chrome"}}}), 400)


def test_error_sort_on_text(compat_server):
    _err(_search(compat_server, AP, {"sort": [{M: "asc"}]}), 400)


def test_error_index_not_found(compat_server):
    _err(_search(compat_server, "no-such-index", {}), 404, {"index_not_found_exception"})


def test_error_count_index_not_found(compat_server):
    _err(compat_server.post("/no-such-index/_count", json={}), 404, {"index_not_found_exception"})


def test_index_not_found_ignore_unavailable(compat_server):
    r = _search(compat_server, "no-such-index", {}, params={"ignore_unavailable": "true"})
    assert r.status_code == 200, r.text[:1000]
    res = r.json()
    assert res["hits"]["total"]["value"] == 0 and res["hits"]["hits"] == []


def test_multi_target_missing_index(compat_server):
    _err(_search(compat_server, f"{NA},no-such-index", {"size": 0}), 404, {"index_not_found_exception"})


def test_multi_target_missing_index_ignore_unavailable(compat_server):
    r = _search(compat_server, f"{NA},no-such-index", {"size": 0}, params={"ignore_unavailable": "true"})
    assert r.status_code == 200, r.text[:1000]
    assert r.json()["hits"]["total"] == {"value": 500, "relation": "eq"}


def test_wildcard_matching_nothing(compat_server):
    r = _search(compat_server, "no-such-*", {})
    assert r.status_code == 200, r.text[:1000]
    assert r.json()["hits"]["total"]["value"] == 0


def test_wildcard_matching_nothing_allow_no_indices_false(compat_server):
    _err(_search(compat_server, "no-such-*", {}, params={"allow_no_indices": "false"}), 404, {"index_not_found_exception"})


def test_comma_list_of_indices(compat_server):
    r = _search(compat_server, f"{AP},{NA}", {"size": 0, "track_total_hits": True})
    assert r.status_code == 200, r.text[:1000]
    assert r.json()["hits"]["total"]["value"] == 10500


# ============================================================================== aggregations

def _agg_search(srv, index, body):
    r = _search(srv, index, body)
    if r.status_code == 400 and "aggregations are not supported" in r.text:
        pytest.xfail(f"{AGG_PENDING_MARK}: {r.text[:300]}")
    assert r.status_code == 200, f"{r.status_code}: {r.text[:1500]}"
    return r.json()


def _approx(a, b, rel=1e-9):
    if a is None or b is None:
        return a is b
    return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=1e-9)


def _agg_docs(docs, index, query=None):
    return R.search(query, docs, {AP, NA} if index == BOTH else {index})


TERMS_CASES = [
    ("terms-method", AP, None, {"field": METHOD}),
    ("terms-status-size3", AP, None, {"field": STATUS, "size": 3}),
    ("terms-ip-size5", AP, None, {"field": IP, "size": 5}),
    ("terms-order-key", AP, None, {"field": STATUS, "order": {"_key": "asc"}}),
    ("terms-order-count-asc", AP, None, {"field": METHOD, "order": {"_count": "asc"}}),
    ("terms-missing", NA, None, {"field": IP, "size": 3, "missing": "N/A"}),
    ("terms-min_doc_count", AP, None, {"field": STATUS, "min_doc_count": 100}),
    ("terms-with-query", AP, term(STATUS, 404), {"field": URL, "size": 5}),
    ("terms-both-indices", BOTH, None, {"field": "event.dataset"}),
    ("terms-nasa-url", NA, None, {"field": URL, "size": 4}),
]


@pytest.mark.parametrize("cid,index,query,spec", TERMS_CASES, ids=[c[0] for c in TERMS_CASES])
def test_agg_terms(compat_server, docs, cid, index, query, spec):
    body = {"size": 0, "aggs": {"a": {"terms": spec}}}
    if query:
        body["query"] = query
    res = _agg_search(compat_server, index, body)
    want = R.agg_terms(_agg_docs(docs, index, query), spec)
    got = res["aggregations"]["a"]
    assert [(b["key"], b["doc_count"]) for b in got["buckets"]] == [(b["key"], b["doc_count"]) for b in want["buckets"]]
    if "min_doc_count" not in spec:  # ES's accounting of buckets under min_doc_count is not asserted
        assert got["sum_other_doc_count"] == want["sum_other_doc_count"]
    assert got["doc_count_error_upper_bound"] == 0


DATE_HISTO_CASES = [
    ("dh-calendar-day", AP, {"field": TS, "calendar_interval": "day"}),
    ("dh-calendar-1d", AP, {"field": TS, "calendar_interval": "1d"}),
    ("dh-calendar-hour", AP, {"field": TS, "calendar_interval": "hour"}),
    ("dh-calendar-week", BOTH, {"field": TS, "calendar_interval": "week", "min_doc_count": 1}),
    ("dh-calendar-month-both", BOTH, {"field": TS, "calendar_interval": "month", "min_doc_count": 1}),
    ("dh-fixed-6h", AP, {"field": TS, "fixed_interval": "6h"}),
    ("dh-fixed-30m-nasa", NA, {"field": TS, "fixed_interval": "30m"}),
    ("dh-calendar-day-tz", NA, {"field": TS, "calendar_interval": "day", "time_zone": "-04:00"}),
    ("dh-calendar-day-tz-apache", AP, {"field": TS, "calendar_interval": "day", "time_zone": "+02:00"}),
    ("dh-calendar-hour-tz-name", NA, {"field": TS, "calendar_interval": "hour", "time_zone": "America/New_York"}),
    ("dh-fixed-12h-tz", AP, {"field": TS, "fixed_interval": "12h", "time_zone": "+05:30"}),
    ("dh-min_doc_count-1", AP, {"field": TS, "fixed_interval": "1m", "min_doc_count": 1}),
]


@pytest.mark.parametrize("cid,index,spec", DATE_HISTO_CASES, ids=[c[0] for c in DATE_HISTO_CASES])
def test_agg_date_histogram(compat_server, docs, cid, index, spec):
    res = _agg_search(compat_server, index, {"size": 0, "aggs": {"h": {"date_histogram": spec}}})
    want = R.agg_date_histogram(_agg_docs(docs, index), spec)
    got = res["aggregations"]["h"]["buckets"]
    assert [(b["key"], b["doc_count"]) for b in got] == [(b["key"], b["doc_count"]) for b in want]
    assert [b.get("key_as_string") for b in got] == [b["key_as_string"] for b in want]


HISTO_CASES = [
    ("histogram-bytes", AP, {"field": BYTES, "interval": 100000}),
    ("histogram-status", BOTH, {"field": STATUS, "interval": 100}),
    ("histogram-min_doc_count", AP, {"field": BYTES, "interval": 50000, "min_doc_count": 1}),
]


@pytest.mark.parametrize("cid,index,spec", HISTO_CASES, ids=[c[0] for c in HISTO_CASES])
def test_agg_histogram(compat_server, docs, cid, index, spec):
    res = _agg_search(compat_server, index, {"size": 0, "aggs": {"h": {"histogram": spec}}})
    want = R.agg_histogram(_agg_docs(docs, index), spec)
    got = res["aggregations"]["h"]["buckets"]
    assert [(float(b["key"]), b["doc_count"]) for b in got] == [(b["key"], b["doc_count"]) for b in want]


RANGE_AGG_CASES = [
    ("range-bytes", {"field": BYTES, "ranges": [{"to": 1000}, {"from": 1000, "to": 100000}, {"from": 100000}]}),
    ("range-keyed-names", {"field": STATUS, "ranges": [{"key": "ok", "from": 200, "to": 300}, {"key": "redirect", "from": 300, "to": 400},
                                                          {"key": "error", "from": 400}]}),
    ("range-overlapping", {"field": BYTES, "ranges": [{"from": 0, "to": 5000}, {"from": 2000, "to": 10000}]}),
]


@pytest.mark.parametrize("cid,spec", RANGE_AGG_CASES, ids=[c[0] for c in RANGE_AGG_CASES])
def test_agg_range(compat_server, docs, cid, spec):
    res = _agg_search(compat_server, AP, {"size": 0, "aggs": {"r": {"range": spec}}})
    want = R.agg_range(_agg_docs(docs, AP), spec)
    got = res["aggregations"]["r"]["buckets"]
    assert [(b["key"], b["doc_count"], b.get("from"), b.get("to")) for b in got] == [
        (b["key"], b["doc_count"], b.get("from"), b.get("to")) for b in want
    ]


def test_agg_filters_named(compat_server, docs):
    filters = {"errors": rng(STATUS, gte=400), "bots": match(M, "googlebot"), "posts": term(METHOD, "POST")}
    res = _agg_search(compat_server, AP, {"size": 0, "aggs": {"f": {"filters": {"filters": filters}}}})
    got = res["aggregations"]["f"]["buckets"]
    want = {k: {"doc_count": len(R.search(q, docs, {AP}))} for k, q in filters.items()}
    assert {k: {"doc_count": v["doc_count"]} for k, v in got.items()} == want


def test_agg_filters_anonymous_other_bucket(compat_server, docs):
    filters = [term(STATUS, 200), term(STATUS, 304)]
    res = _agg_search(compat_server, AP, {"size": 0, "aggs": {"f": {"filters": {"filters": filters, "other_bucket": True}}}})
    got = [b["doc_count"] for b in res["aggregations"]["f"]["buckets"]]
    n = [len(R.search(q, docs, {AP})) for q in filters]
    assert got == n + [10000 - sum(n)]


METRIC_CASES = [
    ("avg", AP, None, "avg", BYTES),
    ("sum", AP, None, "sum", BYTES),
    ("min", AP, None, "min", BYTES),
    ("max", AP, None, "max", BYTES),
    ("avg-status-both", BOTH, None, "avg", STATUS),
    ("max-timestamp", NA, None, "max", TS),
    ("sum-filtered", AP, term(STATUS, 206), "sum", BYTES),
    ("min-empty", AP, term(METHOD, "NOPE"), "min", BYTES),
]


@pytest.mark.parametrize("cid,index,query,kind,field", METRIC_CASES, ids=[c[0] for c in METRIC_CASES])
def test_agg_metric(compat_server, docs, cid, index, query, kind, field):
    body = {"size": 0, "aggs": {"m": {kind: {"field": field}}}}
    if query:
        body["query"] = query
    res = _agg_search(compat_server, index, body)
    st = R.agg_stats(_agg_docs(docs, index, query), field)
    want = st[kind] if kind != "sum" else st["sum"]
    got = res["aggregations"]["m"]["value"]
    assert _approx(got, want), f"{kind}({field}) = {got}, expected {want}"
    if field == TS and want is not None:
        assert res["aggregations"]["m"].get("value_as_string") == R.iso_millis(int(want))


def test_agg_stats(compat_server, docs):
    res = _agg_search(compat_server, AP, {"size": 0, "aggs": {"s": {"stats": {"field": BYTES}}}})
    want = R.agg_stats(_agg_docs(docs, AP), BYTES)
    got = res["aggregations"]["s"]
    for k in ("count", "min", "max", "avg", "sum"):
        assert _approx(got[k], want[k]), f"{k}: {got[k]} != {want[k]}"


def test_agg_value_count(compat_server, docs):
    res = _agg_search(compat_server, AP, {"size": 0, "aggs": {"c": {"value_count": {"field": BYTES}}, "r": {"value_count": {"field": REF}}}})
    d = _agg_docs(docs, AP)
    assert res["aggregations"]["c"]["value"] == len(R._values(d, BYTES))
    assert res["aggregations"]["r"]["value"] == len(R._values(d, REF))


@pytest.mark.parametrize("field,index", [(IP, AP), (URL, AP), ("source.address", NA), (STATUS, BOTH)])
def test_agg_cardinality(compat_server, docs, field, index):
    res = _agg_search(compat_server, index, {"size": 0, "aggs": {"c": {"cardinality": {"field": field}}}})
    want = len(set(R._values(_agg_docs(docs, index), field)))
    got = res["aggregations"]["c"]["value"]
    assert abs(got - want) <= 0.02 * want, f"cardinality {got}, exact {want}"


@pytest.mark.parametrize("percents", [None, [50, 99], [10, 90]])
def test_agg_percentiles(compat_server, docs, percents):
    spec = {"field": BYTES}
    if percents:
        spec["percents"] = percents
    res = _agg_search(compat_server, AP, {"size": 0, "aggs": {"p": {"percentiles": spec}}})
    vals = R._values(_agg_docs(docs, AP), BYTES)
    got = res["aggregations"]["p"]["values"]
    ps = percents or [1, 5, 25, 50, 75, 95, 99]
    assert sorted(float(k) for k in got) == sorted(float(p) for p in ps), got
    for p in ps:
        v = got[str(float(p))]
        lo, hi = R.exact_percentile_bounds(vals, p, 2.0)
        assert lo <= v <= hi, f"p{p} = {v}, exact value between ranks {p}±2% is [{lo}, {hi}]"


def test_agg_composite_paging(compat_server, docs):
    sources = [{"method": {"terms": {"field": METHOD}}}, {"status": {"terms": {"field": STATUS}}}]
    want = R.composite_all(_agg_docs(docs, AP), sources)
    got, after = [], None
    for _ in range(50):
        comp = {"size": 4, "sources": sources}
        if after:
            comp["after"] = after
        res = _agg_search(compat_server, AP, {"size": 0, "aggs": {"c": {"composite": comp}}})
        c = res["aggregations"]["c"]
        got += [{"key": b["key"], "doc_count": b["doc_count"]} for b in c["buckets"]]
        if not c["buckets"]:
            break
        after = c.get("after_key")
        assert after == c["buckets"][-1]["key"]
    assert got == want


def test_agg_top_hits(compat_server, docs):
    body = {"size": 0, "aggs": {"m": {"terms": {"field": METHOD}, "aggs": {
        "latest": {"top_hits": {"size": 1, "sort": [{TS: "desc"}], "_source": ["@timestamp"]}}}}}}
    res = _agg_search(compat_server, AP, body)
    d = _agg_docs(docs, AP)
    by_method: dict = {}
    for x in d:
        if R.value(x, METHOD) is not None:
            by_method.setdefault(R.value(x, METHOD), []).append(x)
    for b in res["aggregations"]["m"]["buckets"]:
        grp = by_method[b["key"]]
        hits = b["latest"]["hits"]
        assert hits["total"]["value"] == len(grp)
        latest = max(x.ts for x in grp)
        h = hits["hits"][0]
        assert h["_id"] in {x.id for x in grp if x.ts == latest}
        assert h["_source"] == {"@timestamp": next(x for x in grp if x.id == h["_id"]).source["@timestamp"]}


def test_agg_terms_with_sub_avg(compat_server, docs):
    body = {"size": 0, "aggs": {"m": {"terms": {"field": STATUS, "size": 4}, "aggs": {"b": {"avg": {"field": BYTES}}}}}}
    res = _agg_search(compat_server, AP, body)
    d = _agg_docs(docs, AP)
    want = R.agg_terms(d, {"field": STATUS, "size": 4})["buckets"]
    got = res["aggregations"]["m"]["buckets"]
    assert [(b["key"], b["doc_count"]) for b in got] == [(b["key"], b["doc_count"]) for b in want]
    for b in got:
        st = R.agg_stats([x for x in d if R.value(x, STATUS) == b["key"]], BYTES)
        assert _approx(b["b"]["value"], st["avg"]), (b, st)


def test_agg_date_histogram_with_sub_terms(compat_server, docs):
    spec = {"field": TS, "calendar_interval": "day"}
    body = {"size": 0, "query": rng(STATUS, gte=400),
            "aggs": {"h": {"date_histogram": spec, "aggs": {"s": {"terms": {"field": STATUS, "size": 2}}}}}}
    res = _agg_search(compat_server, AP, body)
    d = _agg_docs(docs, AP, rng(STATUS, gte=400))
    want = R.agg_date_histogram(d, spec)
    got = res["aggregations"]["h"]["buckets"]
    assert [(b["key"], b["doc_count"]) for b in got] == [(b["key"], b["doc_count"]) for b in want]
    for b in got:
        sub = [x for x in d if R.date_bucket_key(x.ts, spec) == b["key"]]
        w = R.agg_terms(sub, {"field": STATUS, "size": 2})
        assert [(x["key"], x["doc_count"]) for x in b["s"]["buckets"]] == [(x["key"], x["doc_count"]) for x in w["buckets"]]


def test_agg_with_hits(compat_server, docs):
    """Aggregations and hits in one response: the hits are not affected by the aggregation."""
    body = {"size": 5, "query": term(METHOD, "POST"), "aggs": {"s": {"sum": {"field": BYTES}}}}
    res = _agg_search(compat_server, AP, body)
    d = _agg_docs(docs, AP, term(METHOD, "POST"))
    assert {h["_id"] for h in res["hits"]["hits"]} == {x.id for x in d}
    assert _approx(res["aggregations"]["s"]["value"], R.agg_stats(d, BYTES)["sum"])


def test_agg_unknown_type_is_rejected(compat_server):
    r = _search(compat_server, AP, {"size": 0, "aggs": {"x": {"no_such_agg": {"field": BYTES}}}})
    if r.status_code == 400 and "aggregations are not supported" in r.text:
        pytest.xfail(AGG_PENDING_MARK)
    _err(r, 400)
