#!/usr/bin/env python3
"""Agent benchmark driver (called by bench/run-agent.sh).

Runs, on one generated nginx access-log corpus:
  1. file -> cairn agent -> file sink
  2. file -> cairn agent -> cairn serve (_bulk)
  3. file -> rsyslogd (imfile + omelasticsearch) -> cairn serve, when rsyslogd and its
     omelasticsearch module are installed (Debian: rsyslog, rsyslog-elasticsearch)
and reports throughput (MB/s of input), the shipper's CPU seconds and peak RSS
(VmHWM) and, for the server runs, the server's CPU seconds. Everything is measured
from /proc; completion is detected by polling (metrics or _count), never by sleeping.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAIRN = Path(os.environ.get("CAIRN_BIN", ROOT / "target" / "release" / "cairn"))
OUT = Path(os.environ.get("BENCH_OUT") or ROOT / "bench" / "out" / "agent")
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gen(path: Path, size_mb: int, seed: int = 1) -> int:
    """nginx combined-format lines; returns the line count."""
    rng = random.Random(seed)
    paths = ["/", "/api/v1/orders", "/api/v1/users/42", "/static/app.js", "/login", "/health"]
    agents = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0", "curl/8.5.0", "kube-probe/1.30"]
    target = size_mb << 20
    n = 0
    written = 0
    with open(path, "w") as f:
        buf = []
        while written < target:
            line = (
                f'10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)} - - '
                f'[01/May/2024:10:{rng.randrange(60):02d}:{rng.randrange(60):02d} +0000] '
                f'"{rng.choice(["GET", "POST"])} {rng.choice(paths)}?id={rng.randrange(10**6)} HTTP/1.1" '
                f'{rng.choice([200, 200, 200, 304, 404, 500])} {rng.randrange(100000)} "-" "{rng.choice(agents)}" seq={n}\n'
            )
            buf.append(line)
            written += len(line)
            n += 1
            if len(buf) >= 10000:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))
    return n


def proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (FileNotFoundError, ProcessLookupError):
        return float("nan")


def proc_hwm_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return float("nan")


def http(method: str, url: str, body: bytes | None = None) -> dict:
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"{}")


def wait(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception:  # noqa: BLE001 - keep polling until the deadline
            pass
        time.sleep(0.1)
    raise TimeoutError(what)


def metrics(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {l.split(" ")[0]: float(l.split(" ")[1]) for l in text.splitlines() if l and not l.startswith("#")}


def start_server(name: str):
    port = free_port()
    data = OUT / f"{name}-server-data"
    shutil.rmtree(data, ignore_errors=True)
    log = open(OUT / f"{name}-server.log", "w")
    p = subprocess.Popen([str(CAIRN), "serve", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}"], stdout=log, stderr=log)
    wait(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).status == 200, 60, "server start")
    return p, port


def count(port: int, index: str) -> int:
    http("POST", f"http://127.0.0.1:{port}/{index}/_refresh")
    return int(http("GET", f"http://127.0.0.1:{port}/{index}/_count")["count"])


def run_agent(name: str, input_file: Path, lines: int, sink: dict, server=None) -> dict:
    work = OUT / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    api = free_port()
    cfg = {
        "data_dir": str(work / "data"),
        "api": {"address": f"127.0.0.1:{api}"},
        "sources": {"app": {"type": "file", "include": [str(input_file)], "read_from": "beginning"}},
        "sinks": {"out": dict(sink, inputs=["app"])},
    }
    (work / "agent.yaml").write_text(json.dumps(cfg))
    return measure(name, [str(CAIRN), "agent", "--config", str(work / "agent.yaml")], work / "agent.log",
                   lambda: metrics(api)["cairn_agent_events_out_total"] >= lines, server)


def measure(name: str, cmd: list[str], log_path: Path, done, server=None) -> dict:
    """Runs a shipper until `done()` holds: its wall time, CPU seconds and peak RSS, and
    the server's CPU seconds meanwhile."""
    log = open(log_path, "w")
    srv_cpu0 = proc_cpu(server.pid) if server else 0.0
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=log, stderr=log)
    try:
        wait(done, 3600, f"{name}: delivery")
        elapsed = time.monotonic() - t0
        cpu = proc_cpu(p.pid)
        rss = proc_hwm_mib(p.pid)
    finally:
        p.kill()
        p.wait()
    res = {"run": name, "seconds": round(elapsed, 2), "agent_cpu_s": round(cpu, 2), "agent_peak_rss_mib": round(rss, 1)}
    if server:
        res["server_cpu_s"] = round(proc_cpu(server.pid) - srv_cpu0, 2)
    return res


def run_rsyslog(input_file: Path, lines: int, server, port: int) -> dict | None:
    rsyslogd = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    if not Path(rsyslogd).exists() or not Path("/usr/lib/x86_64-linux-gnu/rsyslog/omelasticsearch.so").exists():
        return None
    work = OUT / "rsyslog"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    conf = work / "rsyslog.conf"
    conf.write_text(f"""
global(workDirectory="{work}")
module(load="imfile")
module(load="omelasticsearch")
template(name="doc" type="list" option.jsonf="on") {{
  property(outname="@timestamp" name="timegenerated" dateFormat="rfc3339" format="jsonf")
  property(outname="message" name="msg" format="jsonf")
}}
input(type="imfile" File="{input_file}" Tag="app" freshStartTail="off" readMode="0" ruleset="ship")
ruleset(name="ship" queue.type="LinkedList" queue.size="200000" queue.dequeueBatchSize="5000") {{
  action(type="omelasticsearch" server="127.0.0.1" serverport="{port}" searchIndex="bench-rsyslog"
         template="doc" bulkmode="on" maxbytes="4m" esVersion.major="8" action.resumeRetryCount="-1"
         queue.type="LinkedList" queue.size="200000" queue.dequeueBatchSize="5000" queue.workerThreads="2")
}}
""")
    return measure("rsyslog imfile -> omelasticsearch -> cairn",
                   [rsyslogd, "-n", "-f", str(conf), "-i", str(work / "rsyslog.pid")], work / "rsyslog.log",
                   lambda: count(port, "bench-rsyslog") >= lines, server)


def run_server_part(small: Path, n_small: int, results: list) -> None:
    """file -> agent -> cairn serve, and the same through rsyslog, each into a fresh
    server (neither pays for the other's index or warms the server for it)."""

    def into_fresh_server(label: str, index: str, run) -> bool:
        server, port = start_server(label)
        try:
            r = run(server, port)
            if r is None:
                return False
            r["mb_per_s"] = round(small.stat().st_size / 2**20 / r["seconds"], 1)
            r["indexed"] = count(port, index)
            results.append(r)
            return True
        finally:
            server.terminate()
            server.wait(120)

    # AGENT_SINK: extra sink settings as JSON, e.g. '{"concurrency": 4}'.
    extra = json.loads(os.environ.get("AGENT_SINK", "{}"))
    into_fresh_server("agent", "bench-agent", lambda server, port: run_agent(
        "agent -> cairn", small, n_small,
        {"type": "elasticsearch", "endpoints": [f"http://127.0.0.1:{port}"], "index": "bench-agent", **extra}, server))
    if not into_fresh_server("rsyslog", "bench-rsyslog",
                             lambda server, port: run_rsyslog(small, n_small, server, port)):
        print("rsyslogd with omelasticsearch not installed: skipped the Debian shipper run", file=sys.stderr)


def main() -> int:
    file_mb = int(os.environ.get("FILE_MB", "512"))
    server_mb = int(os.environ.get("SERVER_MB", "64"))
    OUT.mkdir(parents=True, exist_ok=True)
    big, small = OUT / "input-big.log", OUT / "input-small.log"
    n_big = gen(big, file_mb)
    n_small = gen(small, server_mb, seed=2) if server_mb > 0 else 0
    results = []
    r = run_agent("agent-file-sink", big, n_big, {"type": "file", "path": str(OUT / "agent-file-sink" / "out.ndjson")})
    r["mb_per_s"] = round(big.stat().st_size / 2**20 / r["seconds"], 1)
    r["mb_per_cpu_s"] = round(big.stat().st_size / 2**20 / r["agent_cpu_s"], 1)
    results.append(r)
    shutil.rmtree(OUT / "agent-file-sink", ignore_errors=True)
    if server_mb > 0:
        run_server_part(small, n_small, results)
    else:
        print("SERVER_MB=0: skipped the runs into cairn serve", file=sys.stderr)
    info = {"file_sink_input_mb": file_mb, "server_input_mb": server_mb, "lines_big": n_big, "lines_small": n_small,
            "cpus": os.cpu_count(), "results": results}
    print(json.dumps(info, indent=2))
    (OUT / "results.json").write_text(json.dumps(info, indent=2))
    for p in (big, small):
        p.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
