"""Telling people, on the real API server with a real operator process: signed webhooks
that arrive within 3 s of the action, a receiver that is down at the fault (containment is
not slowed, and the notifications arrive once it is back), a SIGKILL between the action
and its notification (the outbox in status carries it to the next process), sinks that are
slow or answer garbage (the guard keeps its schedule), the Alertmanager alert, and the
per-guard metric series."""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.request
from datetime import datetime
from typing import Any

import pytest
from objects import Objects

from devcluster.launch import LOCAL_METRICS, operator_metrics_url
from e2e.operator_metrics import wait_evaluations
from e2e.receiver import Receiver, free_port
from waiting import wait_until

HMAC_KEY = "s3cret-key"
LOCAL = ("--allowed-url", r"^http://127\.0\.0\.1:[0-9]+(/|$)")
FLAG_STEP = {
    "type": "FeatureFlag",
    "featureFlag": {"configMap": "flags", "key": "new-checkout", "value": "false"},
}


def _time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def hook_secret(objs: Objects, name: str, url: str, hmac_key: str | None = HMAC_KEY) -> None:
    data = {"url": url} | ({"hmacKey": hmac_key} if hmac_key else {})
    objs.core.create_namespaced_secret(
        objs.ns,
        {
            "metadata": {"name": name, "labels": {"releaseguard.io/usable-by-guards": "true"}},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        },
        _request_timeout=(3, 15),
    )


def guard_spec(query: str, notify: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "target": {"deployment": "app"},
        "intervalSeconds": 1,
        "consecutiveBreaches": 1,
        "metrics": [{"name": "error-rate", "query": query, "max": 0.1}],
        "steps": [FLAG_STEP],
        "notify": notify,
        **extra,
    }


def webhook(secret: str = "hooks", fmt: str = "JSON") -> dict[str, Any]:
    return {"webhook": {"urlSecretRef": {"name": secret, "key": "url"}, "format": fmt}}


def setup(cluster: Any, namespace: str, exporter: Any, metric: str = "rg_error_ratio") -> str:
    """Target `app` and ConfigMap `flags`; returns a query that breaches."""
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_config_map("flags", {"new-checkout": "true"})
    exporter.set(metric, 0.5, {"guard": namespace})
    return f'max({metric}{{guard="{namespace}"}})'


def wait_status(objs: Objects, name: str, check: Any, timeout: float = 60) -> dict[str, Any]:
    return wait_until(
        lambda: check(s := objs.status(name)) and s,
        timeout=timeout,
        describe=lambda: json.dumps(objs.status(name), indent=1)[-3000:],
    )


def applied(status: dict[str, Any]) -> bool:
    return any(a.get("result") == "Applied" for a in status.get("actions") or [])


def test_webhook_gets_signed_incident_opened_and_action_applied_within_3_s(
    cluster, namespace, exporter, run_operator
):
    receiver = Receiver()
    query = setup(cluster, namespace, exporter)
    objs = Objects(cluster.api, namespace)
    hook_secret(objs, "hooks", receiver.url)
    guard = objs.create_guard("g", guard_spec(query, [webhook()]))
    run_operator(namespace, *LOCAL)

    status = wait_status(objs, "g", applied)
    action = status["actions"][0]
    acted = _time(action["time"])
    opened = receiver.wait_for("IncidentOpened", timeout=10)[0]
    got = receiver.wait_for("ActionApplied", timeout=10)[0]
    assert got.at - acted <= 3.0, f"ActionApplied arrived {got.at - acted:.2f} s after the action"
    uid = guard["metadata"]["uid"]
    incident_uid = status["incident"]["uid"]  # never repeats, unlike the number
    for message in (opened, got):
        assert message.signed_by(HMAC_KEY)
        doc = message.json()
        assert message.headers["Idempotency-Key"] == doc["idempotencyKey"]
        assert doc["idempotencyKey"].startswith(f"{uid}/{incident_uid}/")
        assert doc["guard"] == {"namespace": namespace, "name": "g", "uid": uid}
        assert doc["target"] == "app" and doc["incident"] == 1
        assert doc["evidence"][0]["name"] == "error-rate"
        assert doc["evidence"][0]["value"] == 0.5
    doc = got.json()
    assert doc["idempotencyKey"] == f"{uid}/{incident_uid}/ActionApplied/{action['id']}"
    assert doc["action"]["type"] == "FeatureFlag"
    assert doc["action"]["before"] == {"new-checkout": "true"}
    assert doc["action"]["after"] == {"new-checkout": "false"}
    # Marked sent in status on a later evaluation; nothing owed is left behind.
    status = wait_status(
        objs,
        "g",
        lambda s: (s.get("notifications") or {}).get("sent", 0) >= 2 and not s.get("outbox"),
    )
    assert status["notifications"]["pending"] == 0


def test_slack_format_gets_one_text(cluster, namespace, exporter, run_operator):
    receiver = Receiver()
    query = setup(cluster, namespace, exporter)
    objs = Objects(cluster.api, namespace)
    hook_secret(objs, "slack", receiver.url, hmac_key=None)
    objs.create_guard("g", guard_spec(query, [webhook("slack", "Slack")]))
    run_operator(namespace, *LOCAL)
    wait_status(objs, "g", applied)
    texts = wait_until(
        lambda: [
            m.json()["text"] for m in receiver.messages() if "ActionApplied" in m.body.decode()
        ],
        timeout=15,
        describe=lambda: str(receiver.messages()),
    )
    assert f"*ActionApplied* {namespace}/g" in texts[0]
    assert "X-ReleaseGuard-Signature" not in receiver.messages()[0].headers


def test_receiver_down_at_the_fault_does_not_slow_containment_and_gets_everything_once_back(
    cluster, namespace, exporter, run_operator
):
    port = free_port()
    query = setup(cluster, namespace, exporter)
    objs = Objects(cluster.api, namespace)
    hook_secret(objs, "dead", f"http://127.0.0.1:{port}/hook")
    objs.create_guard("dead", guard_spec(query, [webhook("dead")]))
    objs.create_config_map("flags2", {"new-checkout": "true"})
    quiet_step = {**FLAG_STEP, "featureFlag": {**FLAG_STEP["featureFlag"], "configMap": "flags2"}}
    # The same fault, with nobody to tell.
    objs.create_guard("quiet", {**guard_spec(query, []), "steps": [quiet_step]})
    operator = run_operator(namespace, *LOCAL, *LOCAL_METRICS)

    dead = wait_status(objs, "dead", applied)
    quiet = wait_status(objs, "quiet", applied)
    ttc_dead = dead["incident"]["timeToContainSeconds"]
    ttc_quiet = quiet["incident"]["timeToContainSeconds"]
    # Both guards' first evaluation breaches and contains at once; the dead sink adds nothing.
    assert ttc_dead <= ttc_quiet + 1.0, (ttc_dead, ttc_quiet)
    assert ttc_dead <= 3.0
    wait_status(objs, "dead", lambda s: (s.get("notifications") or {}).get("pending", 0) >= 2)

    receiver = Receiver(port)
    receiver.wait_for("ActionApplied", timeout=45)
    receiver.wait_for("IncidentOpened", timeout=5)
    status = wait_status(
        objs, "dead", lambda s: not s.get("outbox") and s["notifications"]["sent"] >= 2
    )
    assert status["notifications"]["failed"] == 0
    # The claim is "once": a duplicate would be an outbox entry sent again by a later
    # evaluation, or an attempt still in flight. Let both guards evaluate twice more.
    url = operator_metrics_url(operator.log_path)
    metrics = wait_evaluations(url, 4)
    keys = [m.json()["idempotencyKey"] for m in receiver.messages()]
    assert len(keys) == len(set(keys)) == 2, keys
    sent = {k: v for k, v in metrics.items() if k.startswith("releaseguard_notifications_total")}
    assert sum(v for k, v in sent.items() if 'result="sent"' in k) == 2, sent


def test_sigkill_right_after_the_action_then_the_notification_arrives(
    cluster, namespace, exporter, run_operator
):
    port = free_port()  # the receiver is down until the operator has been killed
    query = setup(cluster, namespace, exporter)
    objs = Objects(cluster.api, namespace)
    hook_secret(objs, "hooks", f"http://127.0.0.1:{port}/hook")
    objs.create_guard("g", guard_spec(query, [webhook()]))
    first = run_operator(namespace, *LOCAL)
    status = wait_status(objs, "g", lambda s: applied(s) and s.get("outbox"))
    first.kill()
    owed = {e["moment"] for e in status["outbox"]}
    assert {"IncidentOpened", "ActionApplied"} <= owed

    receiver = Receiver(port)
    run_operator(namespace, *LOCAL)
    got = receiver.wait_for("ActionApplied", timeout=30)
    assert got[0].signed_by(HMAC_KEY)
    assert got[0].json()["action"]["id"] == status["actions"][0]["id"]
    receiver.wait_for("IncidentOpened", timeout=5)
    wait_status(objs, "g", lambda s: not s.get("outbox"))


@pytest.mark.parametrize("mode", ["slow", "garbage"])
def test_a_slow_or_garbage_sink_never_delays_evaluations(
    cluster, namespace, exporter, run_operator, mode
):
    receiver = Receiver()
    receiver.mode = mode
    receiver.delay = 30.0
    query = setup(cluster, namespace, exporter)
    objs = Objects(cluster.api, namespace)
    hook_secret(objs, "hooks", receiver.url)
    objs.create_guard("g", guard_spec(query, [webhook()]))
    run_operator(namespace, *LOCAL, "--status-heartbeat", "0")
    wait_status(objs, "g", applied)
    seen: set[str] = set()

    def evaluated() -> bool:
        seen.add((objs.status("g").get("lastEvaluation") or {}).get("time", ""))
        return len(seen) >= 8

    started = time.monotonic()
    wait_until(evaluated, timeout=20, interval=0.3, describe=lambda: str(sorted(seen)))
    # intervalSeconds 1: eight evaluations in well under the sink's 30 s.
    assert time.monotonic() - started < 15
    assert objs.status("g")["phase"] == "Contained"


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def test_per_guard_series_appear_and_go_away_with_the_guard(
    cluster, namespace, exporter, run_operator
):
    query = setup(cluster, namespace, exporter)
    objs = Objects(cluster.api, namespace)
    objs.create_guard("g", guard_spec(query, []))
    operator = run_operator(namespace, *LOCAL_METRICS)
    url = operator_metrics_url(operator.log_path)
    phase = f'releaseguard_guard_phase{{guard="g",namespace="{namespace}",phase="Contained"}} 1.0'
    wait_until(lambda: phase in _scrape(url), timeout=30, describe=lambda: _scrape(url)[-2000:])
    text = _scrape(url)
    assert f'releaseguard_guard_consecutive_breaches{{guard="g",namespace="{namespace}"}}' in text
    assert "releaseguard_time_to_contain_seconds_count 1.0" in text
    objs.custom.delete_namespaced_custom_object(
        "releaseguard.io", "v1alpha1", namespace, "releaseguards", "g", _request_timeout=(3, 15)
    )
    wait_until(
        lambda: f'namespace="{namespace}"' not in _scrape(url),
        timeout=30,
        describe=lambda: [ln for ln in _scrape(url).splitlines() if namespace in ln],
    )


def test_events_are_posted_as_releaseguard_with_the_pod_name(
    cluster, namespace, exporter, run_operator
):
    query = setup(cluster, namespace, exporter)
    objs = Objects(cluster.api, namespace)
    objs.create_guard("g", guard_spec(query, []))
    run_operator(namespace, env={"POD_NAME": "releaseguard-abc12"})
    events = objs.wait_event("g", "StepApplied")
    assert events[0]["reportingComponent"] == "releaseguard"
    assert events[0]["reportingInstance"] == "releaseguard-abc12"
    assert events[0]["source"]["component"] == "releaseguard"


def test_json_logs_carry_guard_incident_and_action(cluster, namespace, exporter, run_operator):
    query = setup(cluster, namespace, exporter)
    objs = Objects(cluster.api, namespace)
    objs.create_guard("g", guard_spec(query, []))
    operator = run_operator(namespace, "--log-format", "json")
    status = wait_status(objs, "g", applied)

    def line() -> dict[str, Any] | None:
        for text in operator.log_text().splitlines():
            try:
                doc = json.loads(text)
            except ValueError:
                continue
            if doc.get("event") == "ActionApplied":
                return doc
        return None

    doc = wait_until(line, timeout=10, describe=operator.log_tail)
    assert doc["namespace"] == namespace and doc["guard"] == "g"
    assert doc["incident"] == 1 and doc["actionId"] == status["actions"][0]["id"]
    assert all(json.loads(t) for t in operator.log_text().splitlines() if t.startswith("{"))


ALERTMANAGER_URL = os.environ.get("ALERTMANAGER_URL", "")


def _alerts(base: str, namespace: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{base}/api/v2/alerts?active=true", timeout=5) as response:
        alerts = json.loads(response.read())
    return [
        a
        for a in alerts
        if a["labels"].get("alertname") == "ReleaseGuardIncident"
        and a["labels"].get("namespace") == namespace
        and a["status"]["state"] == "active"
    ]


def test_alertmanager_alert_is_active_while_open_and_resolved_after_rearm(
    cluster, namespace, exporter, run_operator, alertmanager_url
):
    query = setup(cluster, namespace, exporter)
    objs = Objects(cluster.api, namespace)
    objs.create_guard("g", guard_spec(query, [{"alertmanager": {}}]))
    run_operator(namespace, "--alertmanager-url", alertmanager_url)
    wait_status(objs, "g", applied)
    active = wait_until(
        lambda: _alerts(alertmanager_url, namespace),
        timeout=15,
        describe=lambda: str(_alerts(alertmanager_url, namespace)),
    )
    assert len(active) == 1
    labels = active[0]["labels"]
    assert (labels["guard"], labels["target"], labels["phase"]) == ("g", "app", "Contained")
    assert labels["severity"] == "warning"

    exporter.set("rg_error_ratio", 0.0, {"guard": namespace})  # healthy again, then re-armed
    wait_status(objs, "g", lambda s: (s.get("incident") or {}).get("recoveredAt"))
    objs.annotate_guard("g", "releaseguard.io/rearm", "1")
    wait_status(objs, "g", lambda s: s.get("phase") == "Watching")
    wait_until(
        lambda: not _alerts(alertmanager_url, namespace),
        timeout=15,
        describe=lambda: str(_alerts(alertmanager_url, namespace)),
    )


@pytest.fixture
def alertmanager_url(cluster: Any) -> str:
    url = ALERTMANAGER_URL or getattr(cluster.info, "alertmanager_url", "") or ""
    if not url:
        pytest.skip("no Alertmanager in this dev cluster (make cluster-up starts one)")
    return url.rstrip("/")


def test_a_sink_the_operator_may_not_use_makes_the_guard_invalid_and_nothing_is_sent(
    cluster, namespace, exporter, run_operator
):
    receiver = Receiver()
    query = setup(cluster, namespace, exporter)
    objs = Objects(cluster.api, namespace)
    objs.core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "unlabelled"},
            "data": {"url": base64.b64encode(receiver.url.encode()).decode()},
        },
        _request_timeout=(3, 15),
    )
    hook_secret(objs, "elsewhere", receiver.url)
    objs.create_guard("unlabelled", guard_spec(query, [webhook("unlabelled")]))
    objs.create_guard("elsewhere", guard_spec(query, [webhook("elsewhere")]))
    objs.create_guard("no-am", guard_spec(query, [{"alertmanager": {}}]))
    run_operator(namespace)  # default allow-list: ^https:// only; no --alertmanager-url

    for name, reason in (
        ("unlabelled", "SecretNotLabelled"),
        ("elsewhere", "URLNotAllowed"),
        ("no-am", "NoAlertmanager"),
    ):
        status = wait_status(objs, name, lambda s: s.get("phase") == "Invalid")
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert ready["reason"] == reason, (name, ready)
    assert objs.config_map("flags")["data"]["new-checkout"] == "true"  # nothing acted
    assert receiver.messages() == []
