"""Containment on the real API server: each step's exact effect and record, the
cheapest-first ladder, escalation, exhaustion, 409 handling, and exactly-once across a
SIGKILL between the step's write and the status write."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from objects import Objects, condition, deployment_available

from waiting import wait_until

MARKER = "releaseguard.io/action"


def bad_metric(exporter: Any, namespace: str, value: float = 0.5) -> str:
    """Make the guard's one metric breach (0.5 > 0.1); return its query."""
    exporter.set("rg_error_ratio", value, {"guard": namespace})
    return f'max(rg_error_ratio{{guard="{namespace}"}})'


def spec(query: str, steps: list[dict], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "target": {"deployment": "app"},
        "intervalSeconds": 1,
        "consecutiveBreaches": 1,
        "escalateAfterSeconds": 300,
        "metrics": [{"name": "error-rate", "query": query, "max": 0.1}],
        "steps": steps,
    }
    body.update(extra)
    return body


def breaching_canary_guard(cluster: Any, namespace: str, exporter: Any) -> Objects:
    """Target `app`, HTTPRoute `checkout` (v1 90 / v2 10), guard `g` with one CanaryWeight
    step whose metric breaches."""
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_http_route("checkout", {"checkout-v1": 90, "checkout-v2": 10})
    step = {
        "type": "CanaryWeight",
        "canaryWeight": {"httpRoute": "checkout", "canaryBackend": "checkout-v2"},
    }
    objs.create_guard("g", spec(bad_metric(exporter, namespace), [step]))
    return objs


def wait_phase(objs: Objects, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
    return wait_until(
        lambda: (s := objs.status(name)).get("phase") == phase and s,
        timeout=timeout,
        describe=lambda: json.dumps(objs.status(name), indent=1)[-3000:],
    )


def wait_actions(objs: Objects, name: str, count: int, timeout: float = 60) -> list[dict]:
    return wait_until(
        lambda: len(a := objs.status(name).get("actions") or []) >= count and a,
        timeout=timeout,
        describe=lambda: json.dumps(objs.status(name), indent=1)[-3000:],
    )


def test_feature_flag_step_turns_the_flag_off_and_records_it(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_config_map("flags", {"new-checkout": "true", "other": "kept"})
    step = {
        "type": "FeatureFlag",
        "featureFlag": {"configMap": "flags", "key": "new-checkout", "value": "false"},
    }
    objs.create_guard("g", spec(bad_metric(exporter, namespace), [step]))
    run_operator(namespace)

    status = wait_phase(objs, "g", "Contained")
    data = objs.config_map("flags")["data"]
    assert data == {"new-checkout": "false", "other": "kept"}
    (action,) = status["actions"]
    assert action["id"] == "1-featureflag-0"
    assert action["result"] == "Applied"
    assert action["target"] == "ConfigMap/flags"
    assert action["before"] == {"new-checkout": "true"}
    assert action["after"] == {"new-checkout": "false"}
    assert "error-rate 0.5 > 0.1 for 1 evaluation" in action["reason"]
    assert status["lastAction"] == "FeatureFlag Applied"
    incident = status["incident"]
    assert incident["number"] == 1
    assert incident["timeToContainSeconds"] >= 0
    assert condition(status, "Contained")["status"] == "True"
    objs.wait_event("g", "StepApplied")
    printed = cluster.kubectl("get", "rg", "g", "-n", namespace).stdout
    assert "FeatureFlag Applied" in printed and "Contained" in printed


def test_canary_weight_step_moves_weight_keeping_the_total(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_http_route("checkout", {"checkout-v1": 90, "checkout-v2": 10})
    step = {
        "type": "CanaryWeight",
        "canaryWeight": {"httpRoute": "checkout", "canaryBackend": "checkout-v2", "weight": 0},
    }
    objs.create_guard("g", spec(bad_metric(exporter, namespace), [step]))
    run_operator(namespace)

    status = wait_phase(objs, "g", "Contained")
    refs = objs.http_route("checkout")["spec"]["rules"][0]["backendRefs"]
    assert {r["name"]: r["weight"] for r in refs} == {"checkout-v1": 100, "checkout-v2": 0}
    action = status["actions"][0]
    assert action["before"] == {"checkout-v1": 90, "checkout-v2": 10}
    assert action["after"] == {"checkout-v1": 100, "checkout-v2": 0}
    assert action["target"] == "HTTPRoute/checkout"


def test_scale_step_sets_replicas_and_records_the_previous_count(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_deployment("consumer", "registry.local/consumer:2", replicas=2)
    step = {"type": "Scale", "scale": {"deployment": "consumer", "replicas": 0}}
    objs.create_guard("g", spec(bad_metric(exporter, namespace), [step]))
    run_operator(namespace)

    status = wait_phase(objs, "g", "Contained")
    assert objs.deployment("consumer")["spec"]["replicas"] == 0
    action = status["actions"][0]
    assert (action["before"], action["after"]) == ({"replicas": 2}, {"replicas": 0})
    wait_until(lambda: not objs.pods("app=consumer"), timeout=60, describe="consumer pods gone")


def test_blue_green_step_points_the_service_back_at_the_stable_colour(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_deployment(
        "blue", "registry.local/shop:1", labels={"role": "shop", "color": "blue"}
    )
    objs.create_deployment(
        "green", "registry.local/shop:2", labels={"role": "shop", "color": "green"}
    )
    objs.create_service("shop", {"role": "shop", "color": "green"})
    wait_until(
        lambda: deployment_available(objs.deployment("blue")), timeout=60, describe="blue Available"
    )
    step = {
        "type": "BlueGreen",
        "blueGreen": {"service": "shop", "selectorKey": "color", "stableValue": "blue"},
    }
    objs.create_guard("g", spec(bad_metric(exporter, namespace), [step]))
    run_operator(namespace)

    status = wait_phase(objs, "g", "Contained")
    assert objs.service("shop")["spec"]["selector"] == {"role": "shop", "color": "blue"}
    action = status["actions"][0]
    assert (action["before"], action["after"]) == ({"color": "green"}, {"color": "blue"})


def test_rollback_returns_pods_to_the_last_known_good_image(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1", replicas=2)
    query = f'max(rg_error_ratio{{guard="{namespace}"}})'
    exporter.set("rg_error_ratio", 0.0, {"guard": namespace})
    objs.create_guard("g", spec(query, [{"type": "Rollback"}], knownGoodAfterSeconds=3))
    run_operator(namespace)

    good = wait_until(
        lambda: objs.status("g").get("lastKnownGood"), timeout=60, describe=lambda: objs.status("g")
    )
    assert good["revision"] == "1" and good["images"] == ["registry.local/app:1"]
    ready = wait_until(
        lambda: (c := condition(objs.status("g"), "RollbackReady")).get("status") == "True" and c,
        timeout=30,
        describe=lambda: objs.status("g").get("conditions"),
    )
    assert ready["message"] == "revision 1 (registry.local/app:1)"
    first_rs = {rs["metadata"]["name"] for rs in objs.replica_sets("app")}

    objs.set_image("app", "registry.local/app:2")
    wait_until(
        lambda: (objs.status("g").get("release") or {}).get("revision") == "2",
        timeout=60,
        describe=lambda: objs.status("g").get("release"),
    )
    exporter.set("rg_error_ratio", 0.5, {"guard": namespace})

    status = wait_phase(objs, "g", "Contained")
    action = status["actions"][0]
    assert action["type"] == "Rollback"
    assert action["before"]["images"] == ["registry.local/app:2"]
    assert action["after"]["images"] == ["registry.local/app:1"]
    assert action["after"]["revision"] == "1"
    dep = objs.deployment("app")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/app:1"

    def rolled_back() -> bool:
        dep = objs.deployment("app")
        pods = objs.pods("app=app")
        images = {p["spec"]["containers"][0]["image"] for p in pods}
        ready = all(
            any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions", [])
            )
            for p in pods
        )
        return (
            deployment_available(dep)
            and images == {"registry.local/app:1"}
            and ready
            and len(pods) == 2
        )

    wait_until(rolled_back, timeout=90, describe=lambda: objs.pods("app=app"))
    sets = objs.replica_sets("app")
    live = [rs for rs in sets if rs["spec"]["replicas"] > 0]
    assert len(live) == 1 and live[0]["metadata"]["name"] in first_rs, "old ReplicaSet reused"
    assert live[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    # The guard's own rollback is not a new release: it stays Contained, no re-arm.
    wait_until(
        lambda: (objs.status("g").get("release") or {}).get("revision") == "3",
        timeout=30,
        describe=lambda: objs.status("g").get("release"),
    )
    status = objs.status("g")
    assert status["phase"] == "Contained"
    assert len(status["actions"]) == 1
    assert not any(e["reason"] == "Rearmed" for e in objs.events("g"))


def test_ladder_takes_the_cheapest_applicable_step_and_skips_one_that_changes_nothing(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_config_map("flags", {"new-checkout": "false"})  # already off: changes nothing
    objs.create_http_route("checkout", {"checkout-v1": 80, "checkout-v2": 20})
    objs.create_deployment("canary", "registry.local/app:2")
    steps = [
        {"type": "Scale", "scale": {"deployment": "canary", "replicas": 0}},
        {
            "type": "FeatureFlag",
            "featureFlag": {"configMap": "flags", "key": "new-checkout", "value": "false"},
        },
        {
            "type": "CanaryWeight",
            "canaryWeight": {"httpRoute": "checkout", "canaryBackend": "checkout-v2"},
        },
    ]
    objs.create_guard("g", spec(bad_metric(exporter, namespace), steps))
    run_operator(namespace)

    status = wait_phase(objs, "g", "Contained")
    assert [a["type"] for a in status["actions"]] == ["CanaryWeight"]
    readiness = {r["type"]: r for r in status["readiness"]}
    assert readiness["FeatureFlag"]["ready"] is False
    assert "already" in readiness["FeatureFlag"]["reason"]
    assert objs.deployment("canary")["spec"]["replicas"] == 1


def test_escalates_to_the_next_step_after_escalate_after_seconds(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_config_map("flags", {"f": "on"})
    objs.create_deployment("canary", "registry.local/app:2")
    steps = [
        {"type": "Scale", "scale": {"deployment": "canary", "replicas": 0}},
        {"type": "FeatureFlag", "featureFlag": {"configMap": "flags", "key": "f", "value": "off"}},
    ]
    objs.create_guard("g", spec(bad_metric(exporter, namespace), steps, escalateAfterSeconds=4))
    run_operator(namespace)

    actions = wait_actions(objs, "g", 2)
    assert [a["type"] for a in actions] == ["FeatureFlag", "Scale"]
    first, second = (datetime.fromisoformat(a["time"]) for a in actions)
    assert (second - first).total_seconds() >= 4
    assert [a["id"] for a in actions] == ["1-featureflag-1", "1-scale-0"]


def test_nothing_applicable_is_exhausted_with_a_warning(cluster, namespace, exporter, run_operator):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    steps = [
        {
            "type": "FeatureFlag",
            "featureFlag": {"configMap": "missing-flags", "key": "f", "value": "off"},
        }
    ]
    objs.create_guard("g", spec(bad_metric(exporter, namespace), steps))
    run_operator(namespace)

    status = wait_phase(objs, "g", "Exhausted")
    assert "ConfigMap missing-flags not found" in status["message"]
    warnings = objs.wait_event("g", "Exhausted")
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning"


def test_a_409_from_a_concurrent_writer_is_retried_without_clobbering_it(
    cluster, namespace, exporter, run_operator
):
    objs = breaching_canary_guard(cluster, namespace, exporter)
    run_operator(namespace, faults=["--conflict-once"])

    status = wait_phase(objs, "g", "Contained")
    action = status["actions"][0]
    assert action["result"] == "Applied"
    assert action["message"] == "after 1 conflict(s)"
    route = objs.http_route("checkout")
    assert "test.releaseguard.io/concurrent-writer" in route["metadata"]["annotations"]
    refs = route["spec"]["rules"][0]["backendRefs"]
    assert {r["name"]: r["weight"] for r in refs} == {"checkout-v1": 100, "checkout-v2": 0}


def test_sigkill_between_patch_and_status_write_records_the_action_once(
    cluster, namespace, exporter, run_operator
):
    objs = breaching_canary_guard(cluster, namespace, exporter)
    doomed = run_operator(namespace, faults=["--kill-after-write"])

    wait_until(lambda: not doomed.alive(), timeout=60, describe=doomed.log_tail)
    route = objs.http_route("checkout")
    marker = json.loads(route["metadata"]["annotations"][MARKER])
    assert marker["id"] == "1-canaryweight-0"
    assert not objs.status("g").get("actions"), "killed before the status write"
    generation_after_patch = route["metadata"]["generation"]

    run_operator(namespace)
    status = wait_phase(objs, "g", "Contained")
    wait_until(
        lambda: objs.status("g")["lastEvaluation"]["time"] > status["lastEvaluation"]["time"],
        timeout=30,
        describe="one more evaluation after recovery",
    )
    status = objs.status("g")
    assert [a["id"] for a in status["actions"]] == ["1-canaryweight-0"]
    assert status["actions"][0]["before"] == {"checkout-v1": 90, "checkout-v2": 10}
    assert objs.http_route("checkout")["metadata"]["generation"] == generation_after_patch == 2
    assert status["incident"]["containedAt"] is not None
