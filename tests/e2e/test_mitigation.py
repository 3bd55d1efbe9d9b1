"""Mitigation on the real API server: what stays done after containment (only a human
undoes a step), refusing a rollback once state has changed, step readiness before any
incident, dry run, the manual annotations (contain-now, rearm) and the automatic re-arm
on a new release, exactly-once annotations across a restart, and continuous guarding."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from objects import Objects, condition, deployment_available
from test_containment import spec as containment_spec

from devcluster.launch import EVERY_EVALUATION
from waiting import wait_until

CONTAIN_NOW = "releaseguard.io/contain-now"
REARM = "releaseguard.io/rearm"
IRREVERSIBLE = "releaseguard.io/irreversible"
# These tests assert that nothing happens over several evaluations, which they see
# through status: so the operator writes every one (test_status_writes covers the default).


# --------------------------------------------------------------------------- helpers


def query(namespace: str) -> str:
    return f'max(rg_error_ratio{{guard="{namespace}"}})'


def breach(exporter: Any, namespace: str) -> None:
    exporter.set("rg_error_ratio", 0.5, {"guard": namespace})


def heal(exporter: Any, namespace: str) -> None:
    exporter.set("rg_error_ratio", 0.0, {"guard": namespace})


def spec(namespace: str, steps: list[dict], **extra: Any) -> dict[str, Any]:
    return containment_spec(query(namespace), steps, **extra)


def flag_step(config_map: str = "flags", key: str = "new-checkout", **extra: Any) -> dict:
    return {
        "type": "FeatureFlag",
        "featureFlag": {"configMap": config_map, "key": key, "value": "false"},
        **extra,
    }


def dump(objs: Objects, name: str) -> Callable[[], str]:
    return lambda: json.dumps(objs.status(name), indent=1)[-3000:]


def wait_status(
    objs: Objects, name: str, predicate: Callable[[dict], object], timeout: float = 60
) -> dict[str, Any]:
    """Poll the guard's status until ``predicate(status)`` holds; return that status."""
    return wait_until(
        lambda: predicate(s := objs.status(name)) and s,
        timeout=timeout,
        describe=dump(objs, name),
    )


def wait_phase(objs: Objects, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
    return wait_status(objs, name, lambda s: s.get("phase") == phase, timeout)


def wait_evaluations(
    objs: Objects, name: str, count: int, timeout: float = 30
) -> dict[str, dict[str, Any]]:
    """Wait for ``count`` evaluations newer than the current one; return a snapshot of the
    status as seen at each (keyed by lastEvaluation.time), so callers can assert on all."""
    start = (objs.status(name).get("lastEvaluation") or {}).get("time")
    seen: dict[str, dict[str, Any]] = {}

    def enough() -> bool:
        status = objs.status(name)
        last = (status.get("lastEvaluation") or {}).get("time")
        if last and last != start and last not in seen:
            seen[last] = status
        return len(seen) >= count

    wait_until(
        enough,
        timeout=timeout,
        interval=0.1,
        describe=lambda: f"{count} evaluations after {start}; saw {sorted(seen)}",
    )
    return seen


def readiness(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((r for r in status.get("readiness") or [] if r["type"] == type_), {})


def set_flag(objs: Objects, config_map: str, key: str, value: str) -> None:
    """A human edits the flag (a merge patch, as `kubectl patch` would)."""
    objs.core.patch_namespaced_config_map(config_map, objs.ns, {"data": {key: value}})


def annotate_deployment(objs: Objects, name: str, key: str, value: str) -> None:
    objs.apps.patch_namespaced_deployment(
        name, objs.ns, {"metadata": {"annotations": {key: value}}}
    )


def image_of(dep: dict[str, Any]) -> str:
    return dep["spec"]["template"]["spec"]["containers"][0]["image"]


def contained_by_flag(objs: Objects, exporter: Any, run_operator: Any, **extra: Any) -> dict:
    """A guard `g` on `app` with one FeatureFlag step, contained by a breach."""
    ns = objs.ns
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_config_map("flags", {"new-checkout": "true"})
    breach(exporter, ns)
    objs.create_guard("g", spec(ns, [flag_step()], **extra))
    run_operator(ns, *EVERY_EVALUATION)
    status = wait_phase(objs, "g", "Contained")
    assert objs.config_map("flags")["data"]["new-checkout"] == "false"
    return status


def wait_recovered(objs: Objects, exporter: Any) -> dict[str, Any]:
    heal(exporter, objs.ns)
    return wait_status(objs, "g", lambda s: (s.get("incident") or {}).get("recoveredAt"))


def rolled_out_with_known_good(
    objs: Objects, exporter: Any, run_operator: Any, steps: list[dict], **extra: Any
) -> None:
    """Guard `g` on `app`: revision 1 becomes known-good, then revision 2 rolls out."""
    ns = objs.ns
    objs.create_deployment("app", "registry.local/app:1")
    heal(exporter, ns)
    objs.create_guard("g", spec(ns, steps, knownGoodAfterSeconds=2, **extra))
    run_operator(ns, *EVERY_EVALUATION)
    good = wait_status(objs, "g", lambda s: s.get("lastKnownGood"))["lastKnownGood"]
    assert good["revision"] == "1"
    # Revision 2 must not become known-good too, or Rollback would have nothing to do.
    objs.patch_guard("g", {"spec": {"knownGoodAfterSeconds": 3600}})
    wait_status(objs, "g", lambda s: s.get("observedGeneration") == 2)
    objs.set_image("app", "registry.local/app:2")
    wait_status(objs, "g", lambda s: (s.get("release") or {}).get("revision") == "2")
    wait_until(
        lambda: deployment_available(objs.deployment("app")),
        timeout=60,
        describe=lambda: objs.deployment("app").get("status"),
    )


def run_migration(objs: Objects, name: str) -> None:
    objs.create_job(name)
    wait_until(
        lambda: (objs.job(name).get("status") or {}).get("succeeded", 0) >= 1,
        timeout=60,
        describe=lambda: objs.job(name).get("status"),
    )


# --------------------------------------------------------------------------- tests


def test_a_flag_turned_off_is_restored_only_by_a_human(cluster, namespace, exporter, run_operator):
    objs = Objects(cluster.api, namespace)
    contained_by_flag(objs, exporter, run_operator)
    recovered = wait_recovered(objs, exporter)
    assert recovered["phase"] == "Contained"
    objs.wait_event("g", "Recovered")
    seen = wait_evaluations(objs, "g", 3)
    assert {s["phase"] for s in seen.values()} == {"Contained"}, seen  # never undone by us
    assert objs.config_map("flags")["data"]["new-checkout"] == "false"

    # While the incident is open, turning the flag back on would be a revert, applied
    # again (README "GitOps: when someone undoes a step", tests/e2e/test_gitops.py): the
    # human re-arms first, then restores the flag, and the guard leaves it.
    objs.annotate_guard("g", REARM, "1")
    wait_phase(objs, "g", "Watching")
    set_flag(objs, "flags", "new-checkout", "true")
    seen = wait_evaluations(objs, "g", 4)

    assert {s["phase"] for s in seen.values()} == {"Watching"}, seen
    assert {len(s["actions"]) for s in seen.values()} == {1}, seen
    assert objs.config_map("flags")["data"]["new-checkout"] == "true"
    status = objs.status("g")
    assert [a["id"] for a in status["actions"]] == ["1-featureflag-0"]
    assert status["incident"]["closed"] is True
    assert readiness(status, "FeatureFlag")["ready"] is True  # usable, yet not re-applied


def test_a_consumer_is_scaled_to_zero(cluster, namespace, exporter, run_operator):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_deployment("consumer", "registry.local/consumer:1", replicas=3)
    wait_until(
        lambda: (
            deployment_available(objs.deployment("consumer"))
            and len(objs.pods("app=consumer")) == 3
        ),
        timeout=60,
        describe=lambda: objs.deployment("consumer").get("status"),
    )
    breach(exporter, namespace)
    step = {"type": "Scale", "scale": {"deployment": "consumer", "replicas": 0}}
    objs.create_guard("g", spec(namespace, [step]))
    run_operator(namespace, *EVERY_EVALUATION)

    status = wait_phase(objs, "g", "Contained")
    (action,) = status["actions"]
    assert action["id"] == "1-scale-0"
    assert action["target"] == "Deployment/consumer"
    assert action["before"] == {"replicas": 3}
    assert action["after"] == {"replicas": 0}
    assert objs.deployment("consumer")["spec"]["replicas"] == 0
    wait_until(lambda: not objs.pods("app=consumer"), timeout=60, describe="consumer pods gone")


def test_a_succeeded_migration_job_refuses_rollback_and_the_next_step_is_used(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_config_map("flags", {"new-checkout": "true"})
    # FeatureFlag costs more than Rollback here, so only the refusal makes it the choice.
    steps = [{"type": "Rollback"}, flag_step(cost=90)]
    extra = {"irreversibleChanges": {"jobs": ["migrate"]}}
    rolled_out_with_known_good(objs, exporter, run_operator, steps, **extra)
    wait_status(objs, "g", lambda s: readiness(s, "Rollback").get("ready") is True)

    run_migration(objs, "migrate")
    refused = wait_status(objs, "g", lambda s: readiness(s, "Rollback").get("ready") is False)
    assert "Job migrate succeeded: state changed" in readiness(refused, "Rollback")["reason"]
    rollback_ready = condition(refused, "RollbackReady")
    assert (rollback_ready["status"], rollback_ready["reason"]) == ("False", "StateChanged")
    assert refused["lastKnownGood"]["revision"] == "1"  # a rollback target exists
    (event,) = objs.wait_event("g", "RollbackRefused")
    assert event["type"] == "Warning" and "Job migrate succeeded" in event["message"]
    generation = objs.deployment("app")["metadata"]["generation"]

    breach(exporter, namespace)
    status = wait_phase(objs, "g", "Contained")
    assert [a["type"] for a in status["actions"]] == ["FeatureFlag"]
    assert objs.config_map("flags")["data"]["new-checkout"] == "false"
    dep = objs.deployment("app")
    assert image_of(dep) == "registry.local/app:2"
    assert dep["metadata"]["generation"] == generation


def test_a_succeeded_migration_job_with_only_rollback_exhausts_the_ladder(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    extra = {"irreversibleChanges": {"jobs": ["migrate"]}}
    rolled_out_with_known_good(objs, exporter, run_operator, [{"type": "Rollback"}], **extra)
    run_migration(objs, "migrate")
    wait_status(objs, "g", lambda s: readiness(s, "Rollback").get("ready") is False)
    before = objs.deployment("app")

    breach(exporter, namespace)
    status = wait_phase(objs, "g", "Exhausted")
    assert "rollback refused" in status["message"]
    assert "state changed" in status["message"]
    assert not status.get("actions")
    (warning,) = objs.wait_event("g", "Exhausted")
    assert warning["type"] == "Warning"
    after = objs.deployment("app")
    assert image_of(after) == "registry.local/app:2"
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["metadata"]["annotations"].get("deployment.kubernetes.io/revision") == "2"
    assert "releaseguard.io/action" not in after["metadata"]["annotations"]


def test_the_irreversible_annotation_refuses_rollback_like_a_job(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_config_map("flags", {"new-checkout": "true"})
    steps = [{"type": "Rollback"}, flag_step(cost=90)]
    rolled_out_with_known_good(objs, exporter, run_operator, steps)
    wait_status(objs, "g", lambda s: readiness(s, "Rollback").get("ready") is True)

    annotate_deployment(objs, "app", IRREVERSIBLE, "true")
    refused = wait_status(objs, "g", lambda s: readiness(s, "Rollback").get("ready") is False)
    reason = readiness(refused, "Rollback")["reason"]
    assert "rollback refused" in reason and f"{IRREVERSIBLE}=true" in reason
    assert condition(refused, "RollbackReady")["reason"] == "StateChanged"
    assert refused["lastKnownGood"]["revision"] == "1"
    objs.wait_event("g", "RollbackRefused")
    generation = objs.deployment("app")["metadata"]["generation"]

    breach(exporter, namespace)
    status = wait_phase(objs, "g", "Contained")
    assert [a["type"] for a in status["actions"]] == ["FeatureFlag"]
    dep = objs.deployment("app")
    assert image_of(dep) == "registry.local/app:2"
    assert dep["metadata"]["generation"] == generation


def assert_no_data_explained(
    prometheus: Any, exporter: Any, evaluations: dict[str, dict[str, Any]]
) -> None:
    """A NoData of a constant, healthy metric has two explanations on a loaded machine:
    - the query timed out (our per-query deadline, or Prometheus's own) or waited out its
      deadline for a slot of the operator's query budget;
    - a scrape of the exporter failed (1 s timeout), and Prometheus marked its series
      stale at once, so the query found no series until the next good scrape.
    Anything else (an empty answer while every scrape succeeded) fails, with both."""
    messages = [
        m.get("message", "")
        for e in evaluations.values()
        for m in e.get("metrics", [])
        if m["verdict"] == "NoData"
    ]
    if all(any(w in m for w in ("timed out", "timeout", "took over", "budget")) for m in messages):
        return
    target = f'exporter="{exporter.name}"'
    worst = prometheus.query(f"min_over_time(up{{{target}}}[2m])")
    scrapes = prometheus.query(f"count_over_time(up{{{target}}}[2m])")
    slowest = prometheus.query(f"max_over_time(scrape_duration_seconds{{{target}}}[2m])")
    assert worst and float(worst[0]["value"][1]) == 0, (
        f"NoData while every scrape of the exporter succeeded: {messages}; "
        f"scrapes in the last 2 minutes {scrapes}; slowest {slowest}; "
        f"evaluations {evaluations}"
    )


def test_readiness_reports_each_broken_step_before_any_incident(
    cluster, namespace, exporter, prometheus, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1", revision_history_limit=0)
    objs.create_deployment(
        "blue", "registry.local/shop:1", replicas=0, labels={"role": "shop", "color": "blue"}
    )
    objs.create_service("shop", {"role": "shop", "color": "green"})
    objs.create_http_route("checkout", {"checkout-v1": 100})
    steps = [
        flag_step(config_map="x"),
        {"type": "Rollback", "rollback": {"toRevision": "Previous"}},
        {
            "type": "BlueGreen",
            "blueGreen": {"service": "shop", "selectorKey": "color", "stableValue": "blue"},
        },
        {
            "type": "CanaryWeight",
            "canaryWeight": {"httpRoute": "checkout", "canaryBackend": "checkout-v2"},
        },
    ]
    heal(exporter, namespace)
    # A new exporter target is first scraped seconds later (file_sd updates are batched):
    # until then the query has no series. This test is about healthy data, so wait for it.
    prometheus.wait_for(query(namespace), lambda r: bool(r))
    objs.create_guard("g", spec(namespace, steps))
    run_operator(namespace, *EVERY_EVALUATION)
    wait_status(objs, "g", lambda s: (s.get("release") or {}).get("revision") == "1")
    objs.set_image("app", "registry.local/app:2")

    expected = {
        "FeatureFlag": "ConfigMap x not found",
        "Rollback": "no previous revision",
        "BlueGreen": "has no Ready pods",
        "CanaryWeight": "has no backendRef named checkout-v2",
    }

    def all_reported(status: dict) -> bool:
        return (status.get("release") or {}).get("revision") == "2" and all(
            readiness(status, t).get("ready") is False and text in readiness(status, t)["reason"]
            for t, text in expected.items()
        )

    status = wait_status(objs, "g", all_reported)
    assert [r["index"] for r in status["readiness"]] == [0, 1, 2, 3]
    assert (
        "HTTPRoute checkout has no backendRef named checkout-v2"
        in readiness(status, "CanaryWeight")["reason"]
    )
    assert condition(status, "RollbackReady")["status"] == "False"
    seen = wait_evaluations(objs, "g", 3)
    assert {s["phase"] for s in seen.values()} == {"Watching"}, seen
    # Broken steps make no breach. Under the whole suite's load on 2 cores these three
    # evaluations were NoData in 2 of 6 CI runs, with a healthy, constant metric. A NoData
    # is allowed only where it is explained, and the explanation is checked.
    evaluations = {t: s["lastEvaluation"] for t, s in seen.items()}
    verdicts = {e["verdict"] for e in evaluations.values()}
    assert verdicts <= {"Healthy", "NoData"}, evaluations
    if "NoData" in verdicts:
        assert_no_data_explained(prometheus, exporter, evaluations)
    status = objs.status("g")
    assert status["phase"] == "Watching"
    assert not status.get("actions") and not status.get("incident")


def test_dry_run_records_what_it_would_change_and_changes_nothing(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_config_map("flags", {"new-checkout": "true"})
    objs.create_http_route("checkout", {"checkout-v1": 90, "checkout-v2": 10})
    cm_version = objs.config_map("flags")["metadata"]["resourceVersion"]
    route = objs.http_route("checkout")
    route_version = route["metadata"]["resourceVersion"]
    steps = [
        flag_step(),
        {
            "type": "CanaryWeight",
            "canaryWeight": {"httpRoute": "checkout", "canaryBackend": "checkout-v2"},
        },
    ]
    breach(exporter, namespace)
    objs.create_guard("g", spec(namespace, steps, dryRun=True, escalateAfterSeconds=2))
    run_operator(namespace, *EVERY_EVALUATION)

    phases: list[str] = []

    def both_dry_run() -> dict | None:
        status = objs.status("g")
        phases.append(status.get("phase", ""))
        actions = status.get("actions") or []
        return status if len(actions) >= 2 else None

    status = wait_until(both_dry_run, timeout=60, interval=0.1, describe=dump(objs, "g"))
    assert "Contained" not in phases, phases
    assert status["phase"] == "Breaching", phases
    flag, weight = status["actions"]
    assert [a["result"] for a in (flag, weight)] == ["DryRun", "DryRun"]
    assert (flag["id"], weight["id"]) == ("1-featureflag-0", "1-canaryweight-1")
    assert flag["before"] == {"new-checkout": "true"}
    assert flag["after"] == {"new-checkout": "false"}
    assert flag["patch"] == {"data": {"new-checkout": "false"}}
    assert weight["before"] == {"checkout-v1": 90, "checkout-v2": 10}
    assert weight["after"] == {"checkout-v1": 100, "checkout-v2": 0}
    rules = copy.deepcopy(route["spec"]["rules"])
    for ref in rules[0]["backendRefs"]:
        ref["weight"] = weight["after"][ref["name"]]
    assert weight["patch"] == {"spec": {"rules": rules}}

    assert objs.config_map("flags")["metadata"]["resourceVersion"] == cm_version
    assert objs.config_map("flags")["data"] == {"new-checkout": "true"}
    live = objs.http_route("checkout")
    assert live["metadata"]["resourceVersion"] == route_version
    assert live["spec"]["rules"] == route["spec"]["rules"]
    dry = wait_until(
        lambda: len(e := [e for e in objs.events("g") if e["reason"] == "StepDryRun"]) >= 2 and e,
        timeout=30,
        describe=lambda: [e["reason"] for e in objs.events("g")],
    )
    assert all(e["type"] == "Normal" for e in dry)
    assert not any(e["reason"] in ("StepApplied", "Contained") for e in objs.events("g"))
    assert condition(objs.status("g"), "Contained")["status"] == "False"


def test_contain_now_applies_the_cheapest_step_while_healthy(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_deployment("canary", "registry.local/app:2")
    objs.create_config_map("flags", {"new-checkout": "true"})
    heal(exporter, namespace)
    steps = [{"type": "Scale", "scale": {"deployment": "canary", "replicas": 0}}, flag_step()]
    objs.create_guard("g", spec(namespace, steps))
    run_operator(namespace, *EVERY_EVALUATION)
    wait_status(
        objs,
        "g",
        lambda s: (
            s.get("phase") == "Watching"
            and (s.get("lastEvaluation") or {}).get("verdict") == "Healthy"
        ),
    )

    objs.annotate_guard("g", CONTAIN_NOW, "1")
    status = wait_phase(objs, "g", "Contained")
    (action,) = status["actions"]
    assert (action["id"], action["type"]) == ("1-featureflag-1", "FeatureFlag")
    assert "contain-now" in action["reason"]
    assert "contain-now" in status["incident"]["reason"]
    assert status["handledAnnotations"][CONTAIN_NOW] == "1"
    assert objs.config_map("flags")["data"]["new-checkout"] == "false"
    assert objs.deployment("canary")["spec"]["replicas"] == 1
    seen = wait_evaluations(objs, "g", 2)
    assert {len(s["actions"]) for s in seen.values()} == {1}, seen


def test_rearm_ends_the_incident_and_a_new_breach_opens_incident_two(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    contained_by_flag(objs, exporter, run_operator)
    wait_recovered(objs, exporter)
    set_flag(objs, "flags", "new-checkout", "true")  # a human un-contains ...

    objs.annotate_guard("g", REARM, "1")  # ... and re-arms
    status = wait_status(
        objs, "g", lambda s: s.get("phase") == "Watching" and s["incident"].get("closed")
    )
    assert status["incident"]["number"] == 1
    assert status["handledAnnotations"][REARM] == "1"
    (event,) = objs.wait_event("g", "Rearmed")
    assert event["type"] == "Normal"
    assert objs.config_map("flags")["data"]["new-checkout"] == "true"

    breach(exporter, namespace)
    status = wait_status(
        objs,
        "g",
        lambda s: s.get("phase") == "Contained" and (s.get("incident") or {}).get("number") == 2,
    )
    assert [a["id"] for a in status["actions"]] == ["1-featureflag-0", "2-featureflag-0"]
    assert status["incident"]["closed"] is False
    assert objs.config_map("flags")["data"]["new-checkout"] == "false"


def test_a_new_target_revision_rearms_the_guard(cluster, namespace, exporter, run_operator):
    objs = Objects(cluster.api, namespace)
    contained_by_flag(objs, exporter, run_operator)
    wait_recovered(objs, exporter)

    objs.set_image("app", "registry.local/app:2")
    (event,) = objs.wait_event("g", "Rearmed")
    assert "revision 2" in event["message"]
    status = wait_status(
        objs, "g", lambda s: s.get("phase") == "Watching" and s["incident"].get("closed")
    )
    assert status["incident"]["number"] == 1
    assert status["release"]["revision"] == "2"
    assert len(status["actions"]) == 1
    assert condition(status, "Contained")["status"] == "False"
    seen = wait_evaluations(objs, "g", 2)
    assert {s["phase"] for s in seen.values()} == {"Watching"}, seen


def test_a_restart_does_not_rerun_an_annotation(cluster, namespace, exporter, run_operator):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_config_map("flags", {"new-checkout": "true"})
    heal(exporter, namespace)
    objs.create_guard("g", spec(namespace, [flag_step()]))
    first = run_operator(namespace, *EVERY_EVALUATION)
    wait_phase(objs, "g", "Watching")

    objs.annotate_guard("g", CONTAIN_NOW, "abc")
    status = wait_phase(objs, "g", "Contained")
    assert [a["id"] for a in status["actions"]] == ["1-featureflag-0"]
    wait_status(objs, "g", lambda s: (s.get("incident") or {}).get("recoveredAt"))
    first.stop()

    run_operator(namespace, *EVERY_EVALUATION)
    seen = wait_evaluations(objs, "g", 3)
    assert {len(s["actions"]) for s in seen.values()} == {1}, seen
    assert objs.config_map("flags")["data"]["new-checkout"] == "false"

    # Make the step applicable again. The incident is re-armed first: turning the flag
    # back on while it is open would be a revert, applied again (tests/e2e/test_gitops.py).
    objs.annotate_guard("g", REARM, "1")
    wait_phase(objs, "g", "Watching")
    set_flag(objs, "flags", "new-checkout", "true")
    wait_status(objs, "g", lambda s: readiness(s, "FeatureFlag").get("ready") is True)
    seen = wait_evaluations(objs, "g", 3)
    assert {len(s["actions"]) for s in seen.values()} == {1}, seen
    assert {s["phase"] for s in seen.values()} == {"Watching"}, seen
    status = objs.status("g")
    assert [a["id"] for a in status["actions"]] == ["1-featureflag-0"]
    assert status["handledAnnotations"][CONTAIN_NOW] == "abc"
    assert objs.config_map("flags")["data"]["new-checkout"] == "true"
    assert len([e for e in objs.events("g") if e["reason"] == "StepApplied"]) == 1


def test_a_guard_keeps_guarding_after_its_release_is_known_good(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_config_map("flags", {"new-checkout": "true"})
    heal(exporter, namespace)
    objs.create_guard("g", spec(namespace, [flag_step()], knownGoodAfterSeconds=2))
    run_operator(namespace, *EVERY_EVALUATION)
    good = wait_status(objs, "g", lambda s: s.get("lastKnownGood"))["lastKnownGood"]
    assert good["revision"] == "1"

    seen = wait_evaluations(objs, "g", 3)
    assert {s["phase"] for s in seen.values()} == {"Watching"}, seen
    assert {s["lastEvaluation"]["verdict"] for s in seen.values()} == {"Healthy"}

    breach(exporter, namespace)
    status = wait_phase(objs, "g", "Contained")
    assert [a["id"] for a in status["actions"]] == ["1-featureflag-0"]
    assert status["incident"]["number"] == 1
    assert "error-rate 0.5 > 0.1" in status["actions"][0]["reason"]
    assert objs.config_map("flags")["data"]["new-checkout"] == "false"
    assert status["lastKnownGood"]["revision"] == "1"
