"""A guard owns nothing: it never blocks its own deletion or its namespace's, whether the
operator runs or not, and a restarted operator releases the finalizer an older version
left on a guard (handlers._no_finalizer)."""

from __future__ import annotations

import time

from kubernetes import client as k8s
from objects import GROUP, PLURAL, VERSION, Objects

from conftest import extra_namespace
from devcluster.launch import EVERY_EVALUATION
from waiting import wait_until

OLD_FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"
DELETION_LIMIT = 15.0


def guard_spec() -> dict:
    return {
        "target": {"deployment": "app"},
        "intervalSeconds": 1,
        "metrics": [{"name": "up", "query": "vector(0)", "max": 1}],
    }


def evaluated(objs: Objects, name: str) -> bool:
    return bool(objs.status(name).get("lastEvaluation"))


def namespace_gone(core: k8s.CoreV1Api, name: str) -> bool:
    try:
        core.read_namespace(name)
    except k8s.ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def delete_and_time(cluster, name: str) -> float:
    core = k8s.CoreV1Api(cluster.api)
    started = time.monotonic()
    core.delete_namespace(name, propagation_policy="Background")
    wait_until(
        lambda: namespace_gone(core, name),
        timeout=DELETION_LIMIT + 15,
        interval=0.2,
        describe=lambda: core.read_namespace(name).status,
    )
    return time.monotonic() - started


def test_namespace_deletion_completes_with_the_operator_running(cluster, run_operator):
    with extra_namespace(cluster, "del-running") as ns:
        objs = Objects(cluster.api, ns)
        objs.create_deployment("app", "registry.local/app:1")
        objs.create_guard("g", guard_spec())
        operator = run_operator(ns, *EVERY_EVALUATION)
        wait_until(lambda: evaluated(objs, "g"), timeout=30, describe=lambda: objs.guard("g"))
        assert not objs.guard("g")["metadata"].get("finalizers")

        seconds = delete_and_time(cluster, ns)

        print(f"namespace deletion with the operator running: {seconds:.1f}s")
        assert seconds < DELETION_LIMIT
        assert operator.alive()
        assert "Traceback" not in operator.log_text()


def test_namespace_deletion_completes_with_the_operator_stopped(cluster, run_operator):
    with extra_namespace(cluster, "del-stopped") as ns:
        objs = Objects(cluster.api, ns)
        objs.create_deployment("app", "registry.local/app:1")
        objs.create_guard("g", guard_spec())
        operator = run_operator(ns, *EVERY_EVALUATION)
        wait_until(lambda: evaluated(objs, "g"), timeout=30, describe=lambda: objs.guard("g"))
        operator.stop()

        seconds = delete_and_time(cluster, ns)

        print(f"namespace deletion with the operator stopped: {seconds:.1f}s")
        assert seconds < DELETION_LIMIT


def test_a_restarted_operator_releases_an_old_versions_finalizer(cluster, namespace, run_operator):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ReleaseGuard",
            "metadata": {"name": "old", "finalizers": [OLD_FINALIZER]},
            "spec": guard_spec(),
        },
    )
    run_operator(namespace, *EVERY_EVALUATION)

    wait_until(
        lambda: not objs.guard("old")["metadata"].get("finalizers"),
        timeout=DELETION_LIMIT,
        describe=lambda: objs.guard("old")["metadata"],
    )
    objs.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "old")
    wait_until(
        lambda: _gone(objs, "old"),
        timeout=DELETION_LIMIT,
        describe="guard old deleted",
    )


def _gone(objs: Objects, name: str) -> bool:
    try:
        objs.guard(name)
    except k8s.ApiException as exc:
        return exc.status == 404
    return False
