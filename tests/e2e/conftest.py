"""Fixtures for Cairn's end-to-end tests: they start the real `cairn serve` binary.

Every server listens on a free 127.0.0.1 port with its own data dir. Its stderr goes to
`test-output/e2e/<test name>.<n>.stderr.log` (appended across restarts, with a marker line
per start) so a failing test can be debugged from the log. Waiting is always by polling
with a bounded timeout: nothing sleeps and hopes.

The binary is `$CAIRN_BIN`, else `target/debug/cairn` (what `scripts/test` builds).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterable

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
CAIRN_BIN = Path(os.environ.get("CAIRN_BIN") or REPO_ROOT / "target" / "debug" / "cairn")
OUTPUT_DIR = REPO_ROOT / "test-output" / "e2e"
DATA_DIR = REPO_ROOT / "tests" / "data"

START_TIMEOUT = 60.0  # a debug build replaying a WAL after kill -9 can take a while
STOP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.05, what: str = "condition"):
    """Polls `predicate` until it returns a truthy value; returns it. Raises after `timeout`."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - the predicate decides what counts
            last_exc = e
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)


def _safe_name(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)[:150]


class ServerExited(RuntimeError):
    pass


class CairnServer:
    """One `cairn serve` process (restartable) over one data dir and one port."""

    def __init__(self, data_dir: Path, log_path: Path, extra_args: Iterable[str] = (), env: dict | None = None, tls_ca: Path | None = None):
        # With tls_ca the server is expected to speak HTTPS with a certificate signed by it.
        self.tls_ca = tls_ca
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self._log_file = None
        self.starts = 0

    # -- addresses -------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{'https' if self.tls_ca else 'http'}://127.0.0.1:{self.port}"

    def u(self, path: str) -> str:
        return self.url + (path if path.startswith("/") else "/" + path)

    # -- process control --------------------------------------------------------------
    def command(self) -> list[str]:
        return [
            str(CAIRN_BIN),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--listen",
            f"127.0.0.1:{self.port}",
            *self.extra_args,
        ]

    def _spawn(self) -> subprocess.Popen:
        if not CAIRN_BIN.exists():
            pytest.fail(f"cairn binary not found at {CAIRN_BIN} (build it with `cargo build -p cairn` or set CAIRN_BIN)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self.starts}: {' '.join(self.command())} =====\n".encode())
        log.flush()
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        env.update(self.env)
        self._log_file = log
        return subprocess.Popen(self.command(), stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)

    def start(self, timeout: float = START_TIMEOUT, wait: bool = True) -> "CairnServer":
        """Starts the process; with wait=False returns at once (e.g. to crash it mid-recovery)."""
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        self.proc = self._spawn()
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise ServerExited(f"cairn exited with code {rc} before answering GET /\n--- stderr tail ---\n{self.stderr_tail()}")
            try:
                r = requests.get(self.url + "/", timeout=2, verify=str(self.tls_ca) if self.tls_ca else True)
                # 401: up, with authentication on.
                if r.status_code in (200, 401):
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"cairn did not answer GET / within {timeout}s\n--- stderr tail ---\n{self.stderr_tail()}")
            time.sleep(0.05)

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM and wait. Returns the exit code; fails if it does not exit in time."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                self._close_log()
                raise AssertionError(f"cairn did not exit within {timeout}s of SIGTERM (killed)\n{self.stderr_tail()}")
        self._close_log()
        return self.proc.returncode

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._close_log()

    def restart(self, timeout: float = START_TIMEOUT) -> "CairnServer":
        """Clean restart: SIGTERM (must exit 0), then start on the same data dir and port.

        After `kill9()` call `start()` instead."""
        rc = self.stop()
        assert rc == 0, f"cairn exited with {rc} on SIGTERM\n{self.stderr_tail()}"
        return self.start(timeout)

    def run_to_exit(self, timeout: float = 60.0) -> int:
        """Starts the process and waits for it to exit by itself (for startup-refusal tests)."""
        self.proc = self._spawn()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"cairn was expected to exit but was still running after {timeout}s\n{self.stderr_tail()}")
        finally:
            self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def stderr_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stderr_of_last_start(self) -> str:
        text = self.stderr_text()
        marker = f"===== start #{self.starts}:"
        i = text.rfind(marker)
        return text[i:] if i >= 0 else text

    def stderr_tail(self, n: int = 40) -> str:
        return "\n".join(self.stderr_text().splitlines()[-n:])

    # -- HTTP helpers --------------------------------------------------------------------
    def get(self, path, **kw):
        kw.setdefault("timeout", 30)
        return requests.get(self.u(path), **kw)

    def post(self, path, **kw):
        kw.setdefault("timeout", 30)
        return requests.post(self.u(path), **kw)

    def put(self, path, **kw):
        kw.setdefault("timeout", 30)
        return requests.put(self.u(path), **kw)

    def delete(self, path, **kw):
        kw.setdefault("timeout", 30)
        return requests.delete(self.u(path), **kw)

    def head(self, path, **kw):
        kw.setdefault("timeout", 30)
        return requests.head(self.u(path), **kw)

    def bulk(self, lines: list, path: str = "/_bulk", params: dict | None = None, **kw):
        """POSTs NDJSON built from `lines` (dicts are JSON-encoded, strings sent as they are)."""
        import json

        body = "".join((l if isinstance(l, str) else json.dumps(l)) + "\n" for l in lines)
        headers = {"Content-Type": "application/x-ndjson"}
        headers.update(kw.pop("headers", {}))
        return self.post(path, data=body.encode(), headers=headers, params=params, **kw)

    def refresh(self, index: str = "") -> None:
        path = f"/{index}/_refresh" if index else "/_refresh"
        r = self.post(path)
        assert r.status_code == 200, f"refresh {path}: {r.status_code} {r.text}"

    def count(self, index: str, query: dict | None = None) -> int:
        body = {"query": query} if query else None
        r = self.post(f"/{index}/_count", json=body) if body else self.get(f"/{index}/_count")
        assert r.status_code == 200, f"_count on {index}: {r.status_code} {r.text}"
        return r.json()["count"]


class ServerFactory:
    def __init__(self, base_tmp: Path, test_name: str):
        self.base_tmp = base_tmp
        self.test_name = _safe_name(test_name)
        self.servers: list[CairnServer] = []

    def __call__(self, *, data_dir: Path | None = None, extra_args: Iterable[str] = (), env: dict | None = None, start: bool = True, tls_ca: Path | None = None) -> CairnServer:
        n = len(self.servers) + 1
        if data_dir is None:
            data_dir = self.base_tmp / f"data{n}"
        log_path = OUTPUT_DIR / f"{self.test_name}.{n}.stderr.log"
        if log_path.exists():
            log_path.unlink()
        srv = CairnServer(data_dir, log_path, extra_args, env, tls_ca=tls_ca)
        self.servers.append(srv)
        if start:
            srv.start()
        return srv

    def teardown(self) -> list[str]:
        problems = []
        for srv in self.servers:
            if srv.is_running():
                try:
                    rc = srv.stop()
                    if rc != 0:
                        problems.append(f"{srv.log_path.name}: exit code {rc} after SIGTERM")
                except AssertionError as e:
                    problems.append(str(e))
        return problems


@pytest.fixture
def cairn_factory(tmp_path, request):
    """Starts servers on demand: `cairn_factory(extra_args=[...], env={...}, data_dir=...)`."""
    factory = ServerFactory(tmp_path, request.node.nodeid)
    yield factory
    problems = factory.teardown()
    assert not problems, "server shutdown problems: " + "; ".join(problems)


@pytest.fixture
def cairn(cairn_factory) -> CairnServer:
    """A fresh server with an empty data dir, stopped with SIGTERM at teardown."""
    return cairn_factory()


@pytest.fixture(scope="module")
def cairn_module(tmp_path_factory, request):
    """One server shared by the tests of a module (they must use distinct index names)."""
    factory = ServerFactory(tmp_path_factory.mktemp("cairn"), request.node.nodeid)
    srv = factory()
    yield srv
    problems = factory.teardown()
    assert not problems, "server shutdown problems: " + "; ".join(problems)


def doc_count_after_refresh(srv: CairnServer, index: str) -> int:
    srv.refresh(index)
    return srv.count(index)


def assert_es_error(r: requests.Response, status: int, etype: str | Iterable[str]) -> dict:
    """Asserts an Elasticsearch-shaped error response and returns its `error` object."""
    types = {etype} if isinstance(etype, str) else set(etype)
    assert r.status_code == status, f"expected HTTP {status} {types}, got {r.status_code}: {r.text[:2000]}"
    body = r.json()
    assert body.get("status") == status, f"`status` field: {body}"
    err = body.get("error")
    assert isinstance(err, dict), f"`error` must be an object: {body}"
    assert err.get("type") in types, f"error.type {err.get('type')!r} not in {types}: {body}"
    assert isinstance(err.get("reason"), str) and err["reason"], f"error.reason missing: {body}"
    rc = err.get("root_cause")
    assert isinstance(rc, list) and rc, f"error.root_cause must be a non-empty list: {body}"
    assert all(isinstance(c, dict) and c.get("type") and c.get("reason") for c in rc), f"root_cause entries need type+reason: {body}"
    return err


def raw_http(srv: CairnServer, method: str, path: str, body: bytes, headers: dict | None = None, timeout: float = 30.0):
    """Sends one HTTP/1.1 request over a plain socket and returns (status, headers, body).

    Unlike `requests`, it stops sending the body as soon as the server has answered (as a
    server may do when it refuses a body that is too large, then closes the connection),
    so an early 413 is read instead of surfacing as a broken pipe.
    """
    import select

    hdrs = {"Host": f"127.0.0.1:{srv.port}", "Content-Length": str(len(body)), "Connection": "close"}
    hdrs.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout) as s:
        s.sendall(head.encode())
        view = memoryview(body)
        sent = 0
        while sent < len(body):
            readable, writable, _ = select.select([s], [s], [], max(0.0, deadline - time.monotonic()))
            if readable:
                break  # the server answered (or closed) before taking the whole body
            if writable:
                try:
                    sent += s.send(view[sent : sent + 65536])
                except (BrokenPipeError, ConnectionResetError):
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("sending the request body timed out")
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                head_part, _, rest = data.partition(b"\r\n\r\n")
                m = re.search(rb"(?im)^content-length:\s*(\d+)", head_part)
                if m and len(rest) >= int(m.group(1)):
                    break
    if not data:
        raise ConnectionError(f"no HTTP response to {method} {path} (sent {sent} of {len(body)} body bytes)")
    head_part, _, rest = data.partition(b"\r\n\r\n")
    lines = head_part.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    resp_headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        resp_headers[k.strip().lower()] = v.strip()
    return status, resp_headers, rest
