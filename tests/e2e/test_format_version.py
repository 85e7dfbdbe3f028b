"""A data dir written by a future (or unknown) format is refused, and left untouched."""

import hashlib
import json
import re
from datetime import datetime, timezone


def tree_digest(root):
    """path -> sha256 of every regular file under root."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_unknown_metastore_format_version_refuses_to_start(cairn):
    srv = cairn
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = srv.bulk([{"index": {"_index": "fmt", "_id": "1"}}, {"@timestamp": now, "message": "before the downgrade"}], params={"refresh": "true"})
    assert r.status_code == 200 and r.json()["errors"] is False, r.text
    assert srv.stop() == 0

    state = srv.data_dir / "meta" / "state.json"
    assert state.is_file(), f"expected the metastore at {state}; data dir has {sorted(str(p) for p in srv.data_dir.rglob('*'))[:30]}"
    meta = json.loads(state.read_bytes())
    current = meta.get("format_version")
    assert isinstance(current, int) and current != 999, current
    meta["format_version"] = 999
    state.write_text(json.dumps(meta, indent=2))
    edited = state.read_bytes()
    others_before = {k: v for k, v in tree_digest(srv.data_dir).items() if k != "cairn.lock"}

    rc = srv.run_to_exit(timeout=60)
    log = srv.stderr_of_last_start()
    assert rc != 0, f"cairn started on a data dir with format_version 999 (exit {rc})\n{log}"
    assert re.search(r"format[ _-]?version", log, re.I), f"the error should mention the format version:\n{log}"
    assert "999" in log, f"the error should say which version it found:\n{log}"

    assert state.read_bytes() == edited, "state.json was modified by the refused start"
    others_after = {k: v for k, v in tree_digest(srv.data_dir).items() if k != "cairn.lock"}
    assert others_after == others_before, "the refused start changed files in the data dir"

    # Putting the version back makes the data readable again.
    meta["format_version"] = current
    state.write_text(json.dumps(meta, indent=2))
    srv.start()
    r = srv.get("/fmt/_doc/1")
    assert r.status_code == 200 and r.json()["_source"]["message"] == "before the downgrade", r.text


def test_unknown_partition_format_version_refuses_to_start(cairn):
    """Same for a partition written by an unknown format (its durable-point file)."""
    srv = cairn
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = srv.bulk([{"index": {"_index": "fmt-part", "_id": "1"}}, {"@timestamp": now, "message": "in a partition"}], params={"refresh": "true"})
    assert r.status_code == 200 and r.json()["errors"] is False, r.text
    assert srv.stop() == 0

    durable = sorted(srv.data_dir.rglob("cairn-durable.json"))
    assert durable, f"no partition durable-point file after a clean stop: {sorted(str(p.relative_to(srv.data_dir)) for p in srv.data_dir.rglob('*'))[:40]}"
    target = durable[0]
    point = json.loads(target.read_bytes())
    current = point.get("format_version")
    assert isinstance(current, int) and current != 999, point
    point["format_version"] = 999
    target.write_text(json.dumps(point))
    before = {k: v for k, v in tree_digest(srv.data_dir).items() if k != "cairn.lock"}

    rc = srv.run_to_exit(timeout=60)
    log = srv.stderr_of_last_start()
    assert rc != 0, f"cairn started with a partition of format_version 999 (exit {rc})\n{log}"
    assert re.search(r"format[ _-]?version", log, re.I) and "999" in log, log
    after = {k: v for k, v in tree_digest(srv.data_dir).items() if k != "cairn.lock"}
    assert after == before, "the refused start changed files in the data dir"

    point["format_version"] = current
    target.write_text(json.dumps(point))
    srv.start()
    r = srv.get("/fmt-part/_doc/1")
    assert r.status_code == 200 and r.json()["_source"]["message"] == "in a partition", r.text
