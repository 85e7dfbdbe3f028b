#!/usr/bin/env python3
"""Alert engine benchmark: N rules of mixed types on one `cairn serve`, over an index of
DOCS generated documents, each rule on RUN_EVERY. Reports the engine's CPU share (server
CPU with the rules minus the same server idle without them), RssAnon, and the lag from a
matching log line being ingested to its alert reaching a local webhook.

  CAIRN_BIN=target/release/cairn DOCS=10000000 RULES=100 RUN_EVERY=60 python3 bench/alert_bench.py

Prints one JSON object. Nothing here asserts: numbers go to bench/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = os.environ.get("CAIRN_BIN", str(ROOT / "target" / "debug" / "cairn"))
DOCS = int(os.environ.get("DOCS", "200000"))
RULES = int(os.environ.get("RULES", "100"))
RUN_EVERY = int(os.environ.get("RUN_EVERY", "60"))
MEASURE_S = int(os.environ.get("MEASURE_S", str(3 * RUN_EVERY)))
LAG_SAMPLES = int(os.environ.get("LAG_SAMPLES", "3"))
# Live documents per second during both measurements, so rule windows are not empty.
LIVE_RATE = int(os.environ.get("LIVE_RATE", "200"))
INDEX = "bench-alerts"
CLK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def cpu_seconds(pid: int) -> float:
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / CLK


def rss_anon_mib(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Hook:
    def __init__(self):
        self.seen: dict[str, float] = {}
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                b = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                marker = b.get("marker")
                if marker and marker not in outer.seen:
                    outer.seen[marker] = time.time()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", free_port()), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"


def rule_text(i: int, hook: str) -> str:
    common = f"index: {INDEX}\nrun_every: {{seconds: {RUN_EVERY}}}\nbuffer_time: {{seconds: {RUN_EVERY * 2}}}\nrealert: {{minutes: 0}}\n"
    kinds = [
        f"type: any\nfilter:\n- term: {{marker_rule: r{i}}}\nalert: [post]\nhttp_post_url: {hook}\n",
        f"type: frequency\nnum_events: 1000000\ntimeframe: {{minutes: 5}}\nuse_count_query: true\nfilter:\n- term: {{level: error}}\n- term: {{service: svc-{i % 20}}}\nalert: [debug]\n",
        f"type: metric_aggregation\nmetric_agg_key: latency_ms\nmetric_agg_type: avg\nmax_threshold: 100000\nquery_key: service\nalert: [debug]\n",
        f"type: blacklist\ncompare_key: user\nblacklist: [nobody-{i}]\nalert: [debug]\n",
        f"type: flatline\nthreshold: 1\ntimeframe: {{minutes: 5}}\nuse_count_query: true\nfilter:\n- term: {{service: svc-{i % 20}}}\nalert: [debug]\n",
    ]
    return f"name: bench rule {i}\n" + common + kinds[i % len(kinds)]


def live_ingest(url: str, stop: threading.Event) -> None:
    rng = random.Random(11)
    while not stop.is_set():
        t = time.time()
        lines = []
        for _ in range(LIVE_RATE):
            lines.append(json.dumps({"index": {}}))
            lines.append(json.dumps({
                "@timestamp": iso(t), "service": f"svc-{rng.randrange(20)}", "level": rng.choice(["info", "info", "warn", "error"]),
                "user": f"u{rng.randrange(5000)}", "latency_ms": rng.randrange(1, 2000), "message": "request handled",
            }))
        try:
            requests.post(f"{url}/{INDEX}/_bulk", data="\n".join(lines) + "\n", headers={"Content-Type": "application/x-ndjson"}, timeout=60)
        except requests.RequestException:
            pass
        stop.wait(max(0.0, 1.0 - (time.time() - t)))


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="cairn-alert-bench-"))
    rules = tmp / "rules"
    rules.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    hook = Hook()
    log = open(tmp / "server.log", "wb")
    proc = subprocess.Popen([BIN, "serve", "--data-dir", str(tmp / "data"), "--listen", f"127.0.0.1:{port}", "--rules-dir", str(rules)], stdout=log, stderr=log)
    try:
        for _ in range(600):
            try:
                if requests.get(url, timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        rng = random.Random(7)
        now = time.time()
        t0 = time.time()
        batch = []
        for n in range(DOCS):
            batch.append(json.dumps({"index": {}}))
            batch.append(json.dumps({
                "@timestamp": iso(now - 3600 + 3600 * n / DOCS),
                "service": f"svc-{rng.randrange(20)}", "level": rng.choice(["info", "info", "warn", "error"]),
                "user": f"u{rng.randrange(5000)}", "latency_ms": rng.randrange(1, 2000), "message": "request handled",
            }))
            if len(batch) >= 20000:
                requests.post(f"{url}/{INDEX}/_bulk", data="\n".join(batch) + "\n", headers={"Content-Type": "application/x-ndjson"}, timeout=300).raise_for_status()
                batch = []
        if batch:
            requests.post(f"{url}/{INDEX}/_bulk", data="\n".join(batch) + "\n", headers={"Content-Type": "application/x-ndjson"}, timeout=300).raise_for_status()
        requests.post(f"{url}/{INDEX}/_refresh", timeout=300)
        ingest_s = time.time() - t0
        time.sleep(5)
        stop_live = threading.Event()
        threading.Thread(target=live_ingest, args=(url, stop_live), daemon=True).start()
        time.sleep(3)

        c0 = cpu_seconds(proc.pid)
        time.sleep(MEASURE_S / 3)
        idle_cpu = (cpu_seconds(proc.pid) - c0) / (MEASURE_S / 3)

        for i in range(RULES):
            (rules / f"r{i}.yaml").write_text(rule_text(i, hook.url))
        time.sleep(RUN_EVERY + 5)  # every rule has run once (the first run reads buffer_time)
        c0 = cpu_seconds(proc.pid)
        t_busy = time.time()
        lags = []
        for k in range(LAG_SAMPLES):
            marker = f"m{k}"
            sent = time.time()
            requests.post(f"{url}/{INDEX}/_doc?refresh=false", json={"@timestamp": iso(sent), "marker_rule": "r0", "marker": marker}, timeout=30).raise_for_status()
            deadline = sent + RUN_EVERY * 3 + 30
            while marker not in hook.seen and time.time() < deadline:
                time.sleep(0.05)
            lags.append(round(hook.seen.get(marker, float("nan")) - sent, 2))
        rest = t_busy + MEASURE_S - time.time()
        if rest > 0:
            time.sleep(rest)
        busy_cpu = (cpu_seconds(proc.pid) - c0) / (time.time() - t_busy)
        stop_live.set()
        metrics = requests.get(f"{url}/_cairn/metrics", timeout=30).text
        runs = sum(float(l.split()[-1]) for l in metrics.splitlines() if l.startswith("cairn_alert_rule_runs_total{"))
        errors = sum(float(l.split()[-1]) for l in metrics.splitlines() if l.startswith("cairn_alert_rule_errors_total{"))
        out = {
            "docs": DOCS, "rules": RULES, "run_every_s": RUN_EVERY, "ingest_s": round(ingest_s, 1),
            "server_cpu_idle_cores": round(idle_cpu, 4), "server_cpu_with_rules_cores": round(busy_cpu, 4),
            "live_docs_per_s": LIVE_RATE, "engine_cpu_share_of_one_core_pct": round(100 * (busy_cpu - idle_cpu), 2),
            "rss_anon_mib": round(rss_anon_mib(proc.pid), 1), "rule_runs": runs, "rule_errors": errors,
            "ingest_to_alert_lag_s": lags, "binary": BIN,
        }
        print(json.dumps(out))
        return 0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        hook.srv.shutdown()


if __name__ == "__main__":
    sys.exit(main())
