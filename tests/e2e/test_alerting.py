"""The alert engine inside `cairn serve`: ElastAlert rule files in --rules-dir, alerts
received by real receivers started here (an HTTP webhook receiver, an aiosmtpd SMTP
server, a command writing a file), the rules API, restarts (graceful and kill -9) and
`cairn alert test`."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from aiosmtpd.controller import Controller

from conftest import CAIRN_BIN, free_port, wait_for

INDEX = "app-logs"


def iso_now(offset_s: float = 0.0) -> str:
    return datetime.fromtimestamp(time.time() + offset_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Webhook:
    """A real HTTP receiver: records every POST (path, headers, JSON body)."""

    def __init__(self, delay_s: float = 0.0):
        self.received: list[dict] = []
        self.lock = threading.Lock()
        self.delay_s = delay_s
        self.in_request = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with outer.lock:
                    outer.received.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": json.loads(body or b"null")})
                outer.in_request.set()
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def items(self) -> list[dict]:
        with self.lock:
            return list(self.received)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    def __init__(self):
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def webhook():
    w = Webhook()
    yield w
    w.close()


@pytest.fixture
def smtp():
    box = Mailbox()
    ctl = Controller(box, hostname="127.0.0.1", port=free_port())
    ctl.start()
    yield ctl, box
    ctl.stop()


def ingest(srv, docs: list[dict]) -> list[str]:
    r = srv.bulk([l for d in docs for l in ({"index": {"_index": INDEX}}, d)], params={"refresh": "true"}, timeout=30)
    r.raise_for_status()
    body = r.json()
    assert not body["errors"], body
    return [i["index"]["_id"] for i in body["items"]]


def write_rule(rules: Path, name: str, text: str) -> None:
    (rules / f"{name}.yaml").write_text(text)


FAST = """run_every: {seconds: 1}
buffer_time: {minutes: 10}
"""


def test_webhook_email_and_command_alerters(cairn_factory, tmp_path, webhook, smtp):
    ctl, box = smtp
    rules = tmp_path / "rules"
    rules.mkdir()
    out = tmp_path / "command-out.txt"
    write_rule(rules, "burst", FAST + f"""name: error burst
index: {INDEX}
type: frequency
num_events: 3
timeframe: {{minutes: 5}}
query_key: host
realert: {{minutes: 10}}
filter:
- kql: "level:error"
alert: [post]
http_post_url: "{webhook.url}/hook"
http_post_static_payload: {{team: sre}}
http_post_headers: {{X-Source: cairn}}
""")
    write_rule(rules, "root-login", FAST + f"""name: root login
index: {INDEX}
type: blacklist
compare_key: user
blacklist: [root]
realert: {{minutes: 0}}
alert: [email]
email: [oncall@example.com]
from_addr: cairn@example.com
smtp_host: 127.0.0.1
smtp_port: {ctl.port}
alert_subject: "Root login on {{0}}"
alert_subject_args: [host]
""")
    write_rule(rules, "cmd", FAST + f"""name: disk full
index: {INDEX}
type: any
realert: {{minutes: 0}}
filter:
- query_string: {{query: "message:disk"}}
alert: [command]
command: ["/bin/sh", "-c", "echo \\"%(host)s $CAIRN_ALERT_ID\\" >> {out}"]
""")
    srv = cairn_factory(extra_args=["--rules-dir", str(rules)])
    ingest(srv, [
        {"@timestamp": iso_now(-3), "level": "error", "host": "web-1", "message": "upstream timeout"},
        {"@timestamp": iso_now(-2), "level": "error", "host": "web-1", "message": "upstream timeout"},
        {"@timestamp": iso_now(-2), "level": "error", "host": "web-2", "message": "upstream timeout"},
        {"@timestamp": iso_now(-1), "level": "error", "host": "web-1", "message": "upstream timeout"},
        {"@timestamp": iso_now(-1), "level": "info", "host": "db-1", "user": "root", "message": "session opened"},
        {"@timestamp": iso_now(-1), "level": "warn", "host": "db-2", "message": "disk almost full"},
    ])
    wait_for(lambda: webhook.items(), 30, what="webhook alert")
    wait_for(lambda: box.messages, 30, what="email alert")
    wait_for(lambda: out.exists() and out.read_text().strip(), 30, what="command output")
    time.sleep(3)  # a few more runs: nothing else may arrive

    hooks = webhook.items()
    assert len(hooks) == 1, hooks
    h = hooks[0]
    assert h["path"] == "/hook"
    assert h["body"]["host"] == "web-1" and h["body"]["team"] == "sre"
    assert h["headers"]["x-source"] == "cairn"
    assert len(h["headers"]["idempotency-key"]) == 32

    assert len(box.messages) == 1
    msg = box.messages[0]
    assert msg.rcpt_tos == ["oncall@example.com"]
    text = msg.content.decode()
    assert "Subject: Root login on db-1" in text
    assert "Message-ID: <" in text.replace("Message-Id", "Message-ID")
    assert "user: root" in text

    line = out.read_text().strip().splitlines()
    assert len(line) == 1 and line[0].startswith("db-2 ") and len(line[0].split()[1]) == 32

    # History records every alert as sent, with the same idempotency keys.
    hist = requests.get(srv.u("/_cairn/alerting/history"), timeout=10).json()["alerts"]
    assert sorted(a["rule_id"] for a in hist) == ["burst", "cmd", "root-login"]
    assert all(a["status"] == "sent" for a in hist), hist
    burst = [a for a in hist if a["rule_id"] == "burst"][0]
    assert burst["id"] == h["headers"]["idempotency-key"]
    assert burst["subject"] == "ElastAlert: error burst - web-1"

    metrics = requests.get(srv.u("/_cairn/metrics"), timeout=10).text
    assert 'cairn_alert_alerts_sent_total{rule="burst",rule_name="error burst"} 1' in metrics


def test_rules_api_broken_file_and_hot_reload(cairn_factory, tmp_path, webhook):
    rules = tmp_path / "rules"
    rules.mkdir()
    write_rule(rules, "broken", "name: broken\nindex: x\ntype: frequency\ntimeframe: {minutes: 5}\n")
    write_rule(rules, "ok", FAST + f"name: ok rule\nindex: {INDEX}\ntype: any\nrealert: {{minutes: 0}}\nalert: [post]\nhttp_post_url: {webhook.url}/ok\n")
    srv = cairn_factory(extra_args=["--rules-dir", str(rules)])
    listing = {r["id"]: r for r in requests.get(srv.u("/_cairn/alerting/rules"), timeout=10).json()["rules"]}
    assert listing["broken"]["error"].startswith("num_events:"), listing["broken"]
    assert listing["ok"]["running"] is True

    ingest(srv, [{"@timestamp": iso_now(), "message": "one"}])
    wait_for(lambda: [x for x in webhook.items() if x["path"] == "/ok"], 30, what="ok rule alert")

    # Hot reload: fix the broken file; add a new one.
    write_rule(rules, "broken", FAST + f"name: fixed\nindex: {INDEX}\ntype: any\nrealert: {{minutes: 0}}\nalert: [post]\nhttp_post_url: {webhook.url}/fixed\n")
    wait_for(lambda: requests.get(srv.u("/_cairn/alerting/rules/broken"), timeout=10).json()["error"] is None, 20, what="reload")
    ingest(srv, [{"@timestamp": iso_now(), "message": "two"}])
    wait_for(lambda: [x for x in webhook.items() if x["path"] == "/fixed"], 30, what="fixed rule alert")

    # CRUD through the API, validated with errors that name the key.
    r = requests.post(srv.u("/_cairn/alerting/rules"), json={"id": "api-rule", "yaml": "name: api\nindex: x\ntype: spike\n"}, timeout=10)
    assert r.status_code == 400 and "timeframe" in r.json()["error"]["reason"], r.text
    yaml = FAST + f"name: api rule\nindex: {INDEX}\ntype: any\nrealert: {{minutes: 0}}\nfilter:\n- kql: 'message:three'\nalert: [post]\nhttp_post_url: {webhook.url}/api\n"
    r = requests.post(srv.u("/_cairn/alerting/rules"), json={"id": "api-rule", "yaml": yaml}, timeout=10)
    assert r.status_code == 201, r.text
    assert r.json()["owner"] == "admin"
    assert requests.post(srv.u("/_cairn/alerting/rules"), json={"id": "api-rule", "yaml": yaml}, timeout=10).status_code == 409
    assert requests.delete(srv.u("/_cairn/alerting/rules/ok"), timeout=10).status_code == 400  # file rules are read-only
    v = requests.post(srv.u("/_cairn/alerting/rules/_validate"), data="name: v\nindex: x\ntype: any\nalert: [nope]\n", timeout=10).json()
    assert v["valid"] is False and v["key"] == "alert[0]"
    ingest(srv, [{"@timestamp": iso_now(), "message": "three"}])
    wait_for(lambda: [x for x in webhook.items() if x["path"] == "/api"], 30, what="api rule alert")
    # Marked sent just after delivery.
    hist = wait_for(lambda: [a for a in requests.get(srv.u("/_cairn/alerting/rules/api-rule/history"), timeout=10).json()["alerts"] if a["status"] == "sent"], 10, what="history")
    assert len(hist) == 1

    # Silences: a silenced rule sends nothing.
    r = requests.post(srv.u("/_cairn/alerting/rules/api-rule/silences"), json={"duration": "1h"}, timeout=10)
    assert r.status_code == 200, r.text
    n = len(webhook.items())
    ingest(srv, [{"@timestamp": iso_now(), "message": "three again"}])
    time.sleep(4)
    assert len([x for x in webhook.items()[n:] if x["path"] == "/api"]) == 0

    # The API rule survives a restart; deleting it stops it.
    srv.restart()
    assert requests.get(srv.u("/_cairn/alerting/rules/api-rule"), timeout=10).json()["running"] is True
    assert requests.delete(srv.u("/_cairn/alerting/rules/api-rule"), timeout=10).status_code == 200
    assert requests.get(srv.u("/_cairn/alerting/rules/api-rule"), timeout=10).status_code == 404


def _any_rule(rules: Path, url: str) -> None:
    write_rule(rules, "every", FAST + f"""name: every event
index: {INDEX}
type: any
realert: {{minutes: 0}}
alert: [post]
http_post_url: {url}/every
http_post_payload: {{doc: seq}}
""")


def test_graceful_restart_sends_each_alert_once(cairn_factory, tmp_path, webhook):
    rules = tmp_path / "rules"
    rules.mkdir()
    _any_rule(rules, webhook.url)
    srv = cairn_factory(extra_args=["--rules-dir", str(rules)])
    expected = []
    seq = 0
    for round_ in range(3):
        batch = []
        for _ in range(5):
            seq += 1
            batch.append({"@timestamp": iso_now(), "seq": seq})
        ingest(srv, batch)
        expected.extend(range(seq - 4, seq + 1))
        if round_ < 2:
            # Restart while the rule is mid-way (some of the batch may be unsent).
            time.sleep(0.5 * round_)
            srv.restart()
    wait_for(lambda: len(webhook.items()) >= len(expected), 60, what="all alerts")
    time.sleep(3)
    got = [x["body"]["doc"] for x in webhook.items()]
    assert sorted(got) == expected, got
    keys = [x["headers"]["idempotency-key"] for x in webhook.items()]
    assert len(set(keys)) == len(keys)


def test_kill9_resends_with_the_same_idempotency_key(cairn_factory, tmp_path):
    slow = Webhook(delay_s=4.0)  # holds the request open so the kill lands mid-send
    try:
        rules = tmp_path / "rules"
        rules.mkdir()
        _any_rule(rules, slow.url)
        srv = cairn_factory(extra_args=["--rules-dir", str(rules)])
        ingest(srv, [{"@timestamp": iso_now(), "seq": 1}])
        wait_for(lambda: slow.in_request.is_set(), 30, what="first delivery attempt")
        srv.kill9()
        slow.delay_s = 0.0
        srv.start()
        wait_for(lambda: len(slow.items()) >= 2, 60, what="resend after kill -9")
        time.sleep(3)
        items = slow.items()
        assert {x["body"]["doc"] for x in items} == {1}
        assert len({x["headers"]["idempotency-key"] for x in items}) == 1, items
        hist = requests.get(srv.u("/_cairn/alerting/history"), timeout=10).json()["alerts"]
        assert len(hist) == 1 and hist[0]["status"] == "sent"
    finally:
        slow.close()


def test_alert_test_command(cairn, tmp_path, webhook):
    ingest(cairn, [
        {"@timestamp": iso_now(-600), "level": "error", "host": "a"},
        {"@timestamp": iso_now(-500), "level": "error", "host": "a"},
        {"@timestamp": iso_now(-400), "level": "error", "host": "b"},
        {"@timestamp": iso_now(-300), "level": "info", "host": "b"},
    ])
    rule = tmp_path / "r.yaml"
    rule.write_text(f"""name: test me
index: {INDEX}
type: frequency
num_events: 2
timeframe: {{hours: 1}}
query_key: host
filter:
- kql: "level:error"
alert: [post]
http_post_url: {webhook.url}/t
alert_text: "Top: {{0}}"
alert_text_args: [missing_field]
""")
    p = subprocess.run([str(CAIRN_BIN), "alert", "test", str(rule), "--server", cairn.url, "--days", "1", "--format", "json"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["hits"] == 3
    assert "host" in out["fields"] and "level" in out["fields"]
    assert any("missing_field" in w for w in out["warnings"])
    assert [a["query_key"] for a in out["alerts"]] == ["a"]
    assert webhook.items() == []
    p = subprocess.run([str(CAIRN_BIN), "alert", "test", str(rule), "--server", cairn.url, "--days", "1", "--alert"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "Got 3 hits" in p.stdout
    assert len(webhook.items()) == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nindex: y\ntype: frequency\ntimeframe: {minutes: 1}\n")
    p = subprocess.run([str(CAIRN_BIN), "alert", "test", str(bad), "--server", cairn.url], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "num_events" in p.stderr


def test_webhook_style_alerters_payloads(cairn_factory, tmp_path, webhook):
    rules = tmp_path / "rules"
    rules.mkdir()
    u = webhook.url
    write_rule(rules, "many", FAST + f"""name: many alerters
index: {INDEX}
type: any
realert: {{minutes: 0}}
alert: [post2, slack, ms_teams, ms_power_automate, telegram, pagerduty, opsgenie, debug]
http_post2_url: {u}/post2
http_post2_payload: {{summary: "{{{{ host }}}} failed", static: 1}}
http_post2_headers: {{X-Host: "{{{{ host }}}}"}}
slack_webhook_url: {u}/slack
slack_channel_override: "#ops"
ms_teams_webhook_url: {u}/teams
ms_power_automate_webhook_url: {u}/flow
telegram_bot_token: TOKEN
telegram_room_id: "-100"
telegram_api_url: {u}
pagerduty_service_key: RKEY
pagerduty_events_url: {u}/pd
opsgenie_key: GKEY
opsgenie_addr: {u}/og
""")
    srv = cairn_factory(extra_args=["--rules-dir", str(rules)])
    ingest(srv, [{"@timestamp": iso_now(), "host": "web-9", "message": "boom"}])
    wait_for(lambda: len(webhook.items()) >= 7, 30, what="7 deliveries")
    time.sleep(2)
    by_path = {x["path"]: x for x in webhook.items()}
    assert len(webhook.items()) == 7, [x["path"] for x in webhook.items()]
    hist = requests.get(srv.u("/_cairn/alerting/history"), timeout=10).json()["alerts"]
    assert len(hist) == 1 and hist[0]["status"] == "sent", hist
    key = hist[0]["id"]
    p2 = by_path["/post2"]
    assert p2["body"]["summary"] == "web-9 failed" and p2["body"]["static"] == 1
    assert p2["headers"]["x-host"] == "web-9" and p2["headers"]["idempotency-key"] == key
    slack = by_path["/slack"]["body"]
    assert slack["channel"] == "#ops" and slack["attachments"][0]["title"] == "ElastAlert: many alerters"
    assert "host: web-9" in slack["attachments"][0]["text"]
    assert by_path["/teams"]["body"]["@type"] == "MessageCard"
    assert by_path["/flow"]["body"]["attachments"][0]["content"]["type"] == "AdaptiveCard"
    tg = by_path["/botTOKEN/sendMessage"]["body"]
    assert tg["chat_id"] == "-100" and "many alerters" in tg["text"]
    pd = by_path["/pd"]["body"]
    assert pd["routing_key"] == "RKEY" and pd["event_action"] == "trigger" and pd["dedup_key"] == key
    og = by_path["/og"]
    assert og["headers"]["authorization"] == "GenieKey GKEY" and og["body"]["alias"] == key
