"""GitOps-safe containment on the real API server: reverts found and bounded, known-bad
releases never re-arm, Flux paused by annotation, exactly-once across a SIGKILL during a
re-apply.

The reconciler here is tests/e2e/reconciler.py: a SIMULATION of what Argo CD self-heal and
Flux's kustomize-controller are documented to do to the objects (re-apply the Git version
every few seconds with their own field manager; Flux skips an object annotated
`kustomize.toolkit.fluxcd.io/reconcile: disabled`). The real controllers do not run here.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import pytest
from chart import render
from kubernetes import client as k8s
from objects import Objects, condition
from reconciler import ARGO, Reconciler
from test_containment import bad_metric
from test_containment import spec as containment_spec
from test_security import author, created_after_grant, minimal  # noqa: F401 (the fixture)

from conftest import extra_namespace
from devcluster import crds
from devcluster.versions import ARGOCD_VERSION, cache_root
from waiting import wait_until

MARKER = "releaseguard.io/action"
MANAGER = "argocd-sim"
ROUTE_IN_GIT = {
    "spec": {
        "rules": [
            {
                "backendRefs": [
                    {"name": "checkout-v1", "port": 80, "weight": 90},
                    {"name": "checkout-v2", "port": 80, "weight": 10},
                ]
            }
        ]
    }
}
CANARY = {
    "type": "CanaryWeight",
    "cost": 5,
    "canaryWeight": {"httpRoute": "checkout", "canaryBackend": "checkout-v2"},
}
FLAG = {"type": "FeatureFlag", "featureFlag": {"configMap": "flags", "key": "f", "value": "off"}}


def spec(query: str, steps: list[dict], **extra: Any) -> dict[str, Any]:
    """test_containment's guard, escalating only after 10 minutes: these tests see the
    re-applies, not an escalation by time."""
    return containment_spec(query, steps, **{"escalateAfterSeconds": 600, **extra})


def dump(objs: Objects) -> str:
    return json.dumps(objs.status("g"), indent=1)[-4000:]


def wait_status(objs: Objects, predicate: Any, timeout: float = 90) -> dict[str, Any]:
    return wait_until(
        lambda: (s := objs.status("g")) and predicate(s) and s,
        timeout=timeout,
        describe=lambda: dump(objs),
    )


def canary_weights(objs: Objects) -> dict[str, int]:
    refs = objs.http_route("checkout")["spec"]["rules"][0]["backendRefs"]
    return {r["name"]: r["weight"] for r in refs}


def canary_setup(cluster: Any, namespace: str, exporter: Any, steps: list[dict], **extra: Any):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_http_route("checkout", {"checkout-v1": 90, "checkout-v2": 10})
    objs.create_guard("g", spec(bad_metric(exporter, namespace), steps, **extra))
    sim = Reconciler(cluster.api, namespace, period=1.0, manager=MANAGER)
    sim.track("HTTPRoute", "checkout", ROUTE_IN_GIT)
    return objs, sim


def test_a_canary_reverted_three_times_is_reapplied_three_times_then_escalated(
    cluster, namespace, exporter, run_operator
):
    objs, sim = canary_setup(cluster, namespace, exporter, [CANARY, FLAG])
    objs.create_config_map("flags", {"f": "on"})
    run_operator(namespace)
    wait_status(objs, lambda s: s.get("phase") == "Contained")
    with sim:
        status = wait_status(
            objs, lambda s: any(a["type"] == "FeatureFlag" for a in s.get("actions") or [])
        )
    ids = [a["id"] for a in status["actions"]]
    assert ids == [
        "1-canaryweight-0",
        "1-canaryweight-0-r1",
        "1-canaryweight-0-r2",
        "1-canaryweight-0-r3",
        "1-featureflag-1",
    ], ids
    assert all(a["result"] == "Applied" for a in status["actions"])
    assert status["incident"]["reverts"] >= 4
    reverted = status["incident"]["reverted"]
    assert {r["manager"] for r in reverted} == {MANAGER}
    assert reverted[0]["field"] == "spec.rules[0].backendRefs[checkout-v2].weight"
    assert reverted[0]["value"] == "10"
    assert "re-apply 1 of 3" in status["actions"][1]["reason"]
    assert MANAGER in status["actions"][1]["reason"]
    # The backoff: the n-th re-apply waits intervalSeconds x 2^n after its revert.
    times = {r["action"]: r["time"] for r in reverted}
    for n, action in enumerate(status["actions"][1:4], start=1):
        found = times[status["actions"][n - 1]["id"]]
        waited = _seconds(action["time"]) - _seconds(found)
        assert waited >= 2**n - 0.01, (n, waited)
    warnings = objs.wait_event("g", "ContainmentReverted")
    assert warnings[0]["type"] == "Warning"
    assert MANAGER in warnings[0]["message"] and "HTTPRoute/checkout" in warnings[0]["message"]
    assert objs.config_map("flags")["data"] == {"f": "off"}
    managers = {m["manager"] for m in objs.http_route("checkout")["metadata"]["managedFields"]}
    assert {"releaseguard", MANAGER} <= managers


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_the_revert_limit_with_nothing_left_is_exhausted_naming_the_manager(
    cluster, namespace, exporter, run_operator
):
    objs, sim = canary_setup(cluster, namespace, exporter, [CANARY], onRevert={"reapply": 1})
    run_operator(namespace)
    wait_status(objs, lambda s: s.get("phase") == "Contained")
    with sim:
        status = wait_status(objs, lambda s: s.get("phase") == "Exhausted")
        assert MANAGER in status["message"]
        contained = condition(status, "Contained")
        assert (contained["status"], contained["reason"]) == ("False", "Reverted")
        assert MANAGER in contained["message"]
        assert [a["id"] for a in status["actions"]] == ["1-canaryweight-0", "1-canaryweight-0-r1"]
        exhausted = objs.wait_event("g", "Exhausted")
        assert len(exhausted) == 1 and MANAGER in exhausted[0]["message"]
        # Never a loop: the reconciler keeps writing, the guard writes no more.
        passes = sim.syncs
        wait_until(lambda: sim.syncs >= passes + 4, timeout=30, describe="4 more reconciler passes")
    status = objs.status("g")
    assert len(status["actions"]) == 2 and status["phase"] == "Exhausted"
    assert canary_weights(objs) == {"checkout-v1": 90, "checkout-v2": 10}


def test_flux_annotation_is_set_in_the_same_write_and_flux_leaves_the_route_alone(
    cluster, namespace, exporter, run_operator
):
    objs, _ = canary_setup(cluster, namespace, exporter, [CANARY], gitOps={"flux": True})
    flux = Reconciler(cluster.api, namespace, period=1.0, manager="kustomize-controller", flux=True)
    flux.track("HTTPRoute", "checkout", ROUTE_IN_GIT)
    run_operator(namespace)
    status = wait_status(objs, lambda s: s.get("phase") == "Contained")
    action = status["actions"][0]
    key = "kustomize.toolkit.fluxcd.io/reconcile"
    assert action["before"][key] == "" and action["after"][key] == "disabled"
    route = objs.http_route("checkout")
    assert route["metadata"]["annotations"][key] == "disabled"
    assert route["metadata"]["generation"] == 2, "weights and annotation in one write"
    with flux:
        wait_until(lambda: flux.syncs >= 4, timeout=30, describe="4 Flux passes")
    assert flux.writes == 0 and flux.skipped >= 4
    assert canary_weights(objs) == {"checkout-v1": 100, "checkout-v2": 0}
    status = objs.status("g")
    assert status["phase"] == "Contained" and status["incident"]["reverts"] == 0


def test_sigkill_during_a_reapply_records_it_once(cluster, namespace, exporter, run_operator):
    objs, sim = canary_setup(cluster, namespace, exporter, [CANARY])
    first = run_operator(namespace)
    wait_status(objs, lambda s: s.get("phase") == "Contained")
    first.stop()
    sim.sync()  # one reconciler pass while no operator runs
    assert canary_weights(objs) == {"checkout-v1": 90, "checkout-v2": 10}

    doomed = run_operator(namespace, faults=["--kill-after-write"])
    wait_until(lambda: not doomed.alive(), timeout=60, describe=doomed.log_tail)
    route = objs.http_route("checkout")
    assert "1-canaryweight-0-r1" in route["metadata"]["annotations"][MARKER]
    assert canary_weights(objs) == {"checkout-v1": 100, "checkout-v2": 0}
    ids = [a["id"] for a in objs.status("g")["actions"]]
    assert ids == ["1-canaryweight-0"], "killed before the status write"
    generation = route["metadata"]["generation"]

    run_operator(namespace)
    status = wait_status(objs, lambda s: len(s.get("actions") or []) == 2)
    seen = status["lastEvaluation"]["time"]
    wait_status(objs, lambda s: s["lastEvaluation"]["time"] > seen, timeout=30)
    status = objs.status("g")
    assert [a["id"] for a in status["actions"]] == ["1-canaryweight-0", "1-canaryweight-0-r1"]
    assert status["phase"] == "Contained"
    assert status["incident"]["reverts"] == 1
    assert objs.http_route("checkout")["metadata"]["generation"] == generation
    objs.wait_event("g", "ActionRecovered")


def test_a_known_bad_release_reapplied_never_rearms_and_a_new_release_does(
    cluster, namespace, exporter, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    query = f'max(rg_error_ratio{{guard="{namespace}"}})'
    exporter.set("rg_error_ratio", 0.0, {"guard": namespace})
    body = spec(query, [{"type": "Rollback"}], knownGoodAfterSeconds=2, onRevert={"reapply": 2})
    objs.create_guard("g", body)
    run_operator(namespace)
    wait_status(objs, lambda s: s.get("lastKnownGood"))

    objs.set_image("app", "registry.local/app:2")  # the bad release, as Git has it
    wait_status(objs, lambda s: (s.get("release") or {}).get("revision") == "2")
    exporter.set("rg_error_ratio", 0.5, {"guard": namespace})
    status = wait_status(objs, lambda s: s.get("phase") == "Contained")
    (bad,) = status["knownBad"]
    assert bad["images"] == ["registry.local/app:2"] and bad["rollbacks"] == 1

    image = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "app", "image": "registry.local/app:2"}]}}
        }
    }
    sim = Reconciler(cluster.api, namespace, period=2.0, manager=MANAGER)
    sim.track("Deployment", "app", image)
    with sim:  # Git re-applies the bad release every 2 s
        status = wait_status(objs, lambda s: s.get("phase") == "Exhausted", timeout=120)
        passes = sim.syncs
        wait_until(lambda: sim.syncs >= passes + 3, timeout=30, describe="3 more passes")
    status = objs.status("g")
    rollbacks = [
        a for a in status["actions"] if a["type"] == "Rollback" and a["result"] == "Applied"
    ]
    assert len(rollbacks) == 3, [a["id"] for a in status["actions"]]  # reapply + 1
    assert [a["id"] for a in rollbacks] == ["1-rollback-0", "1-rollback-0-r1", "1-rollback-0-r2"]
    assert status["knownBad"][0]["rollbacks"] == 3
    assert status["incident"]["number"] == 1 and not status["incident"]["closed"]
    assert not any(e["reason"] == "Rearmed" for e in objs.events("g"))
    assert MANAGER in status["message"]

    # A genuinely new release re-arms the guard.
    exporter.set("rg_error_ratio", 0.0, {"guard": namespace})
    objs.set_image("app", "registry.local/app:3")
    objs.wait_event("g", "Rearmed", timeout=60)
    status = wait_status(objs, lambda s: s.get("phase") == "Watching")
    assert status["incident"]["closed"]


def test_a_reconciler_every_2s_for_60s_gets_at_most_reapply_plus_one_writes(
    cluster, namespace, exporter, run_operator
):
    """The measure of issue 12: the guard's writes of the contained object, and whether it
    ever says Contained=True while the object is reverted (beyond one evaluation)."""
    objs, _ = canary_setup(cluster, namespace, exporter, [CANARY], intervalSeconds=2)
    sim = Reconciler(cluster.api, namespace, period=2.0, manager=MANAGER)
    sim.track("HTTPRoute", "checkout", ROUTE_IN_GIT)
    run_operator(namespace)
    wait_status(objs, lambda s: s.get("phase") == "Contained")
    samples: list[tuple[float, bool, str]] = []
    start = time.monotonic()
    with sim:
        while time.monotonic() - start < 60:
            reverted = canary_weights(objs)["checkout-v2"] != 0
            samples.append(
                (
                    time.monotonic(),
                    reverted,
                    condition(objs.status("g"), "Contained").get("status", ""),
                )
            )
            time.sleep(0.25)  # sampling cadence of the measurement, not a wait for a condition
    status = objs.status("g")
    writes = [a for a in status["actions"] if a["result"] == "Applied"]
    lying = _longest(samples, lambda s: s[1] and s[2] == "True")
    print(
        f"\nMEASURE reconciler writes={sim.writes} guard writes={len(writes)} "
        f"ids={[a['id'] for a in writes]} reverts={status['incident']['reverts']} "
        f"phase={status['phase']} longest Contained=True while reverted={lying:.2f}s "
        f"message={status['message']!r}"
    )
    assert len(writes) <= 3 + 1
    assert status["phase"] == "Exhausted" and MANAGER in status["message"]
    assert condition(status, "Contained")["status"] == "False"
    # One evaluation (2 s) plus the sampling step is how long a revert can go unseen.
    assert lying <= 2 + 1.0, lying


def _longest(samples: list[tuple[float, bool, str]], bad: Any) -> float:
    longest, since = 0.0, None
    for sample in samples:
        t = sample[0]
        if bad(sample):
            since = t if since is None else since
            longest = max(longest, t - since)
        else:
            since = None
    return longest


# --------------------------------------------------------------------------- Argo CD


@pytest.fixture(scope="session")
def argocd_crd(cluster: Any) -> None:
    """Argo CD's real Application CRD (from the argo-cd Go module, cached by devcluster);
    no Argo CD controller runs."""
    path = crds.argocd_application_crd(cache_root(), ARGOCD_VERSION)
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    ext = k8s.ApiextensionsV1Api(cluster.api)
    wait_until(
        lambda: any(
            c.type == "Established" and c.status == "True"
            for c in ext.read_custom_resource_definition(
                "applications.argoproj.io"
            ).status.conditions
            or []
        ),
        timeout=60,
        describe="CRD applications.argoproj.io Established",
    )


def create_application(cluster: Any, namespace: str, name: str) -> None:
    body = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name},
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://git.example.com/shop.git", "path": "checkout"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            "syncPolicy": {"automated": {"selfHeal": True, "prune": True}},
        },
    }
    k8s.CustomObjectsApi(cluster.api).create_namespaced_custom_object(
        *ARGO[:2], namespace, ARGO[2], body, _request_timeout=(3, 15)
    )


def application(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    return k8s.CustomObjectsApi(cluster.api).get_namespaced_custom_object(
        *ARGO[:2], namespace, ARGO[2], name, _request_timeout=(3, 15)
    )


def test_argo_cd_is_paused_with_the_first_applied_step_and_stops_undoing_it(
    cluster, namespace, exporter, run_operator, argocd_crd
):
    with extra_namespace(cluster, "argocd") as argo_ns:
        create_application(cluster, argo_ns, "checkout")
        objs, _ = canary_setup(
            cluster,
            namespace,
            exporter,
            [CANARY],
            gitOps={"argoCD": {"application": "checkout", "namespace": argo_ns}},
        )
        argo = Reconciler(
            cluster.api, namespace, period=1.0, manager=MANAGER, application=(argo_ns, "checkout")
        )
        argo.track("HTTPRoute", "checkout", ROUTE_IN_GIT)
        with argo:
            wait_until(lambda: argo.writes >= 2, timeout=30, describe="Argo CD syncing")
            run_operator(namespace, "--argocd-cross-namespace")
            status = wait_status(
                objs, lambda s: any(a["type"] == "GitOpsPause" for a in s.get("actions") or [])
            )
            pause = next(a for a in status["actions"] if a["type"] == "GitOpsPause")
            assert pause["id"] == "1-gitopspause-0" and pause["result"] == "Applied"
            assert pause["target"] == f"Application/{argo_ns}/checkout"
            assert pause["before"] == {
                "spec.syncPolicy.automated": {"selfHeal": True, "prune": True}
            }
            app = application(cluster, argo_ns, "checkout")
            assert "automated" not in app["spec"]["syncPolicy"]
            managers = {m["manager"] for m in app["metadata"]["managedFields"]}
            assert "releaseguard" in managers
            skipped = argo.skipped
            wait_until(lambda: argo.skipped >= skipped + 3, timeout=30, describe="paused syncs")
        # Argo CD may sync once between the step's write and the pause's (seen under load):
        # the step is then re-applied after its backoff, so wait for Contained.
        status = wait_status(objs, lambda s: s.get("phase") == "Contained", timeout=30)
        assert canary_weights(objs) == {"checkout-v1": 100, "checkout-v2": 0}
        assert [a["type"] for a in status["actions"]].count("GitOpsPause") == 1


def test_a_failed_argo_cd_pause_is_tried_again_and_lands_once_the_application_exists(
    cluster, namespace, exporter, run_operator, argocd_crd
):
    # The Application is missing at the fault, so the first pause fails; it appears, and a
    # later try (after intervalSeconds, then twice that: 4 s and 8 s) pauses it, once.
    objs, _ = canary_setup(
        cluster,
        namespace,
        exporter,
        [CANARY],
        intervalSeconds=4,
        gitOps={"argoCD": {"application": "checkout", "namespace": namespace}},
    )
    run_operator(namespace)

    def pauses(status: dict[str, Any]) -> list[dict[str, Any]]:
        return [a for a in status.get("actions") or [] if a["type"] == "GitOpsPause"]

    (first,) = pauses(wait_status(objs, pauses))
    assert first["id"] == "1-gitopspause-0" and first["result"] == "Failed", first
    assert f"Application {namespace}/checkout not found" in first["message"]
    create_application(cluster, namespace, "checkout")
    status = wait_status(objs, lambda s: pauses(s)[-1]["result"] == "Applied", timeout=60)
    *failed, applied = pauses(status)
    assert [a["result"] for a in failed] == ["Failed"] * len(failed) and len(failed) <= 2
    assert applied["id"] == f"1-gitopspause-0-t{len(failed) + 1}"
    assert "automated" not in application(cluster, namespace, "checkout")["spec"]["syncPolicy"]
    assert status["phase"] == "Contained"


def test_readiness_shows_a_missing_application_and_a_disallowed_namespace_before_any_incident(
    cluster, namespace, exporter, run_operator, argocd_crd
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    query = f'max(rg_error_ratio{{guard="{namespace}"}})'
    exporter.set("rg_error_ratio", 0.0, {"guard": namespace})
    step = {"type": "Scale", "scale": {"deployment": "app", "replicas": 0}}
    missing = {"argoCD": {"application": "nope", "namespace": namespace}}
    elsewhere = {"argoCD": {"application": "checkout", "namespace": "argocd"}}
    objs.create_guard("g", spec(query, [step], gitOps=missing))
    objs.create_guard("h", spec(query, [step], gitOps=elsewhere))
    run_operator(namespace)  # without --argocd-cross-namespace

    def pause_line(name: str) -> dict[str, Any] | None:
        lines = objs.status(name).get("readiness") or []
        return next((r for r in lines if r["type"] == "GitOpsPause"), None)

    line = wait_until(lambda: pause_line("g"), timeout=60, describe=lambda: objs.status("g"))
    assert line["ready"] is False and line["index"] == -1
    assert f"Application {namespace}/nope not found" in line["reason"]
    line = wait_until(lambda: pause_line("h"), timeout=60, describe=lambda: objs.status("h"))
    assert line["ready"] is False and "--argocd-cross-namespace" in line["reason"]
    assert objs.status("g")["phase"] == "Watching"


def test_the_chart_grants_argo_cd_applications_only_when_asked():
    plain = render("rg", "ops")
    (deployment,) = [d for d in plain if d["kind"] == "Deployment"]
    assert (
        "--argocd-cross-namespace"
        not in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    assert "argoproj.io" not in json.dumps([d for d in plain if "Role" in d["kind"]])

    docs = render("rg", "ops", {"argocd": {"enabled": True, "applicationNamespaces": ["argocd"]}})
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    assert (
        "--argocd-cross-namespace"
        in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    (role,) = [d for d in docs if d["kind"] == "Role" and d["metadata"]["namespace"] == "argocd"]
    assert role["rules"] == [
        {
            "apiGroups": ["argoproj.io"],
            "resources": ["applications"],
            "verbs": ["get", "update", "patch"],
        }
    ]
    (binding,) = [
        d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["namespace"] == "argocd"
    ]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    (cluster_role,) = [
        d
        for d in docs
        if d["kind"] == "ClusterRole" and any("releaseguards" in r["resources"] for r in d["rules"])
    ]
    assert any("argoproj.io" in r["apiGroups"] for r in cluster_role["rules"])


def test_the_admission_policy_needs_patch_on_the_application_in_its_own_namespace(
    cluster,
    namespace,
    author,  # noqa: F811 (the fixture, shared with test_security)
    argocd_crd,
):
    with extra_namespace(cluster, "argocd") as argo_ns:
        body = minimal(gitOps={"argoCD": {"application": "checkout", "namespace": argo_ns}})
        denied = f'may not patch applications.argoproj.io "checkout" in namespace {argo_ns}'
        refused = author.create_guard("g", body)
        assert refused.returncode != 0 and denied in refused.stderr, refused.stderr

        # The same right in the guard's namespace is not the right on the Application.
        author.grant("patch", "applications.argoproj.io", "checkout")
        created = author.create_guard("g", body)
        assert created.returncode != 0 and denied in created.stderr, created.stderr

        for kind, extra in (
            ("role", ["--verb=patch", "--resource=applications.argoproj.io"]),
            ("rolebinding", ["--role=app-patch", f"--serviceaccount={namespace}:author"]),
        ):
            cluster.kubectl("create", kind, "app-patch", *extra, "-n", argo_ns)
        created_after_grant(author, "g", body)


def test_sigkill_right_after_the_argo_cd_pause_records_it_once(
    cluster, namespace, exporter, run_operator, argocd_crd
):
    create_application(cluster, namespace, "checkout")
    objs, _ = canary_setup(cluster, namespace, exporter, [CANARY])
    first = run_operator(namespace)
    wait_status(objs, lambda s: s.get("phase") == "Contained")
    first.stop()
    # Mid-incident the guard learns of Argo CD: the pause is due at once.
    objs.patch_guard(
        "g", {"spec": {"gitOps": {"argoCD": {"application": "checkout", "namespace": namespace}}}}
    )

    doomed = run_operator(namespace, faults=["--kill-after-write"])
    wait_until(lambda: not doomed.alive(), timeout=60, describe=doomed.log_tail)
    app = application(cluster, namespace, "checkout")
    assert "automated" not in app["spec"]["syncPolicy"]
    assert "1-gitopspause-0" in app["metadata"]["annotations"][MARKER]
    assert [a["id"] for a in objs.status("g")["actions"]] == ["1-canaryweight-0"]
    generation = app["metadata"]["generation"]

    run_operator(namespace)
    status = wait_status(objs, lambda s: len(s.get("actions") or []) == 2)
    seen = status["lastEvaluation"]["time"]
    wait_status(objs, lambda s: s["lastEvaluation"]["time"] > seen, timeout=30)
    status = objs.status("g")
    assert [a["id"] for a in status["actions"]] == ["1-canaryweight-0", "1-gitopspause-0"]
    pause = status["actions"][1]
    assert pause["result"] == "Applied"
    assert pause["before"] == {"spec.syncPolicy.automated": {"selfHeal": True, "prune": True}}
    assert application(cluster, namespace, "checkout")["metadata"]["generation"] == generation
