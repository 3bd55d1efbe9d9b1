"""State integrity on the real API server (issue 11, items 4, 5, 7, 8): an incident
identity that never repeats, a Rollback target fixed when planned, Events posted from
recorded status across a SIGKILL, and two guards over one object."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from kubernetes import client as k8s
from objects import GROUP, PLURAL, TIMEOUT, VERSION, Objects, condition, deployment_available
from test_containment import bad_metric, spec

from waiting import wait_until

MARKER = "releaseguard.io/action"


def canary(weight: int = 0) -> dict[str, Any]:
    return {
        "type": "CanaryWeight",
        "canaryWeight": {"httpRoute": "checkout", "canaryBackend": "checkout-v2", "weight": weight},
    }


def weights(objs: Objects) -> dict[str, int]:
    refs = objs.http_route("checkout")["spec"]["rules"][0]["backendRefs"]
    return {r["name"]: r["weight"] for r in refs}


def wait_status(objs: Objects, name: str, check: Any, timeout: float = 60) -> dict[str, Any]:
    return wait_until(
        lambda: (s := objs.status(name)) and check(s) and s,
        timeout=timeout,
        describe=lambda: json.dumps(objs.status(name), indent=1)[-3000:],
    )


def evaluations_pass(objs: Objects, name: str, seconds: float) -> None:
    """Wait until the guard has evaluated for `seconds` more (operator run with
    --status-heartbeat 0, so every evaluation writes lastEvaluation.time)."""
    since = objs.status(name)["lastEvaluation"]["time"]
    start = datetime.fromisoformat(since.replace("Z", "+00:00"))
    wait_until(
        lambda: (
            datetime.fromisoformat(
                objs.status(name)["lastEvaluation"]["time"].replace("Z", "+00:00")
            )
            >= start + timedelta(seconds=seconds)
        ),
        timeout=seconds + 30,
        describe=lambda: objs.status(name).get("lastEvaluation"),
    )


def reset_status(cluster: Any, objs: Objects, name: str) -> None:
    """What an unreadable status or a restore from an old backup amounts to: start over."""
    custom = k8s.CustomObjectsApi(cluster.api)
    body = objs.guard(name)
    body["status"] = {}
    custom.replace_namespaced_custom_object_status(
        GROUP, VERSION, objs.ns, PLURAL, name, body, _request_timeout=TIMEOUT
    )
    assert not objs.status(name).get("incident")


def test_status_reset_then_a_new_incident_writes_again_with_a_positive_ttc(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_http_route("checkout", {"checkout-v1": 90, "checkout-v2": 10})
    objs.create_guard("g", spec(bad_metric(exporter, namespace), [canary()]))
    first = run_operator(namespace)
    wait_status(objs, "g", lambda s: s.get("phase") == "Contained")
    first.stop()
    old_marker = json.loads(objs.http_route("checkout")["metadata"]["annotations"][MARKER])
    assert old_marker["id"] == "1-canaryweight-0"

    # A human puts the canary back (the marker stays on the object), and the status is lost.
    route = objs.http_route("checkout")
    for ref in route["spec"]["rules"][0]["backendRefs"]:
        ref["weight"] = {"checkout-v1": 90, "checkout-v2": 10}[ref["name"]]
    objs.custom.replace_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", namespace, "httproutes", "checkout", route
    )
    generation = objs.http_route("checkout")["metadata"]["generation"]
    reset_status(cluster, objs, "g")

    run_operator(namespace)
    status = wait_status(objs, "g", lambda s: s.get("phase") in ("Contained", "Exhausted"))

    assert status["phase"] == "Contained", status.get("message")
    (action,) = status["actions"]
    assert action["result"] == "Applied"
    assert "marker" not in action.get("message", ""), "the old incident's marker was adopted"
    assert weights(objs) == {"checkout-v1": 100, "checkout-v2": 0}
    assert objs.http_route("checkout")["metadata"]["generation"] == generation + 1
    assert status["incident"]["uid"] != old_marker["incident"]
    assert status["incident"]["timeToContainSeconds"] > 0
    new_marker = json.loads(objs.http_route("checkout")["metadata"]["annotations"][MARKER])
    assert new_marker["incident"] == status["incident"]["uid"]


def test_rollback_previous_after_someone_elses_change_never_restores_the_breaching_template(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    wait_until(lambda: len(objs.replica_sets("app")) == 1, timeout=30, describe="first RS")
    objs.set_image("app", "registry.local/app:2")  # the release that breaches
    wait_until(
        lambda: (
            objs.deployment("app")["metadata"]["annotations"].get(
                "deployment.kubernetes.io/revision"
            )
            == "2"
        ),
        timeout=30,
        describe="revision 2",
    )
    rollback = {"type": "Rollback", "rollback": {"toRevision": "Previous"}}
    objs.create_guard("g", spec(bad_metric(exporter, namespace), [rollback]))
    # Between the guard's read and its write someone else ships app:3: the write gets a
    # 409, and a "Previous" recomputed on the redo would be app:2, the release that breached.
    run_operator(namespace, faults=["--conflict-once", "--conflict-image", "registry.local/app:3"])

    status = wait_status(objs, "g", lambda s: s.get("actions"))
    (action,) = status["actions"]
    assert action["result"] == "Applied", json.dumps(action)  # a str: printed whole
    # The concurrent write, then the Deployment controller's own updates: one 409 or more.
    assert action["message"].startswith("after ") and action["message"].endswith("conflict(s)")
    assert action["after"]["images"] == ["registry.local/app:1"]
    assert status["incident"]["breachedTemplates"]
    dep = objs.deployment("app")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/app:1"

    def settled() -> bool:
        dep = objs.deployment("app")
        images = {p["spec"]["containers"][0]["image"] for p in objs.pods("app=app")}
        return deployment_available(dep) and images == {"registry.local/app:1"}

    wait_until(settled, timeout=90, describe=lambda: objs.pods("app=app"))
    for rs in objs.replica_sets("app"):
        image = rs["spec"]["template"]["spec"]["containers"][0]["image"]
        if image == "registry.local/app:2":
            assert rs["spec"]["replicas"] == 0, "the breaching template was restored"


def test_two_guards_over_one_route_both_show_conflict_and_only_the_older_acts(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_http_route("checkout", {"checkout-v1": 90, "checkout-v2": 10})
    query = bad_metric(exporter, namespace)
    # Created in this order; within one second of each other the name decides, and
    # "first" sorts first too (domain/ownership.py).
    objs.create_guard("first", spec(query, [canary(0)]))
    objs.create_guard("second", spec(query, [canary(5)]))
    run_operator(namespace, "--status-heartbeat", "0")

    older = wait_status(objs, "first", lambda s: s.get("phase") == "Contained")
    newer = wait_status(objs, "second", lambda s: condition(s, "Conflict").get("status") == "True")
    older = wait_status(objs, "first", lambda s: condition(s, "Conflict").get("status") == "True")
    assert "this guard acts (older)" in condition(older, "Conflict")["message"]
    assert "first acts (older)" in condition(newer, "Conflict")["message"]
    (readiness,) = newer["readiness"]
    assert readiness["ready"] is False and "yields to older guard first" in readiness["reason"]
    for name in ("first", "second"):
        (event,) = objs.wait_event(name, "Conflict")
        assert event["type"] == "Warning"

    evaluations_pass(objs, "second", 3)  # nothing more may happen
    assert weights(objs) == {"checkout-v1": 100, "checkout-v2": 0}
    assert len(objs.status("first")["actions"]) == 1
    assert not objs.status("second").get("actions")
    assert objs.http_route("checkout")["metadata"]["generation"] == 2


def test_two_guards_writing_different_fields_of_one_object_keep_both_markers(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_config_map("flags", {"a": "on", "b": "on"})
    query = bad_metric(exporter, namespace)
    for key in ("a", "b"):
        flag = {"configMap": "flags", "key": key, "value": "off"}
        objs.create_guard(f"g-{key}", spec(query, [{"type": "FeatureFlag", "featureFlag": flag}]))
    run_operator(namespace)

    for key in ("a", "b"):
        wait_status(objs, f"g-{key}", lambda s: s.get("phase") == "Contained")
    cm = objs.config_map("flags")
    assert cm["data"] == {"a": "off", "b": "off"}
    entries = json.loads(cm["metadata"]["annotations"][MARKER])
    uids = {objs.guard(f"g-{key}")["metadata"]["uid"] for key in ("a", "b")}
    assert set(entries) == uids
    assert not any(condition(objs.status(f"g-{k}"), "Conflict") for k in ("a", "b"))


def test_events_of_an_action_adopted_after_a_sigkill_are_posted_once(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_http_route("checkout", {"checkout-v1": 90, "checkout-v2": 10})
    objs.create_guard("g", spec(bad_metric(exporter, namespace), [canary()]))
    doomed = run_operator(namespace, faults=["--kill-after-write"])
    wait_until(lambda: not doomed.alive(), timeout=60, describe=doomed.log_tail)
    # Killed after the step's write: the status has the incident and no action yet.
    status = objs.status("g")
    assert status["incident"]["uid"] and not status.get("actions")
    assert not [e for e in objs.events("g") if e["reason"] == "StepApplied"]

    second = run_operator(namespace)
    wait_status(objs, "g", lambda s: len(s.get("announced") or []) >= 2)
    second.kill()
    run_operator(namespace, "--status-heartbeat", "0")
    wait_status(objs, "g", lambda s: s["lastEvaluation"]["time"] > status["lastEvaluation"]["time"])
    evaluations_pass(objs, "g", 2)  # a few more evaluations after the second restart

    events = objs.events("g")
    applied = [e for e in events if e["reason"] == "StepApplied"]
    confirmed = [e for e in events if e["reason"] == "BreachConfirmed"]
    assert len(applied) == 1 and applied[0].get("count", 1) == 1, applied
    assert "1-canaryweight-0" in applied[0]["message"]
    assert len(confirmed) == 1 and confirmed[0].get("count", 1) == 1, confirmed
    assert [a["id"] for a in objs.status("g")["actions"]] == ["1-canaryweight-0"]
