"""A misbehaving Prometheus (tests/hostile_server.py) beside the real one: the guards that
query it get NoData with a reason, while a healthy guard keeps its schedule and the
operator's memory stays bounded. Also: the timeoutSeconds ceiling in the CRD, and a
binary bearer token."""

from __future__ import annotations

import base64
import itertools
import time
from datetime import datetime
from typing import Any

import pytest
from kubernetes import client as k8s
from objects import Objects, condition

from devcluster.launch import EVERY_EVALUATION
from hostile_server import HostileServer
from waiting import wait_until

HOSTILE_ALLOWED = ("--allowed-url", r"^http://127\.0\.0\.1:[0-9]+/")
RSS_LIMIT_MB = 300
WATCH_SECONDS = 15
# Two guards of 17 metrics each on the hostile server, as in the report of issue 11.
HOSTILE_GUARDS, HOSTILE_METRICS = 2, 17


@pytest.fixture(scope="module")
def hostile():
    with HostileServer(trickle_interval=1.0) as server:
        yield server


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def spec(query: str, **extra: Any) -> dict[str, Any]:
    return {
        "target": {"deployment": "app"},
        "intervalSeconds": 1,
        "consecutiveBreaches": 2,
        "metrics": [{"name": "error-rate", "query": query, "max": 0.1}],
        **extra,
    }


@pytest.mark.parametrize(
    ("mode", "fragment"),
    [
        ("trickle", "timed out"),
        ("huge", "response too large"),
        ("gzip-bomb", "response too large"),
        ("garbage", "malformed answer"),
        ("status-error", "Prometheus error: xxx"),
    ],
)
def test_a_hostile_prometheus_costs_other_guards_nothing(
    cluster, namespace, exporter, run_operator, hostile, mode, fragment
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    exporter.set("rg_error_ratio", 0.0, {"guard": namespace})
    for g in range(HOSTILE_GUARDS):
        metrics = [{"name": f"m{i}", "query": "up", "max": 1} for i in range(HOSTILE_METRICS)]
        objs.create_guard(
            f"hostile-{g}",
            {
                **spec("up", prometheus={"url": hostile.url(mode), "timeoutSeconds": 5}),
                "metrics": metrics,
            },
        )
    objs.create_guard("healthy", spec(f'max(rg_error_ratio{{guard="{namespace}"}})'))
    operator = run_operator(namespace, *EVERY_EVALUATION, *HOSTILE_ALLOWED)

    times: list[str] = []
    rss: list[float] = []

    def watch() -> bool:
        rss.append(rss_mb(operator.pid))
        last = objs.status("healthy").get("lastEvaluation") or {}
        if last.get("verdict") == "Healthy" and (not times or last["time"] != times[-1]):
            times.append(last["time"])
        return False

    def first() -> bool:
        watch()
        return bool(times)

    wait_until(first, timeout=30, interval=0.2, describe=lambda: objs.status("healthy"))
    started = time.monotonic()
    while time.monotonic() - started < WATCH_SECONDS:
        watch()
        time.sleep(0.2)  # a sampling period (RSS, evaluation times), not a wait for a state

    stamps = [datetime.fromisoformat(t).timestamp() for t in times]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    hostile_status = objs.status("hostile-0")
    print(
        f"{mode}: healthy evaluations {len(times)} in {WATCH_SECONDS}s, max gap "
        f"{max(gaps):.2f}s, operator RSS max {max(rss):.0f} MB"
    )
    # intervalSeconds 1: ~15 evaluations; before issue 11, none for 40 s.
    assert len(times) >= WATCH_SECONDS * 0.6, times
    assert max(gaps) <= 2.5, times  # intervalSeconds 1: lateness under 1.5 s
    assert max(rss) < RSS_LIMIT_MB, rss
    metrics = (hostile_status.get("lastEvaluation") or {}).get("metrics") or []
    assert metrics, hostile_status
    assert all(m["verdict"] == "NoData" for m in metrics), metrics
    assert fragment in metrics[0]["message"], metrics[0]
    assert len(metrics[0]["message"]) < 1024
    assert hostile_status["phase"] != "Invalid", hostile_status
    assert operator.alive()


def test_the_crd_rejects_a_timeout_over_the_interval(cluster, namespace):
    objs = Objects(cluster.api, namespace)
    with pytest.raises(k8s.ApiException) as rejected:
        objs.create_guard("g", spec("up", prometheus={"timeoutSeconds": 60}))
    assert rejected.value.status == 422
    assert "must not exceed intervalSeconds" in rejected.value.body

    objs.create_guard("ok", spec("up", intervalSeconds=30, prometheus={"timeoutSeconds": 30}))
    objs.create_guard("small", spec("up", prometheus={"timeoutSeconds": 5}))


def test_a_binary_bearer_token_makes_the_guard_invalid_not_stuck(
    cluster, namespace, run_operator, hostile
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    k8s.CoreV1Api(cluster.api).create_namespaced_secret(
        namespace,
        k8s.V1Secret(
            metadata=k8s.V1ObjectMeta(
                name="token", labels={"releaseguard.io/usable-by-guards": "true"}
            ),
            data={"token": base64.b64encode(b"\xff\xfe\x00binary").decode()},
        ),
    )
    objs.create_guard(
        "g",
        spec(
            "up",
            prometheus={
                "url": hostile.url("ok"),
                "bearerTokenSecretRef": {"name": "token", "key": "token"},
            },
        ),
    )
    run_operator(namespace, *EVERY_EVALUATION, *HOSTILE_ALLOWED)

    status = wait_until(
        lambda: (s := objs.status("g")).get("phase") == "Invalid" and s,
        timeout=30,
        describe=lambda: objs.status("g"),
    )
    assert "is not a bearer token" in status["message"]
    assert condition(status, "Ready")["reason"] == "InvalidToken"
