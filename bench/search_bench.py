#!/usr/bin/env python3
"""Search latency benchmark for Cairn: p50/p99 per query over a loaded index, peak
server RSS, and ripgrep over the same raw text for the needle, in the same run.

Usage: search_bench.py --server URL --index NAME --raw FILE [--pid PID] [--reps 30]
Prints a markdown table. Never a test: numbers only.
"""
import argparse
import http.client
import json
import shutil
import statistics
import subprocess
import time
import urllib.parse


def rss(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "RssAnon"):
                    out[k] = int(v.split()[0]) / 1024
    except OSError:
        pass
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="http://127.0.0.1:9200")
    ap.add_argument("--index", required=True)
    ap.add_argument("--raw", required=True, help="the raw corpus file (for ripgrep and the needle)")
    ap.add_argument("--pid", type=int)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--corpus", choices=["generated", "access"], default="generated",
                    help="generated JSON app logs (bench/run-search.sh) or real web access logs imported by cairn import (bench/search-samples.sh)")
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.server)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)

    def search(body):
        data = json.dumps(body)
        conn.request("POST", f"/{a.index}/_search", body=data, headers={"content-type": "application/json"})
        r = conn.getresponse()
        payload = r.read()
        if r.status != 200:
            raise SystemExit(f"HTTP {r.status}: {payload[:500]!r} for {data}")
        return json.loads(payload)

    if a.corpus == "access":
        queries, needle, size = access_queries(a.raw)
        return run(a, search, queries, needle, size)
    # A needle: a trace id that occurs once, from the middle of the corpus.
    with open(a.raw, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(size // 2)
        f.readline()
        line = json.loads(f.readline())
    needle = line["trace.id"]
    # Two adjacent alphabetic words of the message, so the phrase matches.
    toks = line["message"].split()
    pairs = [(a, b) for a, b in zip(toks, toks[1:]) if a.isalpha() and b.isalpha()]
    phrase = " ".join(pairs[0]) if pairs else toks[0]

    queries = [
        ("needle term (trace.id)", {"query": {"term": {"trace.id": needle}}}),
        (f"phrase (message: \"{phrase}\")", {"query": {"match_phrase": {"message": phrase}}, "size": 10}),
        ("last 100 matching a term, newest first", {"query": {"term": {"log.level": "error"}}, "sort": [{"@timestamp": "desc"}], "size": 100}),
        ("24 h date_histogram at 1 m", {"size": 0, "query": {"range": {"@timestamp": {"gte": "now-24h"}}}, "aggs": {"h": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1m"}}}}),
        ("terms top-10 on user.id (high cardinality)", {"size": 0, "aggs": {"t": {"terms": {"field": "user.id", "size": 10}}}}),
        ("cardinality of user.id", {"size": 0, "aggs": {"c": {"cardinality": {"field": "user.id"}}}}),
        ("KQL as typed in a UI", {"query": {"kql": {"query": "service.name:checkout-service and log.level:(error or warn) and not http.response.status_code:200"}}, "sort": [{"@timestamp": "desc"}], "size": 50}),
    ]
    run(a, search, queries, needle, size)


def access_queries(raw: str):
    """Queries over real access logs parsed with ECS names (source.ip,
    http.response.status_code, ...): the same shapes as the generated corpus's."""
    with open(raw, "rb") as f:
        data = f.read()
    lines = data.splitlines()
    needle = lines[len(lines) // 2].split(b" ", 1)[0].decode()
    queries = [
        ("needle term (source.ip)", {"query": {"term": {"source.ip": needle}}}),
        ("last 100 matching a term, newest first", {"query": {"term": {"http.response.status_code": 404}}, "sort": [{"@timestamp": "desc"}], "size": 100}),
        # Bounded above too: the samples run past "now" (a 2016 nginx log), and empty
        # minutes up to them would be buckets (Elasticsearch's min_doc_count 0).
        ("24 h date_histogram at 1 m", {"size": 0, "query": {"range": {"@timestamp": {"gte": "now-24h", "lte": "now"}}}, "aggs": {"h": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1m"}}}}),
        ("terms top-10 on source.ip", {"size": 0, "aggs": {"t": {"terms": {"field": "source.ip", "size": 10}}}}),
        ("cardinality of source.ip", {"size": 0, "aggs": {"c": {"cardinality": {"field": "source.ip"}}}}),
        ("KQL as typed in a UI", {"query": {"kql": {"query": "http.request.method:GET and http.response.status_code >= 400 and not url.original:*.png"}}, "sort": [{"@timestamp": "desc"}], "size": 50}),
    ]
    return queries, needle, len(data)


def run(a, search, queries, needle, size):
    rows = []
    peak = {}
    for name, body in queries:
        search(body)  # warm-up
        times = []
        hits = None
        for _ in range(a.reps):
            t = time.perf_counter()
            res = search(body)
            times.append((time.perf_counter() - t) * 1000)
            hits = res["hits"]["total"]["value"] if "total" in res["hits"] else None
            if a.pid:
                for k, v in rss(a.pid).items():
                    peak[k] = max(peak.get(k, 0), v)
        times.sort()
        p50 = statistics.median(times)
        p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
        rows.append((name, p50, p99, hits))
    rg = shutil.which("rg")
    rg_ms = None
    if rg:
        t = time.perf_counter()
        subprocess.run([rg, "-c", needle, a.raw], stdout=subprocess.DEVNULL, check=False)
        rg_ms = (time.perf_counter() - t) * 1000
    print(f"| query | p50 ms | p99 ms | hits |")
    print(f"|---|---:|---:|---:|")
    for name, p50, p99, hits in rows:
        print(f"| {name} | {p50:.1f} | {p99:.1f} | {hits} |")
    if rg_ms is not None:
        print(f"\nripgrep for the same needle over the raw file ({size/1e9:.2f} GB): {rg_ms:.0f} ms "
              f"-> needle is {rg_ms / rows[0][1]:.0f}x faster in Cairn (p50)")
    if peak:
        print(f"\nserver memory during the queries: peak VmRSS {peak.get('VmRSS', 0):.0f} MiB, "
              f"RssAnon {peak.get('RssAnon', 0):.0f} MiB")


if __name__ == "__main__":
    main()
