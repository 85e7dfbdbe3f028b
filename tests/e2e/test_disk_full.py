"""A full disk: writes fail cleanly, reads keep working, and writes recover once space is back.

Needs root (it mounts a 16 MB tmpfs as the data dir); skipped otherwise.
"""

import errno
import json
import os
import subprocess
from datetime import datetime, timezone

import pytest
import requests

from conftest import wait_for

INDEX = "diskfull"
TS = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")

pytestmark = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to mount a tmpfs")


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(path):
    """Writes `path` until the file system is full (down to the last byte)."""
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 20, 1 << 12, 1):
            block = b"\0" * size
            while True:
                try:
                    f.write(block)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
        try:
            os.fsync(f.fileno())
        except OSError:
            pass


def bulk_lines(prefix, n, size=2000):
    lines = []
    for i in range(n):
        lines += [{"create": {"_index": INDEX, "_id": f"{prefix}-{i}"}}, {"@timestamp": TS, "message": f"{prefix} {i} " + "y" * size}]
    return lines


def ids_present(srv, ids):
    r = srv.post(f"/{INDEX}/_search", json={"query": {"ids": {"values": ids}}, "size": len(ids) + 10, "_source": False})
    assert r.status_code == 200, r.text
    return sorted(h["_id"] for h in r.json()["hits"]["hits"])


def test_disk_full_fails_writes_cleanly_and_recovers(cairn_factory, small_fs):
    srv = cairn_factory(data_dir=small_fs / "data")

    r = srv.bulk(bulk_lines("before", 10, size=100), params={"refresh": "true"})
    assert r.status_code == 200 and r.json()["errors"] is False, r.text
    assert srv.count(INDEX) == 10

    ballast = small_fs / "ballast"
    fill(ballast)
    assert os.statvfs(small_fs).f_bavail == 0

    # Writes fail with an error the client can see: a 5xx/429 with an ES-shaped body, or
    # per-item errors. No item may claim success on a full disk.
    failed_ids = [f"full-{i}" for i in range(50)]
    r = srv.bulk(bulk_lines("full", 50))
    if r.status_code == 200:
        body = r.json()
        assert body["errors"] is True, f"bulk on a full disk reported no errors: {r.text[:1000]}"
        for item in body["items"]:
            res = item["create"]
            assert res["status"] >= 400, f"an item was acknowledged on a full disk: {res}"
            assert res["error"]["type"] and res["error"]["reason"], res
    else:
        assert r.status_code >= 500 or r.status_code == 429, r.text[:1000]
        err = r.json()["error"]
        assert err["type"] and err["reason"], r.text[:1000]
    r = srv.post(f"/{INDEX}/_doc", json={"@timestamp": TS, "message": "single doc on a full disk"})
    assert r.status_code >= 429, f"single-document index on a full disk: {r.status_code} {r.text[:500]}"
    assert srv.is_running(), "the server died on a full disk"

    # Reads keep working.
    assert srv.get("/").status_code == 200
    r = srv.post(f"/{INDEX}/_search", json={"query": {"match_all": {}}, "size": 100})
    assert r.status_code == 200 and r.json()["hits"]["total"]["value"] == 10, r.text[:1000]
    assert srv.count(INDEX) == 10

    # Space is back: new writes succeed (the server may need a moment to notice).
    ballast.unlink()
    attempt = {"n": 0}
    recovered_ids = []

    def write_ok():
        attempt["n"] += 1
        prefix = f"after{attempt['n']}"
        r = srv.bulk(bulk_lines(prefix, 20, size=100))
        if r.status_code == 200 and not r.json()["errors"]:
            recovered_ids.extend(f"{prefix}-{i}" for i in range(20))
            return True
        return False

    wait_for(write_ok, timeout=30, interval=0.2, what="a successful bulk after the disk was freed")
    srv.refresh(INDEX)
    assert ids_present(srv, recovered_ids) == sorted(recovered_ids)
    assert ids_present(srv, failed_ids) == [], "items refused on the full disk appeared later"
    assert srv.is_running()

    # And all of that holds after a restart (the WAL has no half-written records left).
    srv.restart()
    srv.refresh(INDEX)
    assert ids_present(srv, failed_ids) == []
    assert ids_present(srv, recovered_ids) == sorted(recovered_ids)
    assert len(ids_present(srv, [f"before-{i}" for i in range(10)])) == 10
