"""`cairn import`: AWS log buckets (as a directory and from a real S3-compatible server),
deterministic ids, resume, truncated gzip, time pruning.

The samples in tests/data/import/ are real AWS log lines (see tests/data/NOTICE.md); the
tests gzip them and lay them out under the object keys AWS writes.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CAIRN_BIN, DATA_DIR, OUTPUT_DIR, free_port, wait_for

SAMPLES = DATA_DIR / "import"
ACCOUNT = "123456789012"
ALB_DIR = f"AWSLogs/{ACCOUNT}/elasticloadbalancing/us-east-1/2022/12/06"
NLB_DIR = f"AWSLogs/{ACCOUNT}/elasticloadbalancing/us-east-2/2020/04/01"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def alb_key(i: int, minute: int = 45) -> str:
    return (
        f"{ALB_DIR}/{ACCOUNT}_elasticloadbalancing_us-east-1_app.my-alb.f12345d67890_"
        f"20221206T17{minute:02d}Z_10.0.1.5_r{i:04d}.log.gz"
    )


def bucket_files() -> dict[str, bytes]:
    """A bucket-like tree: ALB (gzip, one multi-member), NLB, CloudFront, S3 access
    (flat and partitioned), CloudTrail and the ELB test object."""
    alb = sample("albaccesslog.log")  # 2 lines: status 301 and 404
    return {
        alb_key(1): gzip.compress(alb),
        # Multi-member gzip: 4 lines.
        alb_key(2, 50): gzip.compress(alb) + gzip.compress(alb),
        f"AWSLogs/{ACCOUNT}/ELBAccessLogTestFile": b"Enable AccessLog for ELB: my-alb at 2022-12-06T17:00:00.000Z\n",
        f"{NLB_DIR}/{ACCOUNT}_elasticloadbalancing_us-east-2_net.my-network-loadbalancer.c6e77e28c25b2234_20200401T0855Z_f1e2d3c4.log.gz": gzip.compress(
            sample("nlbaccesslog.log")
        ),
        # CloudFront standard log: 2 records (status 200, client 13.231.15.129).
        "cloudfront/E2EXAMPLE123.2023-04-26-07.a1b2c3d4.gz": gzip.compress(sample("cloudfront.log")),
        # S3 server access logs are plain text: 1 record each (status 200, 192.0.2.3).
        "s3-access/2019-02-06-00-00-38-5A3B0A1C2D3E4F5A": sample("s3accesslog.log"),
        f"s3-access/{ACCOUNT}/us-west-1/amzn-s3-demo-bucket1/2019/02/06/2019-02-06-00-00-38-ABCDEF0123456789": sample(
            "s3accesslog.log"
        ),
        f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-2/2023/05/19/{ACCOUNT}_CloudTrail_us-east-2_20230519T0745Z_abcdefghijklmnop.json.gz": gzip.compress(
            sample("cloudtrail-log-file.json")
        ),
    }


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for key, body in files.items():
        p = root / key
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(body)


def run_import(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run(
        [str(CAIRN_BIN), "import", "--progress", "log", *args],
        cwd=cwd,
        env=e,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    with open(OUTPUT_DIR / "test_import.cairn-import.log", "a") as f:
        f.write(f"\n===== cairn import {' '.join(args)} -> {p.returncode}\n{p.stderr}")
    return p


def count(srv, query: dict | None = None, index: str = "logs-*") -> int:
    srv.refresh()
    return srv.count(index, query)


def term(field: str, value) -> dict:
    return {"term": {field: value}}


@pytest.fixture
def server(cairn_factory):
    # The samples are years old.
    return cairn_factory(extra_args=["--max-past", "36500d"])


def test_import_directory_like_an_aws_bucket(server, tmp_path):
    bucket = tmp_path / "bucket"
    write_tree(bucket, bucket_files())
    state = tmp_path / "state.json"
    p = run_import([str(bucket), "--server", server.url, "--state", str(state)], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "1 control objects skipped" in p.stderr, p.stderr

    # 6 ALB + 2 NLB + 2 CloudFront + 2 S3 access + 2 CloudTrail.
    assert count(server) == 14
    assert count(server, term("http.response.status_code", 301)) == 3
    assert count(server, term("http.response.status_code", 404)) == 3
    assert count(server, term("http.response.status_code", 200)) == 4
    assert count(server, term("source.ip", "13.231.15.129")) == 2
    assert count(server, term("source.ip", "72.21.218.154")) == 2
    assert count(server, index="logs-aws-elb") == 8
    assert count(server, index="logs-aws-cloudfront_logs") == 2
    assert count(server, index="logs-aws-s3access") == 2
    assert count(server, index="logs-aws-cloudtrail") == 2

    # Fields from the key when the record lacks them, and the object + offset.
    r = server.post(
        "/logs-aws-elb/_search",
        json={"query": {"term": {"aws.elb.name": "app/my-alb/f12345d67890"}}, "size": 10},
    )
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]["hits"]
    # The ALB records name their LB (random/lb/...): the key's name is only a fallback.
    assert hits == []
    r = server.post("/logs-aws-elb/_search", json={"query": {"term": {"cloud.region": "us-east-1"}}, "size": 10})
    hits = r.json()["hits"]["hits"]
    assert len(hits) == 6
    for h in hits:
        src = h["_source"]
        assert src["cloud"]["account"]["id"] == ACCOUNT
        assert src["log"]["file"]["path"].startswith(str(bucket.resolve()))
        assert isinstance(src["log"]["offset"], int)
    assert {h["_source"]["log"]["offset"] for h in hits} >= {0}
    r = server.post("/logs-aws-cloudfront_logs/_search", json={"size": 10})
    for h in r.json()["hits"]["hits"]:
        assert h["_source"]["aws"]["cloudfront"]["distribution_id"] == "E2EXAMPLE123"
    # CloudTrail documents use the eventID.
    assert server.get("/logs-aws-cloudtrail/_doc/94960c89-0827-44eb-9c4f-f979111461b8").status_code == 200

    state_doc = json.loads(state.read_text())
    assert len(state_doc["objects"]) == 7

    # A rerun with the state file imports nothing; without it, everything answers 409.
    p = run_import([str(bucket), "--server", server.url, "--state", str(state)], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "0 to import, 7 already imported" in p.stderr, p.stderr
    p = run_import([str(bucket), "--server", server.url, "--no-state"], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "14 docs (0 new, 14 already present)" in p.stderr, p.stderr
    assert count(server) == 14


def test_since_until_prune_by_key_date(server, tmp_path):
    bucket = tmp_path / "bucket"
    write_tree(bucket, bucket_files())
    p = run_import(
        [str(bucket), "--server", server.url, "--no-state", "--since", "2023-01-01", "--until", "2023-05-01"],
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    # Only the CloudFront object (2023-04-26) is in range; 2 ALB (2022), NLB (2020), 2 S3 (2019) and
    # CloudTrail 2023-05-19 are pruned by their keys.
    assert "6 pruned by their key date" in p.stderr, p.stderr
    assert count(server) == 2
    assert count(server, term("source.ip", "13.231.15.129")) == 2


def test_truncated_gzip_keeps_the_lines_before_and_is_not_finished(server, tmp_path):
    line = sample("albaccesslog.log").splitlines(keepends=True)[0]
    whole = gzip.compress(line * 3000)
    d = tmp_path / "logs"
    d.mkdir()
    (d / "cut.log.gz").write_bytes(whole[: len(whole) // 2])
    (d / "ok.log").write_bytes(line * 3)
    state = tmp_path / "state.json"
    args = [str(d), "--server", server.url, "--state", str(state), "--format", "aws-alb", "--index", "alb"]
    p = run_import(args, cwd=tmp_path)
    assert p.returncode != 0
    assert "truncated" in p.stderr and "cut.log.gz" in p.stderr, p.stderr
    n = count(server, index="alb")
    assert 3 < n < 3003
    finished = json.loads(state.read_text())["objects"]
    assert [k for k in finished if k.endswith("ok.log")] and not [k for k in finished if k.endswith("cut.log.gz")]
    # The rerun sends the damaged object again: same ids, nothing duplicated.
    p = run_import(args, cwd=tmp_path)
    assert p.returncode != 0
    assert count(server, index="alb") == n


# --- S3: a real S3-compatible server (moto) on loopback ----------------------------------


@pytest.fixture
def s3_server(tmp_path):
    pytest.importorskip("boto3")
    pytest.importorskip("moto")
    port = free_port()
    log = open(tmp_path / "moto.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
    )

    def up():
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    try:
        wait_for(up, 60, 0.1, "moto S3 server")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}


def s3_client(endpoint: str):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def test_import_from_s3_with_resume(server, s3_server, tmp_path):
    s3 = s3_client(s3_server)
    s3.create_bucket(Bucket="central-logs")
    alb = sample("albaccesslog.log")
    n_objects = 40
    for i in range(n_objects):
        s3.put_object(Bucket="central-logs", Key="prefix/" + alb_key(i, i % 60), Body=gzip.compress(alb))
    s3.put_object(Bucket="central-logs", Key=f"prefix/AWSLogs/{ACCOUNT}/ELBAccessLogTestFile", Body=b"Enable AccessLog for ELB: x at 2022-12-06T17:00:00.000Z\n")
    # Another prefix that the import must not read.
    s3.put_object(Bucket="central-logs", Key="other/x.log.gz", Body=gzip.compress(alb))

    state = tmp_path / "state.json"
    src = f"s3://central-logs/prefix/AWSLogs/{ACCOUNT}/elasticloadbalancing/"
    base = [src, "--endpoint", s3_server, "--server", server.url, "--state", str(state)]

    # 1. A first run stopped after 5 objects.
    p = run_import(base + ["--max-objects", "5"], cwd=tmp_path, env=S3_ENV)
    assert p.returncode == 0, p.stderr
    assert count(server) == 10
    assert len(json.loads(state.read_text())["objects"]) == 5

    # 2. A run killed mid-way (one document per request to make it slow enough).
    proc = subprocess.Popen(
        [str(CAIRN_BIN), "import", "--progress", "off", "--workers", "1", "--batch-docs", "1", *base],
        cwd=tmp_path,
        env={**os.environ, **S3_ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def progressed():
        try:
            return len(json.loads(state.read_text())["objects"]) >= 8
        except (ValueError, OSError):
            return False

    try:
        wait_for(lambda: progressed() or proc.poll() is not None, 120, 0.005, "the import to progress")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finished_before = len(json.loads(state.read_text())["objects"])
    assert finished_before >= 8

    # 3. The rerun imports only what is left; exact counts, nothing duplicated.
    p = run_import(base, cwd=tmp_path, env=S3_ENV)
    assert p.returncode == 0, p.stderr
    assert f"{finished_before} already imported" in p.stderr, p.stderr
    assert count(server) == 2 * n_objects
    assert count(server, term("http.response.status_code", 301)) == n_objects
    assert count(server, term("cloud.account.id", ACCOUNT)) == 2 * n_objects
    r = server.post(
        "/logs-*/_search",
        json={"size": 0, "aggs": {"files": {"cardinality": {"field": "log.file.path"}}}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["aggregations"]["files"]["value"] == n_objects
    r = server.post("/logs-*/_search", json={"size": 1, "query": {"term": {"log.offset": 0}}})
    path = r.json()["hits"]["hits"][0]["_source"]["log"]["file"]["path"]
    assert path.startswith("s3://central-logs/prefix/AWSLogs/")
    p = run_import(base, cwd=tmp_path, env=S3_ENV)
    assert p.returncode == 0, p.stderr
    assert f"0 to import, {n_objects} already imported" in p.stderr, p.stderr

    # 4. A rewritten object (new ETag): its lines get new ids, never mistaken for old ones.
    s3.put_object(Bucket="central-logs", Key="prefix/" + alb_key(0, 0), Body=gzip.compress(alb + alb[: alb.index(b"\n") + 1]))
    p = run_import(base, cwd=tmp_path, env=S3_ENV)
    assert p.returncode == 0, p.stderr
    assert "3 docs (3 new, 0 already present)" in p.stderr, p.stderr
    assert count(server) == 2 * n_objects + 3


def test_rejected_documents_are_reported_and_fail_the_run(server, tmp_path):
    r = server.put("/strict", json={"mappings": {"properties": {"n": {"type": "long"}}}})
    assert r.status_code == 200, r.text
    f = tmp_path / "app.json"
    f.write_text('{"@timestamp":"2024-01-01T00:00:00Z","n":1}\n{"@timestamp":"2024-01-01T00:00:01Z","n":"not a number"}\n')
    state = tmp_path / "state.json"
    p = run_import([str(f), "--server", server.url, "--index", "strict", "--state", str(state)], cwd=tmp_path)
    assert p.returncode != 0
    assert "1 rejected" in p.stderr and "rejected: [strict]" in p.stderr, p.stderr
    assert count(server, index="strict") == 1
    assert not state.exists() or not json.loads(state.read_text())["objects"]
