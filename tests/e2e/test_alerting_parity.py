"""Parity with ElastAlert 2: the same rule files, run unmodified by ElastAlert2 (2.19.x
from PyPI, in its own venv because it pins its own Elasticsearch 7.10 client) against
Cairn's Elasticsearch API and by Cairn's own engine, over the same live data, send the
same alerts.

Both engines post to the same webhook receiver; the rule files say
`http_post_url: $HOOK_URL` and each engine gets its own URL through the environment
(both expand `$VAR` in rule files).

The ElastAlert2 venv is `$ELASTALERT_VENV` or `.venv-elastalert` at the repo root; it is
created on first use (python3.11 + pip), and the test is skipped if that is impossible.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest
import requests

from conftest import OUTPUT_DIR, REPO_ROOT, wait_for
from test_alerting import Webhook, iso_now

INDEX = "parity-logs"
EA_VERSION = "elastalert2>=2.19,<2.20"


def elastalert_venv() -> Path:
    venv = Path(os.environ.get("ELASTALERT_VENV") or REPO_ROOT / ".venv-elastalert")
    if (venv / "bin" / "elastalert").exists():
        return venv
    py = shutil.which("python3.11")
    if not py:
        pytest.skip("python3.11 (ElastAlert2 2.19's Python) is not installed")
    try:
        subprocess.run([py, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", EA_VERSION, "pytz"], check=True, timeout=900)
    except (subprocess.SubprocessError, OSError) as e:
        # PyPI is reachable wherever this suite runs: a failed install is a failure,
        # not a reason to skip the parity check. (elastalert2 2.19 imports pytz
        # without declaring it, hence the explicit pytz above.)
        shutil.rmtree(venv, ignore_errors=True)
        pytest.fail(f"cannot install ElastAlert2 into {venv}: {e}")
    return venv


COMMON = """run_every: {seconds: 3}
buffer_time: {minutes: 3}
alert: [post]
http_post_url: $HOOK_URL
"""

RULES = {
    "p-any": f"""name: p-any
index: {INDEX}
type: any
realert: {{minutes: 0}}
filter:
- term: {{level: error}}
""",
    "p-blacklist": f"""name: p-blacklist
index: {INDEX}
type: blacklist
compare_key: user
blacklist: [root, admin]
realert: {{minutes: 0}}
""",
    "p-frequency": f"""name: p-frequency
index: {INDEX}
type: frequency
num_events: 5
timeframe: {{minutes: 1}}
query_key: host
realert: {{hours: 1}}
filter:
- term: {{kind: burst}}
""",
    "p-new-term": f"""name: p-new-term
index: {INDEX}
type: new_term
fields: [user]
terms_window_size: {{days: 2}}
realert: {{minutes: 0}}
filter:
- term: {{kind: login}}
""",
    "p-cardinality": f"""name: p-cardinality
index: {INDEX}
type: cardinality
cardinality_field: user
max_cardinality: 3
timeframe: {{minutes: 1}}
query_key: ip
realert: {{hours: 1}}
filter:
- term: {{kind: login}}
""",
    "p-metric": f"""name: p-metric
index: {INDEX}
type: metric_aggregation
metric_agg_key: latency
metric_agg_type: max
max_threshold: 900
query_key: host
realert: {{hours: 1}}
filter:
- term: {{kind: request}}
""",
    "p-flatline": f"""name: p-flatline
index: {INDEX}
type: flatline
threshold: 2
timeframe: {{seconds: 15}}
query_key: host
realert: {{hours: 1}}
filter:
- term: {{kind: heartbeat}}
""",
    "p-spike": f"""name: p-spike
index: {INDEX}
type: spike
spike_height: 4
spike_type: up
threshold_cur: 10
timeframe: {{seconds: 15}}
realert: {{hours: 1}}
filter:
- term: {{kind: traffic}}
""",
    "p-whitelist": f"""name: p-whitelist
index: {INDEX}
type: whitelist
compare_key: user
whitelist: [alice, bob, carol, dave, erin, frank]
ignore_null: true
realert: {{minutes: 0}}
filter:
- term: {{kind: login}}
""",
    "p-change": f"""name: p-change
index: {INDEX}
type: change
compare_key: country
query_key: user
ignore_null: true
realert: {{minutes: 0}}
filter:
- term: {{kind: geo}}
""",
    "p-percentage": f"""name: p-percentage
index: {INDEX}
type: percentage_match
match_bucket_filter:
- term: {{status: 500}}
max_percentage: 40
min_denominator: 4
realert: {{hours: 1}}
filter:
- term: {{kind: request}}
""",
    "p-frequency-count": f"""name: p-frequency-count
index: {INDEX}
type: frequency
num_events: 4
timeframe: {{minutes: 1}}
use_count_query: true
realert: {{hours: 1}}
filter:
- term: {{kind: burst}}
""",
    # The alert text itself, piped to a command by both engines.
    "p-text": f"""name: p-text
index: {INDEX}
type: frequency
num_events: 5
timeframe: {{minutes: 1}}
query_key: host
realert: {{hours: 1}}
filter:
- term: {{kind: burst}}
""",
}

TEXT_RULE = """run_every: {seconds: 3}
buffer_time: {minutes: 3}
alert: [command]
command: ["/bin/sh", "-c", "cat >> $TEXT_OUT"]
pipe_alert_text: true
"""


def ingest(srv, docs):
    r = srv.bulk([l for d in docs for l in ({"index": {"_index": INDEX}}, d)], params={"refresh": "true"}, timeout=30)
    r.raise_for_status()
    assert not r.json()["errors"], r.text


def summarize(items: list[dict]) -> dict[str, list[str]]:
    """Per rule: the alerts as comparable strings (keys, ids and the rule-type extras)."""
    out: dict[str, list[str]] = defaultdict(list)
    for it in items:
        b = it["body"]
        rule = it["path"].rsplit("/", 1)[-1]
        host = b.get("host")
        if isinstance(host, dict):  # ElastAlert's `host.keyword` query_key on aggregations
            host = host.get("keyword")
        ident = {
            "p-any": lambda: b.get("_id"),
            "p-blacklist": lambda: f"{b.get('user')} {b.get('_id')}",
            "p-frequency": lambda: host,
            "p-new-term": lambda: f"{b.get('user')} {b.get('new_field')}",
            "p-cardinality": lambda: b.get("ip"),
            "p-metric": lambda: f"{host} {b.get('metric_latency_max')}",
            # The count at firing depends on where each engine's runs fall between events.
            "p-flatline": lambda: b.get("key"),
            "p-spike": lambda: "spike",
            "p-whitelist": lambda: f"{b.get('user')} {b.get('_id')}",
            "p-change": lambda: f"{b.get('user')} {b.get('old_value')} {b.get('new_value')}",
            "p-percentage": lambda: f"{b.get('percentage')} {b.get('denominator')}",
            "p-frequency-count": lambda: "burst",
        }[rule]()
        out[rule].append(str(ident))
    return {k: sorted(v) for k, v in out.items()}


def test_same_rules_same_alerts_as_elastalert2(cairn_factory, tmp_path):
    venv = elastalert_venv()
    rules = tmp_path / "rules"
    rules.mkdir()
    hook = Webhook()
    ea_proc = None
    try:
        text_cairn, text_ea = tmp_path / "text-cairn.txt", tmp_path / "text-ea.txt"
        srv = cairn_factory(extra_args=["--rules-dir", str(rules)], env={"HOOK_URL": f"{hook.url}/cairn", "TEXT_OUT": str(text_cairn)})
        # History for new_term (alice and bob logged in yesterday), stored before either
        # engine loads the rules.
        ingest(srv, [
            {"@timestamp": iso_now(-86400), "kind": "login", "user": "alice", "ip": "10.0.0.9"},
            {"@timestamp": iso_now(-86000), "kind": "login", "user": "bob", "ip": "10.0.0.9"},
        ])
        # Each engine posts to /<engine>/<rule>: both expand $HOOK_URL in rule files.
        # Cairn picks the files up by hot reload.
        for name, text in RULES.items():
            tail = TEXT_RULE if name == "p-text" else COMMON
            (rules / f"{name}.yaml").write_text((text + tail).replace("$HOOK_URL", f"$HOOK_URL/{name}"))
        wait_for(lambda: len(requests.get(srv.u("/_cairn/alerting/rules"), timeout=10).json()["rules"]) == len(RULES), 20, what="rules loaded")
        cfg = tmp_path / "ea-config.yaml"
        cfg.write_text(f"""rules_folder: {rules}
run_every: {{seconds: 3}}
buffer_time: {{minutes: 3}}
es_host: 127.0.0.1
es_port: {srv.port}
writeback_index: elastalert_status
alert_time_limit: {{days: 2}}
""")
        env = dict(os.environ, HOOK_URL=f"{hook.url}/ea", TEXT_OUT=str(text_ea))
        subprocess.run([str(venv / "bin" / "elastalert-create-index"), "--config", str(cfg)], check=True, capture_output=True, env=env, timeout=120)
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        ea_log = open(OUTPUT_DIR / "test_alerting_parity.elastalert.log", "wb")
        ea_proc = subprocess.Popen([str(venv / "bin" / "elastalert"), "--config", str(cfg), "--verbose"], stdout=ea_log, stderr=ea_log, env=env)
        time.sleep(20)  # ElastAlert starts each rule after a random 0-15 s delay

        # Live data, in real time.
        ingest(srv, [{"@timestamp": iso_now(), "kind": "heartbeat", "host": "hb-1"}])
        for i in range(12):
            batch = [
                {"@timestamp": iso_now(), "kind": "traffic", "n": i},
                {"@timestamp": iso_now(), "kind": "heartbeat", "host": "hb-1"},
            ]
            if i == 2:
                batch += [{"@timestamp": iso_now(), "level": "error", "host": "web-1", "message": "oops"} for _ in range(2)]
                batch += [{"@timestamp": iso_now(), "kind": "login", "user": u, "ip": "10.0.0.9"} for u in ["alice", "bob", "root"]]
            if i == 4:
                batch += [{"@timestamp": iso_now(), "kind": "burst", "host": "web-2"} for _ in range(6)]
                batch += [{"@timestamp": iso_now(), "kind": "burst", "host": "web-3"} for _ in range(2)]
                batch += [{"@timestamp": iso_now(), "kind": "login", "user": u, "ip": "10.0.0.7"} for u in ["carol", "dave", "erin", "frank"]]
            if i == 3:
                batch += [{"@timestamp": iso_now(), "kind": "geo", "user": "alice", "country": "FR"}]
            if i == 5:
                batch += [{"@timestamp": iso_now(), "kind": "geo", "user": "alice", "country": "BR"},
                          {"@timestamp": iso_now(), "kind": "geo", "user": "bob", "country": "DE"}]
            if i == 6:
                batch += [{"@timestamp": iso_now(), "kind": "request", "host": h, "latency": lat, "status": st}
                          for h, lat, st in [("api-1", 120, 200), ("api-1", 1500, 500), ("api-2", 300, 500), ("api-2", 80, 200), ("api-2", 90, 500)]]
            ingest(srv, batch)
            time.sleep(2.5)
        # Then the heartbeat stops (flatline) and traffic spikes.
        for _ in range(3):
            ingest(srv, [{"@timestamp": iso_now(), "kind": "traffic", "n": 100} for _ in range(15)])
            time.sleep(1)

        expected_rules = set(RULES) - {"p-text"}

        def both_done():
            ea_rules = {x["path"].rsplit("/", 1)[-1] for x in hook.items() if x["path"].startswith("/ea/")}
            cairn_rules = {x["path"].rsplit("/", 1)[-1] for x in hook.items() if x["path"].startswith("/cairn/")}
            return ea_rules >= expected_rules and cairn_rules >= expected_rules

        try:
            wait_for(both_done, 90, interval=1, what="every rule alerting in both engines")
        except TimeoutError:
            pass  # compared below, with the details
        time.sleep(8)  # let late duplicates show up
        items = hook.items()
        ea = summarize([x for x in items if x["path"].startswith("/ea/")])
        cairn = summarize([x for x in items if x["path"].startswith("/cairn/")])
        report = {"elastalert2": ea, "cairn": cairn}
        (OUTPUT_DIR / "test_alerting_parity.result.json").write_text(json.dumps(report, indent=2, sort_keys=True))
        assert set(ea) == expected_rules, f"ElastAlert2 did not alert on every rule: {report}"
        assert cairn == ea, json.dumps(report, indent=2, sort_keys=True)
        ea_text = text_ea.read_text() if text_ea.exists() else ""
        cairn_text = text_cairn.read_text() if text_cairn.exists() else ""
        (OUTPUT_DIR / "test_alerting_parity.text.txt").write_text(f"--- elastalert2\n{ea_text}\n--- cairn\n{cairn_text}")
        assert ea_text and cairn_text == ea_text
    finally:
        if ea_proc is not None:
            ea_proc.terminate()
            try:
                ea_proc.wait(20)
            except subprocess.TimeoutExpired:
                ea_proc.kill()
        hook.close()
