"""The incident stories, end to end on real parts: the traffic simulator follows the
cluster's live routing state, Prometheus scrapes it, the operator detects and contains,
and the damage (as Prometheus sees it) actually goes down."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import requests
from objects import Objects, condition, deployment_available

from waiting import wait_until

WINDOW = "5s"  # rate() window: >= 4 x the 1 s scrape interval


def error_ratio(namespace: str, version: str | None = None, app: str = "checkout") -> str:
    v = f',version="{version}"' if version else ""
    sel = f'namespace="{namespace}",app="{app}"{v}'
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


def value_at(prometheus: Any, promql: str, at: datetime) -> float | None:
    """The query's value as Prometheus saw it at ``at`` (an instant query in the past)."""
    response = requests.get(
        f"{prometheus.url}/api/v1/query",
        params={"query": promql, "time": at.timestamp()},
        timeout=10,
    )
    result = response.json()["data"]["result"]
    if not result:
        return None
    number = float(result[0]["value"][1])
    return None if number != number else number


def status_dump(objs: Objects, name: str) -> str:
    return json.dumps(objs.status(name), indent=1)[-3000:]


def wait_status(
    objs: Objects, name: str, ok: Callable[[dict[str, Any]], object], timeout: float = 60
) -> dict[str, Any]:
    """Poll the guard's status until ``ok(status)`` holds; return that status."""
    return wait_until(
        lambda: (s := objs.status(name)) and ok(s) and s,
        timeout=timeout,
        describe=lambda: status_dump(objs, name),
    )


def verdict(status: dict[str, Any]) -> str | None:
    return (status.get("lastEvaluation") or {}).get("verdict")


def at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def below(limit: float) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda r: bool(r) and float(r[0]["value"][1]) < limit


def above(limit: float) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda r: bool(r) and float(r[0]["value"][1]) > limit


def flags_step(config_map: str = "checkout-flags") -> dict[str, Any]:
    return {
        "type": "FeatureFlag",
        "featureFlag": {"configMap": config_map, "key": "new-checkout-flow", "value": "false"},
    }


CANARY_STEP = {
    "type": "CanaryWeight",
    "canaryWeight": {"httpRoute": "checkout", "canaryBackend": "checkout-v2"},
}


def error_rate(query: str, bound: float = 0.02) -> dict[str, Any]:
    return {"name": "error-rate", "query": query, "max": bound}


def story_guard(
    target: str, metrics: list[dict[str, Any]], steps: list[dict[str, Any]], **fields: Any
) -> dict[str, Any]:
    """A guard on Deployment `target`, evaluated every second, confirming a breach after
    two breaching evaluations unless `fields` say otherwise."""
    return {
        "target": {"deployment": target},
        "intervalSeconds": 1,
        "consecutiveBreaches": 2,
        "metrics": metrics,
        "steps": steps,
        **fields,
    }


def route_weights(objs: Objects, name: str = "checkout") -> dict[str, int]:
    refs = objs.http_route(name)["spec"]["rules"][0]["backendRefs"]
    return {r["name"]: r["weight"] for r in refs}


def web_app(objs: Objects, replicas: int = 2, min_ready_seconds: int = 0) -> None:
    """A plain Deployment `web` (no version label: the simulator uses the image tag)."""
    objs.create_deployment("web", "registry.local/web:1", replicas=replicas)
    if min_ready_seconds:
        objs.patch_deployment("web", {"spec": {"minReadySeconds": min_ready_seconds}})
    objs.create_service("web", {"app": "web"})
    wait_until(
        lambda: deployment_available(objs.deployment("web")), timeout=60, describe="web Available"
    )


def roll_out(objs: Objects, name: str, image: str) -> None:
    objs.set_image(name, image)
    wait_until(
        lambda: (
            deployment_available(d := objs.deployment(name))
            and d["spec"]["template"]["spec"]["containers"][0]["image"] == image
        ),
        timeout=60,
        describe=f"{name} rolled out to {image}",
    )


def run_migration(objs: Objects, name: str) -> dict[str, Any]:
    objs.create_job(name)
    return wait_until(
        lambda: ((j := objs.job(name)).get("status") or {}).get("succeeded") and j,
        timeout=60,
        describe=lambda: objs.job(name).get("status"),
    )


def pods_ready(pods: list[dict[str, Any]]) -> bool:
    return all(
        any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (p.get("status") or {}).get("conditions", [])
        )
        for p in pods
    )


def error_free_traffic(
    traffic: Any, prometheus: Any, namespace: str, app: str = "checkout", **routing: Any
) -> tuple[Any, str]:
    """Start the simulator (200 req/s) and wait until Prometheus sees its error ratio at
    0; return the simulator and that query."""
    sim = traffic(namespace, app, rate=200, **routing)
    overall = error_ratio(namespace, app=app)
    prometheus.wait_for(overall, lambda r: r and float(r[0]["value"][1]) == 0.0, timeout=30)
    return sim, overall


def test_canary_checkout_errors_move_weight_off_the_canary_and_errors_recover(
    cluster, namespace, prometheus, traffic, run_operator
):
    objs = Objects(cluster.api, namespace)
    canary_app(objs)
    sim, overall = error_free_traffic(traffic, prometheus, namespace, http_route="checkout")
    objs.create_guard("checkout", story_guard("checkout-v2", [error_rate(overall)], [CANARY_STEP]))
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


def p99_latency(namespace: str, app: str) -> str:
    sel = f'namespace="{namespace}",app="{app}"'
    return (
        "histogram_quantile(0.99, sum by (le) "
        f"(rate(http_request_duration_seconds_bucket{{{sel}}}[{WINDOW}])))"
    )


def test_blue_green_latency_regression_points_the_service_back_at_blue_and_p99_recovers(
    cluster, namespace, prometheus, traffic, run_operator
):
    objs = Objects(cluster.api, namespace)
    for color, tag in (("blue", "1"), ("green", "2")):
        objs.create_deployment(
            f"shop-{color}",
            f"registry.local/shop:{tag}",
            replicas=2,
            labels={"app": "shop", "version": color, "color": color},
        )
    objs.create_service("shop", {"app": "shop", "color": "green"})  # green is the new release
    for color in ("blue", "green"):
        wait_until(
            lambda c=color: deployment_available(objs.deployment(f"shop-{c}")),
            timeout=60,
            describe=f"shop-{color} Available",
        )
    sim = traffic(namespace, "shop", service="shop", rate=200)
    wait_until(
        lambda: set(sim.last_split) == {"green"}, timeout=10, describe=lambda: sim.last_split
    )
    p99 = p99_latency(namespace, "shop")
    prometheus.wait_for(p99, below(0.2), timeout=30)
    blue = {"service": "shop", "selectorKey": "color", "stableValue": "blue"}
    objs.create_guard(
        "shop",
        story_guard(
            "shop-green",
            [{"name": "p99-latency", "query": p99, "max": 0.2}],
            [{"type": "BlueGreen", "blueGreen": blue}],
        ),
    )
    run_operator(namespace)
    wait_status(objs, "shop", lambda s: verdict(s) == "Healthy")

    sim.set_profile("green", latency_seconds=1.0)
    prometheus.wait_for(p99, above(0.2), timeout=30)

    status = wait_status(objs, "shop", lambda s: s.get("phase") == "Contained")
    assert objs.service("shop")["spec"]["selector"] == {"app": "shop", "color": "blue"}
    wait_until(lambda: set(sim.last_split) == {"blue"}, timeout=10, describe=lambda: sim.last_split)
    prometheus.wait_for(p99, below(0.2), timeout=30)
    status = wait_status(objs, "shop", lambda s: (s.get("incident") or {}).get("recoveredAt"))
    assert status["phase"] == "Contained"
    (action,) = status["actions"]
    assert (action["type"], action["result"]) == ("BlueGreen", "Applied")
    assert action["target"] == "Service/shop"
    assert (action["before"], action["after"]) == ({"color": "green"}, {"color": "blue"})
    assert "p99-latency" in action["reason"]
    incident = status["incident"]
    assert at(incident["recoveredAt"]) > at(incident["containedAt"])
    # Both colours are still there: the guard moved traffic, it did not delete the release.
    assert objs.deployment("shop-green")["spec"]["replicas"] == 2


def test_plain_deployment_bad_image_is_rolled_back_to_the_last_known_good_and_errors_recover(
    cluster, namespace, prometheus, traffic, run_operator
):
    objs = Objects(cluster.api, namespace)
    # minReadySeconds: a new pod serves traffic at once but counts as available 2 s later,
    # so the rollout takes a few seconds, as real ones do.
    web_app(objs, replicas=3, min_ready_seconds=2)
    sim, overall = error_free_traffic(traffic, prometheus, namespace, app="web", service="web")
    objs.create_guard(
        "web",
        story_guard("web", [error_rate(overall)], [{"type": "Rollback"}], knownGoodAfterSeconds=3),
    )
    run_operator(namespace)
    good = wait_status(objs, "web", lambda s: s.get("lastKnownGood"))["lastKnownGood"]
    assert (good["revision"], good["images"]) == ("1", ["registry.local/web:1"])

    # Release 2 is bad from its first request: version "2" (the image tag, there is no
    # version label) fails half its requests. Set before the rollout, so the bad release
    # serves errors as soon as its first pod is Ready.
    sim.set_profile("2", error_ratio=0.5)
    objs.set_image("web", "registry.local/web:2")
    release = wait_status(objs, "web", lambda s: (s.get("release") or {}).get("revision") == "2")
    # Mid-rollout the Deployment is Available on its old pods: that proves nothing about
    # release 2, so its known-good clock has not started.
    assert not deployment_available(objs.deployment("web"))
    assert "healthySince" not in release["release"], release["release"]
    prometheus.wait_for(overall, above(0.02), timeout=30)

    status = wait_status(objs, "web", lambda s: s.get("phase") == "Contained")
    (action,) = status["actions"]
    assert (action["type"], action["result"]) == ("Rollback", "Applied")
    assert action["target"] == "Deployment/web"
    assert action["before"]["images"] == ["registry.local/web:2"]
    assert action["after"]["images"] == ["registry.local/web:1"]
    assert action["after"]["revision"] == "1"
    assert "error-rate" in action["reason"]

    def rolled_back() -> bool:
        pods = objs.pods("app=web")
        images = {p["spec"]["containers"][0]["image"] for p in pods}
        return (
            deployment_available(objs.deployment("web"))
            and images == {"registry.local/web:1"}
            and len(pods) == 3
            and pods_ready(pods)
        )

    wait_until(rolled_back, timeout=60, describe=lambda: objs.pods("app=web"))
    wait_until(lambda: set(sim.last_split) == {"1"}, timeout=10, describe=lambda: sim.last_split)
    prometheus.wait_for(overall, below(0.001), timeout=30)
    status = wait_status(objs, "web", lambda s: (s.get("incident") or {}).get("recoveredAt"))
    # The guard's own rollback (revision 3) is not a new release: still Contained, one action.
    assert status["phase"] == "Contained"
    assert [a["type"] for a in status["actions"]] == ["Rollback"]
    assert status["lastKnownGood"]["images"] == ["registry.local/web:1"]


def test_conversion_drop_alone_turns_the_feature_flag_off(
    cluster, namespace, prometheus, traffic, run_operator
):
    objs = Objects(cluster.api, namespace)
    canary_app(objs)
    objs.create_config_map("checkout-flags", {"new-checkout-flow": "true"})
    sim = traffic(namespace, "checkout", http_route="checkout", rate=400)
    overall = error_ratio(namespace)
    canary = f'namespace="{namespace}",app="checkout",version="v2"'
    conversion = (
        f"sum(rate(checkout_completed_total{{{canary}}}[10s]))"
        f" / sum(rate(checkout_started_total{{{canary}}}[10s]))"
    )
    prometheus.wait_for(conversion, above(0.05), timeout=30)
    objs.create_guard(
        "checkout",
        story_guard(
            "checkout-v2",
            [error_rate(overall, 0.05), {"name": "conversion", "query": conversion, "min": 0.05}],
            [CANARY_STEP, flags_step()],
            escalateAfterSeconds=300,
        ),
    )
    run_operator(namespace)
    wait_status(objs, "checkout", lambda s: verdict(s) == "Healthy")

    # The canary stops completing checkouts; it serves every request without an error.
    sim.set_profile("v2", conversion=0.0)
    prometheus.wait_for(conversion, below(0.05), timeout=30)

    status = wait_status(objs, "checkout", lambda s: s.get("phase") == "Contained")
    (action,) = status["actions"]
    assert (action["type"], action["result"]) == ("FeatureFlag", "Applied")
    assert action["target"] == "ConfigMap/checkout-flags"
    assert (action["before"], action["after"]) == (
        {"new-checkout-flow": "true"},
        {"new-checkout-flow": "false"},
    )
    assert action["reason"].startswith("conversion ") and "< 0.05" in action["reason"]
    assert "error-rate" not in action["reason"]
    metrics = {m["name"]: m for m in status["lastEvaluation"]["metrics"]}
    assert metrics["error-rate"]["verdict"] == "Pass" and metrics["error-rate"]["value"] == 0
    assert metrics["conversion"]["verdict"] == "Breach"
    assert objs.config_map("checkout-flags")["data"] == {"new-checkout-flow": "false"}

    # The simulator does not read the flag, so conversion stays down; escalation is far
    # away (300 s), so a few more breaching evaluations change nothing else.
    later = wait_status(
        objs,
        "checkout",
        lambda s: (at(s["lastEvaluation"]["time"]) - at(action["time"])).total_seconds() >= 3,
    )
    assert verdict(later) == "Breach" and later["phase"] == "Contained"
    assert [a["id"] for a in later["actions"]] == [action["id"]] == ["1-featureflag-1"]
    assert route_weights(objs) == {"checkout-v1": 90, "checkout-v2": 10}


def test_migration_already_ran_refuses_rollback_and_contains_with_flag_then_canary_weight(
    cluster, namespace, prometheus, traffic, run_operator
):
    objs = Objects(cluster.api, namespace)
    canary_app(objs)
    objs.create_config_map("checkout-flags", {"new-checkout-flow": "true"})
    # checkout-v2 gets a second revision, so Rollback (toRevision Previous) has somewhere
    # to go; then its schema migration runs: rolling back the image would not undo it.
    roll_out(objs, "checkout-v2", "registry.local/checkout:v2.1")
    job = run_migration(objs, "checkout-migrate-v2")
    (current,) = [
        rs
        for rs in objs.replica_sets("checkout")
        if rs["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v2.1")
    ]
    assert job["status"]["completionTime"] >= current["metadata"]["creationTimestamp"]

    sim, overall = error_free_traffic(traffic, prometheus, namespace, http_route="checkout")
    objs.create_guard(
        "checkout",
        story_guard(
            "checkout-v2",
            [error_rate(overall)],
            # Rollback is the team's first choice here (cost 5), if it were possible.
            [
                {"type": "Rollback", "rollback": {"toRevision": "Previous"}, "cost": 5},
                flags_step(),
                CANARY_STEP,
            ],
            escalateAfterSeconds=3,
            irreversibleChanges={"jobs": ["checkout-migrate-v2"]},
        ),
    )
    run_operator(namespace)
    status = wait_status(objs, "checkout", lambda s: verdict(s) == "Healthy")
    refused = "rollback refused: Job checkout-migrate-v2 succeeded: state changed"
    readiness = {r["type"]: r for r in status["readiness"]}
    assert readiness["Rollback"] == {
        "type": "Rollback",
        "index": 0,
        "ready": False,
        "code": "StateChanged",
        "reason": refused,
    }
    assert readiness["FeatureFlag"]["ready"] and readiness["CanaryWeight"]["ready"]
    rollback_ready = condition(status, "RollbackReady")
    assert (rollback_ready["status"], rollback_ready["reason"]) == ("False", "StateChanged")
    warnings = objs.wait_event("checkout", "RollbackRefused")
    assert warnings[0]["type"] == "Warning" and refused in warnings[0]["message"]

    sim.set_profile("v2", error_ratio=0.5)
    prometheus.wait_for(overall, above(0.02), timeout=30)

    status = wait_status(objs, "checkout", lambda s: len(s.get("actions") or []) >= 2)
    flag, weight = status["actions"]
    assert [flag["type"], weight["type"]] == ["FeatureFlag", "CanaryWeight"]
    assert flag["result"] == weight["result"] == "Applied"
    assert (at(weight["time"]) - at(flag["time"])).total_seconds() >= 3
    assert objs.config_map("checkout-flags")["data"] == {"new-checkout-flow": "false"}
    assert route_weights(objs) == {"checkout-v1": 100, "checkout-v2": 0}
    wait_until(
        lambda: sim.last_split.get("v2", 0) == 0, timeout=10, describe=lambda: sim.last_split
    )
    prometheus.wait_for(overall, below(0.001), timeout=30)
    status = wait_status(objs, "checkout", lambda s: (s.get("incident") or {}).get("recoveredAt"))
    assert at(status["incident"]["recoveredAt"]) > at(weight["time"])
    assert status["phase"] == "Contained"
    assert [a["type"] for a in status["actions"]] == ["FeatureFlag", "CanaryWeight"]
    # The refused rollback was never attempted: the image is the migrated release's.
    dep = objs.deployment("checkout-v2")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "registry.local/checkout:v2.1"
    )


def test_migration_already_ran_and_the_flag_does_not_help_ends_exhausted(
    cluster, namespace, prometheus, traffic, run_operator
):
    objs = Objects(cluster.api, namespace)
    web_app(objs)
    objs.create_config_map("web-flags", {"new-checkout-flow": "true"})
    sim = traffic(namespace, "web", service="web", rate=200)
    sim.set_profile("2", error_ratio=0.5)  # release 2 is bad
    roll_out(objs, "web", "registry.local/web:2")
    run_migration(objs, "web-migrate-2")
    overall = error_ratio(namespace, app="web")
    prometheus.wait_for(overall, above(0.02), timeout=30)
    objs.create_guard(
        "web",
        story_guard(
            "web",
            [error_rate(overall)],
            [{"type": "Rollback", "rollback": {"toRevision": "Previous"}}, flags_step("web-flags")],
            escalateAfterSeconds=3,
            irreversibleChanges={"jobs": ["web-migrate-2"]},
        ),
    )
    run_operator(namespace)

    status = wait_status(objs, "web", lambda s: s.get("phase") == "Exhausted")
    (action,) = status["actions"]
    assert (action["type"], action["result"]) == ("FeatureFlag", "Applied")
    assert objs.config_map("web-flags")["data"] == {"new-checkout-flow": "false"}
    message = status["message"]
    assert message.startswith("no applicable step left")
    assert "Rollback[0]: rollback refused: Job web-migrate-2 succeeded: state changed" in message
    assert "FeatureFlag[1]: already taken in this incident" in message
    # The flag got its escalateAfterSeconds to help before the ladder was declared empty.
    waited = at(status["lastEvaluation"]["time"]) - at(action["time"])
    assert waited.total_seconds() >= 3
    # Events are posted after the status write: wait for them.
    wanted = {("Warning", "RollbackRefused"), ("Warning", "Exhausted")}
    wait_until(
        lambda: wanted <= {(e["type"], e["reason"]) for e in objs.events("web")},
        timeout=30,
        describe=lambda: [(e["type"], e["reason"]) for e in objs.events("web")],
    )
    # Nothing was rolled back and the damage goes on: a human has to decide now.
    dep = objs.deployment("web")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/web:2"
    assert (value(prometheus, overall) or 0) > 0.02
    assert not (status.get("incident") or {}).get("recoveredAt")


def test_escalation_when_the_flag_does_not_stop_the_errors_the_canary_weight_does(
    cluster, namespace, prometheus, traffic, run_operator
):
    objs = Objects(cluster.api, namespace)
    canary_app(objs)
    objs.create_config_map("checkout-flags", {"new-checkout-flow": "true"})
    sim, overall = error_free_traffic(traffic, prometheus, namespace, http_route="checkout")
    objs.create_guard(
        "checkout",
        story_guard(
            "checkout-v2",
            [error_rate(overall)],
            [CANARY_STEP, flags_step()],
            escalateAfterSeconds=3,
        ),
    )
    run_operator(namespace)
    wait_status(objs, "checkout", lambda s: verdict(s) == "Healthy")

    # The bug is not behind the flag: turning it off (the simulator ignores it) changes nothing.
    sim.set_profile("v2", error_ratio=0.5)
    prometheus.wait_for(overall, above(0.02), timeout=30)

    status = wait_status(objs, "checkout", lambda s: len(s.get("actions") or []) >= 2)
    flag, weight = status["actions"]
    assert [flag["id"], weight["id"]] == ["1-featureflag-1", "1-canaryweight-0"]
    assert flag["result"] == weight["result"] == "Applied"
    gap = (at(weight["time"]) - at(flag["time"])).total_seconds()
    assert gap >= 3, gap
    assert "error-rate" in weight["reason"]
    # Still failing when the guard escalated: the flag did not help ...
    assert (value_at(prometheus, overall, at(weight["time"])) or 0) > 0.02
    # ... and the canary weight does.
    assert route_weights(objs) == {"checkout-v1": 100, "checkout-v2": 0}
    prometheus.wait_for(overall, below(0.001), timeout=30)
    status = wait_status(objs, "checkout", lambda s: (s.get("incident") or {}).get("recoveredAt"))
    assert at(status["incident"]["recoveredAt"]) > at(weight["time"])
    assert status["phase"] == "Contained"
    assert [a["id"] for a in status["actions"]] == [flag["id"], weight["id"]]
    assert status["incident"]["containedAt"] == flag["time"]


def test_noise_single_spikes_near_the_bound_never_confirm_a_breach(
    cluster, namespace, prometheus, traffic, run_operator
):
    """A metric hovering near its bound with one-evaluation spikes: counted, never acted on.

    The guard's query has a short memory (irate: the last scrape interval), or one spike
    would stay in a rate() window for several evaluations and would not be "single".
    Baseline 1% errors, bound 2%, spikes to 2.5%: a scrape interval breaches only if the
    spike covers more than 2/3 of it, so the spike's tail after the reset cannot breach a
    third evaluation.
    """
    objs = Objects(cluster.api, namespace)
    web_app(objs)
    sim = traffic(namespace, "web", service="web", rate=1000)
    sim.set_profile("1", error_ratio=0.01)
    sel = f'namespace="{namespace}",app="web"'
    noisy = (
        f'sum(irate(http_requests_total{{{sel},code="500"}}[{WINDOW}]))'
        f" / sum(irate(http_requests_total{{{sel}}}[{WINDOW}]))"
    )
    prometheus.wait_for(noisy, lambda r: r and 0.005 < float(r[0]["value"][1]) < 0.015)
    scale_down = {"type": "Scale", "scale": {"deployment": "web", "replicas": 0}}
    objs.create_guard(
        "web", story_guard("web", [error_rate(noisy)], [scale_down], consecutiveBreaches=3)
    )
    run_operator(namespace)
    wait_status(objs, "web", lambda s: verdict(s) == "Healthy")

    seen: list[dict[str, Any]] = []

    def count(status: dict[str, Any]) -> int:
        seen.append(status)
        return (status.get("lastEvaluation") or {}).get("consecutiveBreaches", 0)

    for _ in range(3):
        sim.set_profile("1", error_ratio=0.025)
        wait_until(
            lambda: count(objs.status("web")) >= 1,
            timeout=30,
            interval=0.05,
            describe=lambda: status_dump(objs, "web"),
        )
        sim.set_profile("1", error_ratio=0.01)
        wait_until(
            lambda: count(objs.status("web")) == 0,
            timeout=30,
            interval=0.05,
            describe=lambda: status_dump(objs, "web"),
        )

    counts = [(s.get("lastEvaluation") or {}).get("consecutiveBreaches", 0) for s in seen]
    assert max(counts) in (1, 2), counts
    assert {s["phase"] for s in seen} == {"Watching"}
    assert not any(s.get("actions") for s in seen)
    assert any(condition(s, "Breached").get("reason") == "Counting" for s in seen)
    status = objs.status("web")
    assert status["phase"] == "Watching" and not status.get("actions")
    assert not status.get("incident")
    assert "BreachConfirmed" not in {e["reason"] for e in objs.events("web")}
    assert objs.deployment("web")["spec"]["replicas"] == 2
