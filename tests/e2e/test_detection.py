"""Detection on the real API server and a real Prometheus: verdicts, hysteresis,
no-data policy, and run-time invalidity, as written to the guard's status."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

import pytest
from objects import Objects, condition
from private_prometheus import PrivatePrometheus

from devcluster.launch import EVERY_EVALUATION
from waiting import wait_until

# A private Prometheus is plain http on loopback, outside the default URL allow-list.
PRIVATE_PROMETHEUS_ALLOWED = ("--allowed-url", r"^http://127\.0\.0\.1:[0-9]+(/|$)")


@pytest.fixture
def private_prometheus(tmp_path):
    """Factory: a Prometheus of this test's own, scraping one target, that it may stop."""
    started: list[PrivatePrometheus] = []

    def start(target_port: int) -> PrivatePrometheus:
        prom = PrivatePrometheus(tmp_path / f"prom-{len(started)}", target_port)
        started.append(prom)
        prom.start()
        return prom

    yield start
    for prom in started:
        prom.stop()


def stamp(text: str) -> datetime:
    return datetime.fromisoformat(text)


def error_ratio_query(label: str) -> str:
    return f'max(rg_error_ratio{{guard="{label}"}})'


def guard_spec(deployment: str, query: str, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "target": {"deployment": deployment},
        "intervalSeconds": 1,
        "consecutiveBreaches": 2,
        "metrics": [{"name": "error-rate", "query": query, "max": 0.1}],
    }
    spec.update(extra)
    return spec


def history_until(objs: Objects, name: str, predicate: Any, timeout: float) -> list[dict]:
    """Poll the guard's status faster than it is written; return every distinct state seen."""
    seen: list[dict] = []

    def probe() -> bool:
        status = objs.status(name)
        last = status.get("lastEvaluation") or {}
        snap = {
            "time": last.get("time"),
            "count": last.get("consecutiveBreaches"),
            "verdict": last.get("verdict"),
            "phase": status.get("phase"),
        }
        if not seen or seen[-1] != snap:
            seen.append(snap)
        return bool(predicate(status))

    wait_until(probe, timeout=timeout, interval=0.1, describe=lambda: f"history {seen[-8:]}")
    return seen


def test_breach_is_confirmed_after_exactly_consecutive_breaches(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    exporter.set("rg_error_ratio", 0.5, {"guard": namespace})
    objs.create_guard("g", guard_spec("app", error_ratio_query(namespace), consecutiveBreaches=3))
    run_operator(namespace)

    seen = history_until(objs, "g", lambda s: s.get("phase") == "Breaching", timeout=60)

    breaching = [s for s in seen if s["phase"] == "Breaching"]
    assert breaching[0]["count"] == 3, seen
    assert all(s["count"] >= 3 for s in breaching), seen
    counting = [s["count"] for s in seen if s["phase"] == "Watching" and s["count"]]
    assert counting and max(counting) < 3, f"breaches below the count must stay Watching: {seen}"
    status = objs.status("g")
    assert condition(status, "Breached")["status"] == "True"
    assert "error-rate 0.5 > 0.1" in condition(status, "Breached")["message"]
    objs.wait_event("g", "BreachConfirmed")


def test_single_spike_does_not_confirm_breach(cluster, namespace, exporter, run_operator):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    exporter.set("rg_error_ratio", 0.0, {"guard": namespace})
    objs.create_guard("g", guard_spec("app", error_ratio_query(namespace), consecutiveBreaches=6))
    run_operator(namespace)
    wait_until(
        lambda: (objs.status("g").get("lastEvaluation") or {}).get("verdict") == "Healthy",
        timeout=60,
        describe=lambda: objs.status("g"),
    )

    exporter.set("rg_error_ratio", 0.9, {"guard": namespace})
    wait_until(
        lambda: (objs.status("g").get("lastEvaluation") or {}).get("consecutiveBreaches", 0) >= 1,
        timeout=30,
        describe=lambda: objs.status("g").get("lastEvaluation"),
    )
    exporter.set("rg_error_ratio", 0.0, {"guard": namespace})

    def healthy_again(status: dict) -> bool:
        return (status.get("lastEvaluation") or {}).get("verdict") == "Healthy"

    seen = history_until(objs, "g", healthy_again, timeout=30)
    assert all(s["phase"] == "Watching" for s in seen), seen
    assert max(s["count"] or 0 for s in seen) < 6
    status = objs.status("g")
    assert status["lastEvaluation"]["consecutiveBreaches"] == 0
    assert condition(status, "Breached")["status"] == "False"


def test_fast_confirmation_confirms_a_breach_confirm_interval_after_the_first(
    cluster, namespace, exporter, run_operator
):
    """intervalSeconds 10, confirmIntervalSeconds 1: the confirming evaluation comes about
    1 s after the first breaching one, not 10 s. The gauge does not move, so the
    confirming answer is exactly the first one: the guard warns that the confirmation
    probably saw no new sample (a constant series looks the same; the warning says so)."""
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    exporter.set("rg_error_ratio", 0.0, {"guard": namespace})
    spec = guard_spec(
        "app", error_ratio_query(namespace), intervalSeconds=10, confirmIntervalSeconds=1
    )
    objs.create_guard("g", spec)
    run_operator(namespace)
    wait_until(
        lambda: (objs.status("g").get("lastEvaluation") or {}).get("verdict") == "Healthy",
        timeout=60,
        describe=lambda: objs.status("g"),
    )

    exporter.set("rg_error_ratio", 0.5, {"guard": namespace})
    status = wait_until(
        lambda: (s := objs.status("g")).get("phase") == "Breaching" and s,
        timeout=60,
        describe=lambda: objs.status("g"),
    )

    incident = status["incident"]
    gap = (stamp(incident["confirmedAt"]) - stamp(incident["detectedAt"])).total_seconds()
    assert gap < 5, f"confirmed {gap:.1f}s after the first breach, not ~1 s: {incident}"

    def stale_warning() -> dict | None:
        found = [e for e in objs.events("g") if e["reason"] == "StaleConfirmation"]
        return found[0] if found else None

    event = wait_until(stale_warning, timeout=30, describe=lambda: objs.events("g"))
    assert event["type"] == "Warning"
    assert "error-rate 0.5" in event["message"]
    assert "confirmIntervalSeconds (now 1)" in event["message"]


def test_a_flapping_metric_never_confirms_under_two_consecutive_breaches(
    cluster, namespace, exporter, run_operator
):
    """breach, healthy, breach, healthy, ...: the test flips the gauge as soon as the guard
    has judged it, so every breach is checked again after confirmIntervalSeconds (sooner
    than intervalSeconds) and found healthy. The count never reaches 2.

    After a breach the flip has confirmIntervalSeconds (4 s) to be scraped (every 1 s)
    before the re-check; a flip that came too late would fail the test, not pass it."""
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    labels = {"guard": namespace}
    exporter.set("rg_error_ratio", 0.0, labels)
    spec = guard_spec(
        "app", error_ratio_query(namespace), intervalSeconds=8, confirmIntervalSeconds=4
    )
    objs.create_guard("g", spec)
    run_operator(namespace, *EVERY_EVALUATION)
    seen: list[dict[str, Any]] = []  # every evaluation observed, in order

    def evaluation(verdict: str, after: str | None) -> Any:
        def probe() -> dict[str, Any] | None:
            status = objs.status("g")
            last = status.get("lastEvaluation") or {}
            if last and (not seen or seen[-1]["time"] != last["time"]):
                seen.append({**last, "phase": status.get("phase")})
            later = after is None or (last and stamp(last["time"]) > stamp(after))
            return last if last.get("verdict") == verdict and later else None

        return probe

    def history() -> str:
        rows = [(s["time"], s["verdict"], s["consecutiveBreaches"]) for s in seen]
        return f"evaluations seen: {rows}"

    healthy = wait_until(evaluation("Healthy", None), timeout=60, interval=0.05, describe=history)
    rechecks: list[float] = []
    for _ in range(3):
        exporter.set("rg_error_ratio", 0.5, labels)
        breach = wait_until(
            evaluation("Breach", healthy["time"]), timeout=40, interval=0.05, describe=history
        )
        exporter.set("rg_error_ratio", 0.0, labels)
        healthy = wait_until(
            evaluation("Healthy", breach["time"]), timeout=40, interval=0.05, describe=history
        )
        rechecks.append((stamp(healthy["time"]) - stamp(breach["time"])).total_seconds())

    assert max(s["consecutiveBreaches"] for s in seen) == 1, history()
    assert {s["phase"] for s in seen} == {"Watching"}, history()
    status = objs.status("g")
    assert not status.get("incident"), status
    assert "BreachConfirmed" not in {e["reason"] for e in objs.events("g")}
    # Each re-check ran on the confirmation cadence (4 s), not the interval (8 s).
    assert all(gap < 6.5 for gap in rechecks), rechecks


def test_nan_gives_no_data(cluster, namespace, prometheus, exporter, run_operator):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    exporter.set("rg_error_ratio", float("nan"), {"guard": namespace})
    query = error_ratio_query(namespace)
    # Until the first scrape the query has no series, a different NoData; start once it is NaN.
    prometheus.wait_for(query, lambda result: result and result[0]["value"][1] == "NaN")
    objs.create_guard("g", guard_spec("app", query))
    run_operator(namespace)

    def no_data() -> dict | None:
        last = objs.status("g").get("lastEvaluation") or {}
        return last if last.get("verdict") == "NoData" else None

    last = wait_until(no_data, timeout=60, describe=lambda: objs.status("g"))
    assert last["metrics"][0]["verdict"] == "NoData"
    assert "NaN" in last["metrics"][0]["message"]
    status = objs.status("g")
    assert condition(status, "MetricsAvailable")["status"] == "False"
    assert status["phase"] == "Watching"


def test_absent_series_gives_no_data(cluster, namespace, run_operator):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    absent = f'sum(rg_never_exported_{uuid.uuid4().hex[:8]}{{guard="{namespace}"}})'
    objs.create_guard("g", guard_spec("app", absent, noData="Hold"))
    run_operator(namespace)

    def no_data() -> dict | None:
        last = objs.status("g").get("lastEvaluation") or {}
        return last if last.get("verdict") == "NoData" else None

    last = wait_until(no_data, timeout=60, describe=lambda: objs.status("g"))
    assert "no series" in last["metrics"][0]["message"]


def test_absent_series_breaches_under_no_data_breach(cluster, namespace, run_operator):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    absent = f'sum(rg_never_exported_{uuid.uuid4().hex[:8]}{{guard="{namespace}"}})'
    objs.create_guard("g", guard_spec("app", absent, noData="Breach"))
    run_operator(namespace)
    wait_until(
        lambda: objs.status("g").get("phase") == "Breaching",
        timeout=60,
        describe=lambda: objs.status("g"),
    )


def test_prometheus_stopped_holds_without_breaching(
    cluster, namespace, exporter, run_operator, private_prometheus
):
    """A Prometheus of the test's own, stopped mid-run: MetricsAvailable goes False and,
    under noData: Hold, the breach count holds and nothing is confirmed."""
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    prom = private_prometheus(exporter.port)
    exporter.set("rg_error_ratio", 0.5, {"guard": namespace})
    spec = guard_spec(
        "app",
        error_ratio_query(namespace),
        consecutiveBreaches=1000,
        prometheus={"url": prom.url, "timeoutSeconds": 1},
    )
    objs.create_guard("g", spec)
    run_operator(namespace, *EVERY_EVALUATION, *PRIVATE_PROMETHEUS_ALLOWED)
    wait_until(
        lambda: (objs.status("g").get("lastEvaluation") or {}).get("consecutiveBreaches", 0) >= 2,
        timeout=60,
        describe=lambda: objs.status("g"),
    )
    prom.stop()

    def unavailable(status: dict) -> bool:
        return condition(status, "MetricsAvailable").get("status") == "False"

    history_until(objs, "g", unavailable, timeout=30)
    held = objs.status("g")["lastEvaluation"]["consecutiveBreaches"]
    evaluations: dict[str, dict] = {}

    def three_more_evaluations(status: dict) -> bool:
        last = status.get("lastEvaluation") or {}
        evaluations[last["time"]] = {"count": last["consecutiveBreaches"], "phase": status["phase"]}
        return len(evaluations) >= 4

    history_until(objs, "g", three_more_evaluations, timeout=30)
    assert all(e == {"count": held, "phase": "Watching"} for e in evaluations.values()), evaluations
    status = objs.status("g")
    assert status["phase"] == "Watching"
    assert status["lastEvaluation"]["verdict"] == "NoData"
    assert status["lastEvaluation"]["consecutiveBreaches"] == held
    assert "unreachable" in condition(status, "MetricsAvailable")["message"]


def test_bad_promql_makes_the_guard_invalid(cluster, namespace, run_operator):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_guard("g", guard_spec("app", "sum(rate(http_requests_total[1m]"))
    run_operator(namespace)
    wait_until(
        lambda: objs.status("g").get("phase") == "Invalid",
        timeout=60,
        describe=lambda: objs.status("g"),
    )
    ready = condition(objs.status("g"), "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "BadQuery"
    assert "error-rate" in ready["message"]
    assert "rejected the query" in ready["message"]


def test_several_series_make_the_guard_invalid(cluster, namespace, exporter, run_operator):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    exporter.set("rg_error_ratio", 0.01, {"guard": namespace, "pod": "a"})
    exporter.set("rg_error_ratio", 0.02, {"guard": namespace, "pod": "b"})
    objs.create_guard("g", guard_spec("app", f'rg_error_ratio{{guard="{namespace}"}}'))
    run_operator(namespace)
    wait_until(
        lambda: objs.status("g").get("phase") == "Invalid",
        timeout=60,
        describe=lambda: objs.status("g"),
    )
    assert "must return one number" in condition(objs.status("g"), "Ready")["message"]


def test_missing_target_makes_the_guard_invalid_and_others_keep_working(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    exporter.set("rg_error_ratio", 0.0, {"guard": namespace})
    objs.create_guard("missing", guard_spec("no-such-app", error_ratio_query(namespace)))
    objs.create_guard("fine", guard_spec("app", error_ratio_query(namespace)))
    run_operator(namespace)
    wait_until(
        lambda: objs.status("missing").get("phase") == "Invalid",
        timeout=60,
        describe=lambda: objs.status("missing"),
    )
    ready = condition(objs.status("missing"), "Ready")
    assert "Deployment no-such-app not found" in ready["message"]
    wait_until(
        lambda: (objs.status("fine").get("lastEvaluation") or {}).get("verdict") == "Healthy",
        timeout=60,
        describe=lambda: objs.status("fine"),
    )
    assert objs.status("fine")["phase"] == "Watching"
    objs.wait_event("missing", "Invalid")


def test_suspended_guard_is_not_evaluated(cluster, namespace, exporter, run_operator):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    exporter.set("rg_error_ratio", 0.9, {"guard": namespace})
    objs.create_guard("g", guard_spec("app", error_ratio_query(namespace), suspend=True))
    run_operator(namespace)
    wait_until(
        lambda: objs.status("g").get("phase") == "Suspended",
        timeout=60,
        describe=lambda: objs.status("g"),
    )
    assert "lastEvaluation" not in objs.status("g")
    objs.patch_guard("g", {"spec": {"suspend": False}})
    wait_until(
        lambda: objs.status("g").get("phase") == "Breaching",
        timeout=60,
        describe=lambda: objs.status("g"),
    )


def test_bearer_token_secret_is_read_from_the_guards_namespace(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    exporter.set("rg_error_ratio", 0.0, {"guard": namespace})
    ref = {"bearerTokenSecretRef": {"name": "prom-token", "key": "token"}}
    objs.create_guard("g", guard_spec("app", error_ratio_query(namespace), prometheus=ref))
    run_operator(namespace)
    wait_until(
        lambda: objs.status("g").get("phase") == "Invalid",
        timeout=60,
        describe=lambda: objs.status("g"),
    )
    assert "Secret prom-token not found" in condition(objs.status("g"), "Ready")["message"]

    labels = {"releaseguard.io/usable-by-guards": "true"}
    objs.core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "prom-token", "labels": labels}, "stringData": {"token": "t0ken"}},
    )
    wait_until(
        lambda: (
            (objs.status("g").get("lastEvaluation") or {}).get("verdict") == "Healthy"
            and objs.status("g")["phase"] == "Watching"
        ),
        timeout=60,
        describe=lambda: objs.status("g"),
    )


def test_a_hung_prometheus_does_not_stall_other_guards(
    cluster, namespace, exporter, run_operator, private_prometheus
):
    """Twelve guards whose Prometheus hangs (SIGSTOP: connections accepted, never answered)
    each hold an evaluation thread for their whole timeout; a guard on a healthy
    Prometheus must still be evaluated every interval."""
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    exporter.set("rg_error_ratio", 0.0, {"guard": namespace})
    hung = private_prometheus(exporter.port)
    hung.freeze()
    query = error_ratio_query(namespace)
    for i in range(12):
        objs.create_guard(
            f"hung-{i}", guard_spec("app", query, prometheus={"url": hung.url, "timeoutSeconds": 5})
        )
    objs.create_guard("healthy", guard_spec("app", query))
    run_operator(namespace, *EVERY_EVALUATION, *PRIVATE_PROMETHEUS_ALLOWED)

    times: set[str] = set()

    def five_evaluations() -> bool:
        last = objs.status("healthy").get("lastEvaluation") or {}
        if last.get("verdict") == "Healthy":
            times.add(last["time"])
        return len(times) >= 5

    started = time.monotonic()
    wait_until(five_evaluations, timeout=30, interval=0.1, describe=lambda: sorted(times))
    # Interval 1 s: five evaluations in well under one hung query's 5 s timeout each.
    assert time.monotonic() - started < 15
    timed_out = wait_until(
        lambda: (objs.status("hung-0").get("lastEvaluation") or {}).get("metrics"),
        timeout=30,
        describe=lambda: objs.status("hung-0"),
    )
    assert timed_out[0]["verdict"] == "NoData"
    assert "timed out" in timed_out[0]["message"]
