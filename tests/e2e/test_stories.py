"""The incident stories, end to end on real parts: the traffic simulator follows the
cluster's live routing state, Prometheus scrapes it, the operator detects and contains,
and the damage (as Prometheus sees it) actually goes down."""

from __future__ import annotations

import json
from typing import Any

from objects import Objects, deployment_available
from waiting import wait_until

WINDOW = "5s"  # rate() window: >= 4 x the 1 s scrape interval


def error_ratio(namespace: str, version: str | None = None) -> str:
    v = f',version="{version}"' if version else ""
    sel = f'namespace="{namespace}",app="checkout"{v}'
    return (
        f'sum(rate(http_requests_total{{{sel},code="500"}}[{WINDOW}]))'
        f" / sum(rate(http_requests_total{{{sel}}}[{WINDOW}]))"
    )


def canary_app(objs: Objects) -> None:
    for version, replicas in (("v1", 2), ("v2", 1)):
        objs.create_deployment(
            f"checkout-{version}",
            f"registry.local/checkout:{version}",
            replicas=replicas,
            labels={"app": "checkout", "version": version},
        )
        objs.create_service(f"checkout-{version}", {"app": "checkout", "version": version})
    objs.create_http_route("checkout", {"checkout-v1": 90, "checkout-v2": 10})
    for version in ("v1", "v2"):
        wait_until(
            lambda v=version: deployment_available(objs.deployment(f"checkout-{v}")),
            timeout=60,
            describe=f"checkout-{version} Available",
        )


def value(prometheus: Any, promql: str) -> float | None:
    result = prometheus.query(promql)
    if not result:
        return None
    number = float(result[0]["value"][1])
    return None if number != number else number


def status_dump(objs: Objects, name: str) -> str:
    return json.dumps(objs.status(name), indent=1)[-3000:]


def test_canary_checkout_errors_move_weight_off_the_canary_and_errors_recover(
    cluster, namespace, prometheus, traffic, run_operator
):
    objs = Objects(cluster.api, namespace)
    canary_app(objs)
    sim = traffic(namespace, "checkout", http_route="checkout", rate=200)
    overall = error_ratio(namespace)
    prometheus.wait_for(overall, lambda r: r and float(r[0]["value"][1]) == 0.0, timeout=30)
    objs.create_guard(
        "checkout",
        {
            "target": {"deployment": "checkout-v2"},
            "intervalSeconds": 1,
            "consecutiveBreaches": 2,
            "metrics": [{"name": "error-rate", "query": overall, "max": 0.02}],
            "steps": [
                {
                    "type": "CanaryWeight",
                    "canaryWeight": {"httpRoute": "checkout", "canaryBackend": "checkout-v2"},
                }
            ],
        },
    )
    run_operator(namespace)
    wait_until(
        lambda: (objs.status("checkout").get("lastEvaluation") or {}).get("verdict") == "Healthy",
        timeout=60,
        describe=lambda: status_dump(objs, "checkout"),
    )

    sim.set_profile("v2", error_ratio=0.5)
    prometheus.wait_for(overall, lambda r: r and float(r[0]["value"][1]) > 0.02, timeout=30)

    status = wait_until(
        lambda: (s := objs.status("checkout")).get("phase") == "Contained" and s,
        timeout=60,
        describe=lambda: status_dump(objs, "checkout"),
    )
    refs = objs.http_route("checkout")["spec"]["rules"][0]["backendRefs"]
    assert {r["name"]: r["weight"] for r in refs} == {"checkout-v1": 100, "checkout-v2": 0}
    wait_until(
        lambda: sim.last_split.get("v2", 0) == 0, timeout=10, describe=lambda: sim.last_split
    )
    prometheus.wait_for(overall, lambda r: r and float(r[0]["value"][1]) < 0.001, timeout=30)
    recovered = wait_until(
        lambda: (objs.status("checkout").get("incident") or {}).get("recoveredAt"),
        timeout=30,
        describe=lambda: status_dump(objs, "checkout"),
    )
    assert recovered
    status = objs.status("checkout")
    assert status["phase"] == "Contained"
    (action,) = status["actions"]
    assert action["type"] == "CanaryWeight" and action["result"] == "Applied"
    assert "error-rate" in action["reason"]
    assert status["incident"]["timeToContainSeconds"] < 15
