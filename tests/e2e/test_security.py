"""Security end to end: the loopback rule, the authorization matrix, API keys and Basic
auth with the official clients and curl over TLS with a self-signed CA, client
certificates, UI sessions with CSRF, the CLI on a stopped and a running server, the
admin bootstrap and the audit log."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
import requests

from conftest import CAIRN_BIN, assert_es_error, free_port

ADMIN_PW = "admin-password-1"


def basic(user: str, pw: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


def apikey(encoded: str) -> dict:
    return {"Authorization": "ApiKey " + encoded}


def cli(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    import os

    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([str(CAIRN_BIN), *args], capture_output=True, text=True, timeout=120, env=e)
    if check:
        assert p.returncode == 0, f"cairn {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def test_refuses_non_loopback_without_auth(cairn_factory, tmp_path):
    srv = cairn_factory(start=False)
    port = free_port()
    # The fixture listens on 127.0.0.1; this test needs a non-loopback address.
    srv.command = lambda: [str(CAIRN_BIN), "serve", "--data-dir", str(srv.data_dir), "--listen", f"0.0.0.0:{port}"]
    rc = srv.run_to_exit(timeout=60)
    assert rc != 0
    err = srv.stderr_of_last_start()
    assert "refusing to listen on 0.0.0.0" in err
    assert "--auth" in err and "--insecure" in err and "CAIRN_ADMIN_PASSWORD" in err
    # --insecure starts (and says so loudly).
    srv.command = lambda: [str(CAIRN_BIN), "serve", "--data-dir", str(srv.data_dir), "--listen", f"0.0.0.0:{port}", "--insecure"]
    srv.port = port
    srv.start()
    assert srv.get("/").status_code == 200
    assert "AUTHENTICATION IS OFF" in srv.stderr_of_last_start()


@pytest.fixture(scope="module")
def secured(tmp_path_factory, request):
    """A server with --auth, users of every role and a limited API key."""
    from conftest import ServerFactory

    factory = ServerFactory(tmp_path_factory.mktemp("sec"), request.node.nodeid)
    srv = factory(extra_args=["--auth"], env={"CAIRN_ADMIN_PASSWORD": ADMIN_PW})
    adm = basic("admin", ADMIN_PW)
    users = {
        "writer": {"roles": ["writer"], "indices": ["logs-*"]},
        "reader": {"roles": ["reader"]},
        "lreader": {"roles": ["reader"], "indices": ["logs-*"]},
        "alerter": {"roles": ["alerting"]},
    }
    for name, spec in users.items():
        r = srv.put(f"/_security/user/{name}", json={"password": f"{name}-pw-123", **spec}, headers=adm)
        assert r.status_code == 200 and r.json() == {"created": True}, r.text
    for idx in ("logs-app", "metrics-app"):
        r = srv.put(f"/{idx}/_doc/1?refresh=true", json={"@timestamp": "2026-01-01T00:00:00Z", "message": idx}, headers=adm)
        assert r.status_code in (200, 201), r.text
    r = srv.post("/_security/api_key", json={"name": "ship", "roles": ["writer"], "indices": ["logs-*"]}, headers=adm)
    assert r.status_code == 200, r.text
    key = r.json()
    assert set(key) >= {"id", "name", "api_key", "encoded"}
    creds = {"admin": adm, "key": apikey(key["encoded"]), "none": {}}
    for name in users:
        creds[name] = basic(name, f"{name}-pw-123")
    yield srv, creds, key
    problems = factory.teardown()
    assert not problems, "; ".join(problems)


# (method, path, body) per endpoint family, and the expected status per caller.
# Callers: admin, writer (logs-*), key (writer logs-*), reader, lreader (reader logs-*),
# alerter, none (no credentials).
MATRIX = [
    # handshakes shippers make
    ("GET", "/", None, dict(admin=200, writer=200, key=200, reader=200, lreader=200, alerter=200, none=401)),
    ("GET", "/_license", None, dict(admin=200, writer=200, key=200, reader=200, lreader=200, alerter=200, none=401)),
    # ingest
    ("POST", "/logs-app/_doc", {"message": "x"}, dict(admin=201, writer=201, key=201, reader=403, lreader=403, alerter=403, none=401)),
    ("POST", "/metrics-app/_doc", {"message": "x"}, dict(admin=201, writer=403, key=403, reader=403, lreader=403, alerter=403, none=401)),
    # search
    ("GET", "/logs-app/_search", None, dict(admin=200, writer=403, key=403, reader=200, lreader=200, alerter=200, none=401)),
    ("GET", "/metrics-app/_search", None, dict(admin=200, writer=403, key=403, reader=200, lreader=403, alerter=200, none=401)),
    ("GET", "/logs-app/_count", None, dict(admin=200, writer=403, key=403, reader=200, lreader=200, alerter=200, none=401)),
    # index admin
    ("PUT", "/logs-new", None, dict(admin=200, writer=200, key=200, reader=403, lreader=403, alerter=403, none=401)),
    ("PUT", "/other-new", None, dict(admin=200, writer=403, key=403, reader=403, lreader=403, alerter=403, none=401)),
    ("PUT", "/logs-app/_mapping", {"properties": {"f": {"type": "keyword"}}}, dict(admin=200, writer=403, key=403, reader=403, lreader=403, alerter=403, none=401)),
    ("DELETE", "/logs-zzz-missing", None, dict(admin=404, writer=403, key=403, reader=403, lreader=403, alerter=403, none=401)),
    # templates: writers may install them for their own patterns only
    ("PUT", "/_index_template/t-logs", {"index_patterns": ["logs-app-*"]}, dict(admin=200, writer=200, key=200, reader=403, lreader=403, alerter=403, none=401)),
    ("PUT", "/_index_template/t-all", {"index_patterns": ["*"], "priority": 1}, dict(admin=200, writer=403, key=403, reader=403, lreader=403, alerter=403, none=401)),
    ("PUT", "/_ilm/policy/p1", {"policy": {"phases": {"hot": {"actions": {}}}}}, dict(admin=200, writer=200, key=200, reader=403, lreader=403, alerter=403, none=401)),
    # security admin
    ("GET", "/_security/user", None, dict(admin=200, writer=403, key=403, reader=403, lreader=403, alerter=403, none=401)),
    ("PUT", "/_security/role/r1", {"cluster": [], "indices": [{"names": ["x-*"], "privileges": ["read"]}]}, dict(admin=200, writer=403, key=403, reader=403, lreader=403, alerter=403, none=401)),
    ("GET", "/_security/_authenticate", None, dict(admin=200, writer=200, key=200, reader=200, lreader=200, alerter=200, none=401)),
    # probes: up or not, nothing more, without credentials
    ("GET", "/_cairn/health", None, dict(admin=200, writer=200, key=200, reader=200, lreader=200, alerter=200, none=200)),
    # metrics and maintenance
    ("GET", "/_cairn/metrics", None, dict(admin=200, writer=200, key=200, reader=200, lreader=200, alerter=200, none=401)),
    ("POST", "/_cairn/retention/_run", None, dict(admin=200, writer=403, key=403, reader=403, lreader=403, alerter=403, none=401)),
    # internal indices: admins and the server only
    ("POST", "/.cairn-ui/_doc", {"x": 1}, dict(admin=201, writer=403, key=403, reader=403, lreader=403, alerter=403, none=401)),
    # alerting: readers see rules, only alerting users and admins change them
    ("GET", "/_cairn/alerting/rules", None, dict(admin=200, writer=403, key=403, reader=200, lreader=200, alerter=200, none=401)),
    ("POST", "/_cairn/alerting/rules/_validate", {"yaml": "name: v\nindex: logs-app\ntype: any\nalert: [debug]\n"}, dict(admin=200, writer=403, key=403, reader=403, lreader=403, alerter=200, none=401)),
    ("GET", "/_cairn/alerting/history", None, dict(admin=200, writer=403, key=403, reader=200, lreader=200, alerter=200, none=401)),
    # UI pages are public (they hold no data); the UI's APIs are not
    ("GET", "/ui/", None, dict(admin=200, writer=200, key=200, reader=200, lreader=200, alerter=200, none=200)),
    ("GET", "/_cairn/saved_objects/dashboard", None, dict(admin=200, writer=403, key=403, reader=200, lreader=200, alerter=200, none=401)),
    ("GET", "/_cairn/ui/config", None, dict(admin=200, writer=403, key=403, reader=200, lreader=200, alerter=200, none=401)),
    ("GET", "/_cairn/auth/session", None, dict(admin=200, writer=200, key=200, reader=200, lreader=200, alerter=200, none=401)),
]

CALLERS = ["admin", "writer", "key", "reader", "lreader", "alerter", "none"]


@pytest.mark.parametrize("method,path,body,expected", MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
def test_authorization_matrix(secured, method, path, body, expected):
    srv, creds, _ = secured
    got = {}
    for who in CALLERS:
        kw = {"headers": dict(creds[who])}
        if body is not None:
            kw["json"] = body
        r = requests.request(method, srv.u(path), timeout=30, **kw)
        got[who] = r.status_code
        if r.status_code == 401:
            assert_es_error(r, 401, "security_exception")
            assert "Basic" in r.headers.get("WWW-Authenticate", ""), r.headers
        elif r.status_code == 403:
            err = assert_es_error(r, 403, "security_exception")
            assert "is unauthorized for" in err["reason"], err
        # Put things back so every caller sees the same state.
        if r.status_code in (200, 201) and method == "PUT" and path in ("/logs-new", "/other-new"):
            requests.delete(srv.u(path), headers=creds["admin"], timeout=30)
    assert got == expected


def test_wildcards_expand_only_to_visible_indices(secured):
    srv, creds, _ = secured
    r = srv.get("/*/_search", headers=creds["lreader"], params={"size": 100})
    assert r.status_code == 200, r.text
    assert {h["_index"] for h in r.json()["hits"]["hits"]} == {"logs-app"}
    r = srv.get("/_cat/indices", headers=creds["lreader"], params={"format": "json"})
    assert r.status_code == 200
    names = {row["index"] for row in r.json()}
    assert "logs-app" in names and "metrics-app" not in names and not any(n.startswith(".cairn") for n in names)
    r = srv.get("/_resolve/index/*", headers=creds["lreader"])
    assert [i["name"] for i in r.json()["indices"]] == ["logs-app"]
    r = srv.get("/_field_caps", headers=creds["lreader"], params={"fields": "*"})
    assert r.json()["indices"] == ["logs-app"]
    # A concrete name outside the grant is a 403, not an empty answer.
    r = srv.get("/logs-app,metrics-app/_search", headers=creds["lreader"])
    assert_es_error(r, 403, "security_exception")


def test_bulk_items_are_authorized_one_by_one(secured):
    srv, creds, _ = secured
    r = srv.bulk(
        [
            {"create": {"_index": "logs-bulk"}},
            {"message": "ok"},
            {"create": {"_index": "metrics-bulk"}},
            {"message": "refused"},
            {"delete": {"_index": "logs-bulk", "_id": "nope"}},
        ],
        headers=creds["key"],
    )
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert items[0]["create"]["status"] == 201
    assert items[1]["create"]["status"] == 403
    assert items[1]["create"]["error"]["type"] == "security_exception"
    # A writer has create_doc and index, not delete.
    assert items[2]["delete"]["status"] == 403


def test_authenticate_and_api_key_lifecycle(secured):
    srv, creds, key = secured
    r = srv.get("/_security/_authenticate", headers=creds["key"])
    body = r.json()
    assert body["api_key"]["id"] == key["id"] and body["authentication_type"] == "api_key"
    r = srv.get("/_security/_authenticate", headers=creds["reader"])
    assert r.json()["username"] == "reader" and r.json()["roles"] == ["reader"]
    # A key made and revoked through the API.
    r = srv.post("/_security/api_key", json={"name": "tmp", "roles": ["reader"]}, headers=creds["admin"])
    k = r.json()
    assert srv.get("/logs-app/_count", headers=apikey(k["encoded"])).status_code == 200
    r = srv.delete("/_security/api_key", json={"ids": [k["id"]]}, headers=creds["admin"])
    assert r.json()["invalidated_api_keys"] == [k["id"]]
    assert_es_error(srv.get("/logs-app/_count", headers=apikey(k["encoded"])), 401, "security_exception")
    # Wrong password / garbage credentials.
    assert_es_error(srv.get("/", headers=basic("reader", "wrong-password")), 401, "security_exception")
    assert_es_error(srv.get("/", headers={"Authorization": "ApiKey !!!"}), 401, "security_exception")
    # An expired key.
    r = srv.post("/_security/api_key", json={"name": "short", "roles": ["reader"], "expiration": "20ms"}, headers=creds["admin"])
    assert r.status_code == 200
    exp = r.json()["encoded"]
    import time

    time.sleep(0.1)
    assert_es_error(srv.get("/", headers=apikey(exp)), 401, "security_exception")


def test_ui_session_cookie_and_csrf(secured):
    srv, creds, _ = secured
    s = requests.Session()
    r = s.get(srv.u("/_cairn/auth/session"))
    assert_es_error(r, 401, "security_exception")
    r = s.post(srv.u("/_cairn/auth/login"), json={"username": "reader", "password": "wrong"})
    assert_es_error(r, 401, "security_exception")
    r = s.post(srv.u("/_cairn/auth/login"), json={"username": "reader", "password": "reader-pw-123"})
    assert r.status_code == 200, r.text
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; the TLS test checks Secure
    token = r.json()["csrf_token"]
    assert token and r.json()["username"] == "reader"
    assert s.get(srv.u("/logs-app/_search")).status_code == 200
    # A state-changing request without the token (what a cross-site form would send).
    assert_es_error(s.post(srv.u("/logs-app/_search"), json={}), 403, "security_exception")
    assert s.post(srv.u("/logs-app/_search"), json={}, headers={"X-Cairn-CSRF": token}).status_code == 200
    r = s.post(srv.u("/_cairn/auth/logout"), headers={"X-Cairn-CSRF": token})
    assert r.status_code == 200
    assert_es_error(s.get(srv.u("/logs-app/_search")), 401, "security_exception")


def test_audit_log(secured):
    srv, creds, _ = secured
    srv.get("/", headers=basic("admin", "not-the-password"))
    srv.put("/logs-doomed", headers=creds["admin"])
    assert srv.delete("/logs-doomed", headers=creds["admin"]).status_code == 200
    lines = [json.loads(l) for l in (srv.data_dir / "audit.log").read_text().splitlines()]
    actions = [l["event.action"] for l in lines]
    assert "authentication_failed" in actions
    assert "user_created" in actions and "api_key_created" in actions
    deleted = [l for l in lines if l["event.action"] == "index_deleted"]
    assert deleted and deleted[-1]["index"] == "logs-doomed" and deleted[-1]["user.name"] == "admin"


def test_bootstrap_admin_and_cli_offline_and_online(cairn_factory, tmp_path):
    # First start without CAIRN_ADMIN_PASSWORD: a generated password, printed once.
    srv = cairn_factory(extra_args=["--auth"])
    out = srv.stderr_of_last_start()
    assert "created the built-in user [admin]" in out
    pw = out.split("with the password:")[1].split()[0]
    assert srv.get("/", headers=basic("admin", pw)).status_code == 200
    assert srv.stop() == 0
    # The CLI on the stopped server's data dir.
    cli("users", "add", "ops", "--role", "reader", "--password", "ops-password", "--data-dir", str(srv.data_dir))
    p = cli("api-key", "create", "--role", "writer", "--indices", "logs-*", "--expires", "90d", "--data-dir", str(srv.data_dir))
    encoded = [l.split()[1] for l in p.stdout.splitlines() if l.startswith("encoded:")][0]
    key_id = [l.split()[1] for l in p.stdout.splitlines() if l.startswith("id:")][0]
    # Later starts ignore CAIRN_ADMIN_PASSWORD and say so.
    srv.env["CAIRN_ADMIN_PASSWORD"] = "something-else"
    srv.start()
    assert "CAIRN_ADMIN_PASSWORD is ignored" in srv.stderr_of_last_start()
    assert srv.get("/", headers=basic("admin", "something-else")).status_code == 401
    assert srv.get("/", headers=basic("ops", "ops-password")).status_code == 200
    assert srv.post("/logs-cli/_doc", json={"m": 1}, headers=apikey(encoded)).status_code == 201
    assert srv.post("/other/_doc", json={"m": 1}, headers=apikey(encoded)).status_code == 403
    # While it runs, the data dir is locked: the CLI says how to reach the server instead.
    p = cli("users", "list", "--data-dir", str(srv.data_dir), check=False)
    assert p.returncode != 0 and "--server" in p.stderr
    # The CLI against the running server.
    online = ["--server", srv.url, "--user", f"admin:{pw}"]
    p = cli("users", "list", *online)
    assert "ops\troles=reader" in p.stdout
    p = cli("api-key", "list", *online)
    assert key_id in p.stdout and "active" in p.stdout
    cli("api-key", "revoke", key_id, *online)
    assert srv.post("/logs-cli/_doc", json={"m": 1}, headers=apikey(encoded)).status_code == 401
    cli("users", "passwd", "ops", "--password", "new-ops-password", *online)
    assert srv.get("/", headers=basic("ops", "ops-password")).status_code == 401
    assert srv.get("/", headers=basic("ops", "new-ops-password")).status_code == 200
    cli("users", "rm", "ops", *online)
    assert srv.get("/", headers=basic("ops", "new-ops-password")).status_code == 401


@pytest.fixture
def tls_dir(tmp_path) -> Path:
    out = tmp_path / "tls"
    p = cli("cert", "self-signed", "--out", str(out))
    assert "server.crt" in p.stdout
    return out


def test_tls_with_official_clients_and_curl(cairn_factory, tls_dir):
    srv = cairn_factory(
        extra_args=["--auth", "--tls-cert", str(tls_dir / "server.crt"), "--tls-key", str(tls_dir / "server.key")],
        env={"CAIRN_ADMIN_PASSWORD": ADMIN_PW},
        tls_ca=tls_dir / "ca.crt",
    )
    ca = str(tls_dir / "ca.crt")
    # Plain HTTP to the TLS port fails; a client that does not trust the CA fails.
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{srv.port}/", timeout=5)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(srv.url + "/", timeout=5)
    from elasticsearch import Elasticsearch

    es = Elasticsearch(srv.url, ca_certs=ca, basic_auth=("admin", ADMIN_PW))
    assert es.info()["version"]["number"].startswith("8.")
    key = es.security.create_api_key(name="py", role_descriptors={}).body
    es.index(index="logs-tls", id="1", document={"message": "over tls"}, refresh=True)
    es_key = Elasticsearch(srv.url, ca_certs=ca, api_key=key["encoded"])
    assert es_key.search(index="logs-tls", query={"match": {"message": "tls"}})["hits"]["total"]["value"] == 1
    assert es_key.security.authenticate()["api_key"]["name"] == "py"

    from opensearchpy import OpenSearch

    os_client = OpenSearch([srv.url], http_auth=("admin", ADMIN_PW), use_ssl=True, verify_certs=True, ca_certs=ca, ssl_show_warn=False)
    assert os_client.count(index="logs-tls")["count"] == 1

    if shutil.which("curl"):
        p = subprocess.run(["curl", "-sS", "--cacert", ca, "-u", f"admin:{ADMIN_PW}", srv.url + "/logs-tls/_count"], capture_output=True, text=True, timeout=30)
        assert json.loads(p.stdout)["count"] == 1, p.stderr
        p = subprocess.run(["curl", "-sS", "--cacert", ca, "-H", f"Authorization: ApiKey {key['encoded']}", srv.url + "/logs-tls/_count"], capture_output=True, text=True, timeout=30)
        assert json.loads(p.stdout)["count"] == 1, p.stderr
        # Old protocol versions are refused.
        p = subprocess.run(["curl", "-sS", "--cacert", ca, "--tls-max", "1.1", srv.url + "/"], capture_output=True, text=True, timeout=30)
        assert p.returncode != 0
    # Session cookies are Secure under TLS.
    r = requests.post(srv.url + "/_cairn/auth/login", json={"username": "admin", "password": ADMIN_PW}, verify=ca, timeout=10)
    assert "Secure" in r.headers["Set-Cookie"]


def test_tls_client_certificates(cairn_factory, tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    d = tmp_path / "mtls"
    d.mkdir()
    ca.cert_pem.write_to_path(str(d / "ca.crt"))
    server_cert.private_key_pem.write_to_path(str(d / "server.key"))
    server_cert.cert_chain_pems[0].write_to_path(str(d / "server.crt"))
    client = ca.issue_cert("client@example.com")
    client.private_key_and_cert_chain_pem.write_to_path(str(d / "client.pem"))
    srv = cairn_factory(start=False, extra_args=[
        "--tls-cert", str(d / "server.crt"), "--tls-key", str(d / "server.key"), "--tls-client-ca", str(d / "ca.crt"),
    ], tls_ca=d / "ca.crt")
    srv.proc = srv._spawn()
    # Without a client certificate the handshake fails.
    import time

    deadline = time.monotonic() + 60
    while True:
        try:
            r = requests.get(srv.url + "/", verify=str(d / "ca.crt"), cert=str(d / "client.pem"), timeout=2)
            if r.status_code == 200:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, srv.stderr_tail()
        time.sleep(0.1)
    with pytest.raises(requests.RequestException):
        requests.get(srv.url + "/", verify=str(d / "ca.crt"), timeout=5)
    ctx = ssl.create_default_context(cafile=str(d / "ca.crt"))
    ctx.load_cert_chain(str(d / "client.pem"))
    assert requests.get(srv.url + "/", verify=str(d / "ca.crt"), cert=str(d / "client.pem"), timeout=5).json()["version"]["number"].startswith("8.")


def test_import_from_s3_over_tls_into_a_secured_tls_server(cairn_factory, tls_dir, tmp_path):
    """The S3 path (object_store) and the import's HTTP client both do TLS with the
    workspace's one crypto provider, verifying certificates against a custom CA."""
    import gzip
    import socket
    import sys

    boto3 = pytest.importorskip("boto3")
    pytest.importorskip("moto")
    from conftest import wait_for
    from test_import import ACCOUNT, S3_ENV, alb_key, run_import, sample

    ca = str(tls_dir / "ca.crt")
    srv = cairn_factory(
        extra_args=["--auth", "--tls-cert", str(tls_dir / "server.crt"), "--tls-key", str(tls_dir / "server.key")],
        env={"CAIRN_ADMIN_PASSWORD": ADMIN_PW},
        tls_ca=tls_dir / "ca.crt",
    )
    r = requests.post(srv.url + "/_security/api_key", json={"name": "import", "roles": ["writer"], "indices": ["logs-*"]},
                      headers=basic("admin", ADMIN_PW), verify=ca, timeout=30)
    encoded = r.json()["encoded"]
    port = free_port()
    log = open(tmp_path / "moto.log", "wb")
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port),
         "-c", str(tls_dir / "server.crt"), "-k", str(tls_dir / "server.key")],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL,
    )
    try:
        def up():
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True

        wait_for(up, 60, 0.1, "moto S3 server over TLS")
        endpoint = f"https://127.0.0.1:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                          region_name="us-east-1", verify=ca)
        s3.create_bucket(Bucket="tls-logs")
        s3.put_object(Bucket="tls-logs", Key="p/" + alb_key(0), Body=gzip.compress(sample("albaccesslog.log")))
        src = f"s3://tls-logs/p/AWSLogs/{ACCOUNT}/elasticloadbalancing/"
        base = [src, "--endpoint", endpoint, "--server", srv.url, "--no-state", "--api-key", encoded]
        # Without the CA, the S3 handshake fails and the import says so.
        p = run_import(base + ["--ca-cert", ca], cwd=tmp_path, env=S3_ENV)
        assert p.returncode != 0
        p = run_import(base + ["--ca-cert", ca, "--s3-ca-cert", ca], cwd=tmp_path, env=S3_ENV)
        assert p.returncode == 0, p.stderr
        es_count = requests.get(srv.url + "/logs-*/_count", headers=apikey(encoded), verify=ca, timeout=30)
        # The writer key cannot read: as in Elasticsearch, its wildcard expands to no
        # index (an empty answer); the admin sees the documents.
        assert es_count.status_code == 200 and es_count.json()["count"] == 0
        requests.post(srv.url + "/_refresh", headers=basic("admin", ADMIN_PW), verify=ca, timeout=30)
        n = requests.get(srv.url + "/logs-*/_count", headers=basic("admin", ADMIN_PW), verify=ca, timeout=30).json()["count"]
        assert n == 2
    finally:
        moto.terminate()
        moto.wait(10)
        log.close()


def test_scrolls_and_pits_belong_to_their_opener(secured):
    srv, creds, _ = secured
    r = srv.post("/logs-app/_search", params={"scroll": "1m"}, json={"size": 1}, headers=creds["reader"])
    sid = r.json()["_scroll_id"]
    # Another user cannot page through it or clear it: it answers as missing.
    assert_es_error(srv.post("/_search/scroll", json={"scroll_id": sid}, headers=creds["lreader"]), 404, "search_phase_execution_exception")
    assert srv.delete("/_search/scroll", json={"scroll_id": [sid]}, headers=creds["lreader"]).json()["num_freed"] == 0
    assert srv.post("/_search/scroll", json={"scroll_id": sid}, headers=creds["reader"]).status_code == 200
    pit = srv.post("/logs-app/_pit", params={"keep_alive": "1m"}, headers=creds["reader"]).json()["id"]
    body = {"pit": {"id": pit}, "size": 1}
    assert_es_error(srv.post("/_search", json=body, headers=creds["lreader"]), 404, "search_phase_execution_exception")
    assert srv.post("/_search", json=body, headers=creds["reader"]).status_code == 200


def test_audit_log_to_an_index(cairn_factory):
    from conftest import wait_for

    srv = cairn_factory(extra_args=["--auth", "--audit-log", "index"], env={"CAIRN_ADMIN_PASSWORD": ADMIN_PW})
    adm = basic("admin", ADMIN_PW)
    srv.get("/", headers=basic("mallory", "guess-123"))
    srv.put("/_security/user/bob", json={"password": "bob-password", "roles": ["reader"]}, headers=adm)

    def events():
        srv.post("/.cairn-audit/_refresh", headers=adm)
        r = srv.post("/.cairn-audit/_search", json={"size": 50, "sort": [{"@timestamp": "asc"}]}, headers=adm)
        return r.status_code == 200 and [h["_source"] for h in r.json()["hits"]["hits"]]

    found = wait_for(lambda: (e := events()) and len(e) >= 2 and e, 30, 0.2, "audit events in .cairn-audit")
    actions = {e["event.action"]: e for e in found}
    assert actions["authentication_failed"]["user.name"] == "mallory"
    assert actions["user_created"]["user.target.name"] == "bob" and actions["user_created"]["user.name"] == "admin"
    # Only admins can read it; wildcards never show it to others.
    bob = basic("bob", "bob-password")
    assert srv.post("/.cairn-audit/_search", json={}, headers=bob).status_code == 403
    r = srv.get("/*/_search", headers=bob)
    assert r.status_code == 200 and r.json()["hits"]["total"]["value"] == 0


def test_alert_rules_run_with_their_owners_privileges(cairn_factory, tmp_path):
    """Rules saved through the API run as the user who saved them; rules from the rules
    directory and the engine's own state use the server's internal identity, so they
    keep working after the built-in admin is removed."""
    from test_alerting import FAST, Webhook, iso_now
    from conftest import wait_for

    hook = Webhook()
    try:
        rules = tmp_path / "rules"
        rules.mkdir()
        (rules / "file.yaml").write_text(FAST + f"name: file rule\nindex: logs-sec\ntype: any\nrealert: {{minutes: 0}}\nalert: [post]\nhttp_post_url: {hook.url}/file\n")
        srv = cairn_factory(extra_args=["--auth", "--rules-dir", str(rules)], env={"CAIRN_ADMIN_PASSWORD": ADMIN_PW})
        adm = basic("admin", ADMIN_PW)
        assert srv.put("/_security/user/root2", json={"password": "root2-password", "roles": ["admin"]}, headers=adm).status_code == 200
        root2 = basic("root2", "root2-password")
        assert srv.delete("/_security/user/admin", headers=root2).json() == {"found": True}
        srv.put("/_security/user/ops", json={"password": "ops-password", "roles": ["alerting"], "indices": ["logs-*"]}, headers=root2)
        ops = basic("ops", "ops-password")

        def rule(name, index):
            return FAST + f"name: {name}\nindex: {index}\ntype: any\nrealert: {{minutes: 0}}\nalert: [post]\nhttp_post_url: {hook.url}/{name}\n"

        for name, index in (("visible", "logs-sec"), ("hidden", "secret-sec")):
            r = srv.post("/_cairn/alerting/rules", json={"id": name, "yaml": rule(name, index)}, headers=ops)
            assert r.status_code == 201 and r.json()["owner"] == "ops", r.text
        # A reader may look at rules but not change them.
        srv.put("/_security/user/viewer", json={"password": "viewer-password", "roles": ["reader"]}, headers=root2)
        viewer = basic("viewer", "viewer-password")
        assert srv.get("/_cairn/alerting/rules", headers=viewer).status_code == 200
        assert srv.post("/_cairn/alerting/rules", json={"id": "x", "yaml": rule("x", "logs-sec")}, headers=viewer).status_code == 403
        for idx in ("logs-sec", "secret-sec"):
            r = srv.post(f"/{idx}/_doc?refresh=true", json={"@timestamp": iso_now(), "message": "boom"}, headers=root2)
            assert r.status_code == 201, r.text
        paths = lambda: {x["path"] for x in hook.items()}  # noqa: E731
        wait_for(lambda: {"/file", "/visible"} <= paths(), 60, what="alerts of the file rule and ops' visible rule")
        # ops cannot read secret-sec: the rule it saved fails with the 403 ops would
        # get, and never alerts on the document.
        def hidden_state():
            j = srv.get("/_cairn/alerting/rules/hidden", headers=ops).json()
            return j.get("last_error") and j

        state = wait_for(hidden_state, 30, what="the hidden rule to run and fail")
        assert "unauthorized for user [ops]" in state["last_error"], state
        assert state["stats"]["errors"] > 0 and state["stats"]["alerts_sent"] == 0
        assert "/hidden" not in paths()
    finally:
        hook.close()


def test_email_alerts_over_starttls_verify_the_relay(cairn_factory, tmp_path, tls_dir):
    """The SMTP path does TLS with the workspace's one provider and verifies the relay:
    with the relay's CA (`smtp_ca_certs`) the mail arrives over STARTTLS; without it the
    handshake is refused and nothing is sent in clear."""
    import ssl as _ssl

    from aiosmtpd.controller import Controller
    from conftest import wait_for
    from test_alerting import FAST, iso_now

    got = []

    class Box:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
            got.append((session.ssl is not None, envelope.content.decode(errors="replace")))
            return "250 OK"

    ctx = _ssl.create_default_context(_ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(tls_dir / "server.crt"), str(tls_dir / "server.key"))
    ctl = Controller(Box(), hostname="127.0.0.1", port=free_port(), tls_context=ctx, require_starttls=True)
    ctl.start()
    try:
        rules = tmp_path / "rules"
        rules.mkdir()
        base = FAST + "index: logs-mail\ntype: any\nrealert: {minutes: 0}\nalert: [email]\nemail: [oncall@example.com]\n" \
            f"from_addr: cairn@example.com\nsmtp_host: 127.0.0.1\nsmtp_port: {ctl.port}\n"
        (rules / "trusted.yaml").write_text(base + f"name: trusted\nalert_subject: trusted relay\nsmtp_ca_certs: {tls_dir / 'ca.crt'}\n")
        (rules / "untrusted.yaml").write_text(base + "name: untrusted\nalert_subject: untrusted relay\n")
        srv = cairn_factory(extra_args=["--rules-dir", str(rules)])
        assert srv.post("/logs-mail/_doc?refresh=true", json={"@timestamp": iso_now(), "message": "mail me"}).status_code == 201
        wait_for(lambda: any("trusted relay" in m for _, m in got), 60, what="the mail through the trusted relay")
        assert all(tls for tls, _ in got), "mail must go over STARTTLS"

        def failed():
            j = srv.get("/_cairn/alerting/rules/untrusted").json()
            return (j.get("stats") or {}).get("alerts_failed", 0) > 0

        wait_for(failed, 60, what="the untrusted relay's alert to fail")
        assert not any("untrusted relay" in m for _, m in got)
    finally:
        ctl.stop()


def test_agent_ships_over_tls_with_an_api_key(cairn_factory, tls_dir, tmp_path):
    """The agent's elasticsearch sink verifies the server against a custom CA and
    authenticates with an API key; without the CA it refuses the server and delivers
    nothing (the lines wait in its buffer)."""
    from conftest import wait_for
    from test_agent import Agent, append, es_sink, file_source

    agents: list = []

    ca = str(tls_dir / "ca.crt")
    srv = cairn_factory(
        extra_args=["--auth", "--tls-cert", str(tls_dir / "server.crt"), "--tls-key", str(tls_dir / "server.key")],
        env={"CAIRN_ADMIN_PASSWORD": ADMIN_PW},
        tls_ca=tls_dir / "ca.crt",
    )
    adm = basic("admin", ADMIN_PW)
    key = requests.post(srv.url + "/_security/api_key", json={"name": "agent", "roles": ["writer"], "indices": ["logs-*"]},
                        headers=adm, verify=ca, timeout=30).json()["encoded"]
    log = tmp_path / "app.log"
    append(log, [f"tls line {i}" for i in range(50)])

    def agent(name, tls):
        d = tmp_path / name
        d.mkdir()
        cfg = {"data_dir": str(d / "data"), "sources": {"app": file_source(str(log))},
               "sinks": {"store": es_sink(srv.url, f"logs-{name}", auth={"api_key": key}, tls=tls)}}
        a = Agent(cfg, d, f"tls-{name}").start()
        agents.append(a)
        return a

    good = agent("trusted", {"ca_file": ca})
    bad = agent("untrusted", {})

    def count(index):
        requests.post(srv.url + f"/{index}/_refresh", headers=adm, verify=ca, timeout=30)
        r = requests.get(srv.url + f"/{index}/_count", headers=adm, verify=ca, timeout=30)
        return r.json().get("count", 0) if r.status_code == 200 else 0

    try:
        wait_for(lambda: good.assert_alive() or count("logs-trusted") == 50, 60, 0.2, "50 lines over TLS")
        bad.assert_alive()
        assert count("logs-untrusted") == 0
        assert "certificate" in bad.log_tail(200).lower(), bad.log_tail()
    finally:
        for a in agents:
            a.stop()
