"""Fixtures of the search compatibility suite.

One `cairn serve` (the real binary, started with the e2e suite's `CairnServer`) is shared by
the whole session. It runs with `CAIRN_NOW` fixed after the sample data, so date math such as
`now-1d/d` means the same on any day, and with `--max-past 36500d` so 1995/2015 timestamps
are accepted. The samples (tests/data/web-access/, see samples.py) are loaded into two
indices with an explicit mapping through `_bulk?refresh=true`.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import samples  # noqa: E402


def _load_e2e():
    """The e2e suite's conftest, loaded as a plain module (its fixtures are not registered)."""
    name = "cairn_e2e_conftest"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, samples.REPO_ROOT / "tests" / "e2e" / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


e2e = _load_e2e()
OUTPUT_DIR = samples.REPO_ROOT / "test-output" / "compat"
BULK_CHUNK = 2000


@pytest.fixture(scope="session")
def docs() -> list:
    return samples.all_docs()


@pytest.fixture(scope="session")
def docs_by_id(docs) -> dict:
    return {d.id: d for d in docs}


def _load(srv, docs) -> None:
    for index in (samples.APACHE_INDEX, samples.NASA_INDEX):
        r = srv.put(f"/{index}", json={"mappings": samples.MAPPING})
        assert r.status_code == 200, f"create {index}: {r.status_code} {r.text}"
    for i in range(0, len(docs), BULK_CHUNK):
        chunk = docs[i : i + BULK_CHUNK]
        lines = []
        for d in chunk:
            lines.append({"index": {"_index": d.index, "_id": d.id}})
            lines.append(d.source)
        last = i + BULK_CHUNK >= len(docs)
        r = srv.bulk(lines, params={"refresh": "true"} if last else None, timeout=300)
        assert r.status_code == 200, f"_bulk: {r.status_code} {r.text[:2000]}"
        body = r.json()
        if body.get("errors"):
            bad = [it for it in body["items"] if list(it.values())[0].get("status", 500) >= 300][:5]
            raise AssertionError(f"_bulk item errors: {json.dumps(bad)[:3000]}")
    for index in (samples.APACHE_INDEX, samples.NASA_INDEX):
        want = sum(1 for d in docs if d.index == index)
        got = srv.count(index)
        assert got == want, f"{index}: {got} docs searchable after _bulk?refresh=true, want {want}"


@pytest.fixture(scope="session")
def compat_server(tmp_path_factory, docs):
    """The shared server, loaded with the samples. Stopped with SIGTERM at the end."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    log = OUTPUT_DIR / "server.stderr.log"
    if log.exists():
        log.unlink()
    srv = e2e.CairnServer(
        tmp_path_factory.mktemp("compat-data"),
        log,
        extra_args=["--max-past", "36500d"],
        env={"CAIRN_NOW": samples.NOW_RFC3339},
    )
    srv.start()
    try:
        _load(srv, docs)
        yield srv
    finally:
        if srv.is_running():
            rc = srv.stop()
            assert rc == 0, f"cairn exited with {rc} on SIGTERM\n{srv.stderr_tail()}"
