"""The operator's watch-fed copies of guarded Deployments and their ReplicaSets
(adapters/targets.py) on the real API server: a target created after its guard and a
rollout after start are seen, evaluations are then served from the copies rather than
reads, nothing that no guard names is kept, and the last guard to go drops them."""

from __future__ import annotations

import json
from typing import Any

from objects import GROUP, PLURAL, VERSION, Objects

from devcluster.launch import LOCAL_METRICS, operator_metrics_url, read_metrics
from waiting import wait_until

EVALUATIONS = "releaseguard_evaluations_total"
READS = "releaseguard_target_reads_total"
KEPT = 'releaseguard_target_cache_objects{kind="%s"}'
SPEC: dict[str, Any] = {
    "target": {"deployment": "app"},
    "intervalSeconds": 1,
    "metrics": [{"name": "up", "query": "vector(0)", "max": 1}],
}


def kept(url: str) -> tuple[float, float]:
    """(Deployments, ReplicaSets) the operator keeps a copy of."""
    metrics = read_metrics(url)
    return metrics[KEPT % "Deployment"], metrics[KEPT % "ReplicaSet"]


def wait_kept(url: str, deployments: int, replica_sets: int, timeout: float = 30) -> None:
    wait_until(
        lambda: kept(url) == (deployments, replica_sets),
        timeout=timeout,
        describe=lambda: (
            f"{deployments} Deployment(s), {replica_sets} ReplicaSet(s) kept: {kept(url)}"
        ),
    )


def wait_served_from_copies(url: str, evaluations: int = 5, timeout: float = 60) -> None:
    """Wait for a run of `evaluations` evaluations in which none read its target from the
    API server: the copies held the target and its current ReplicaSet."""
    start = [read_metrics(url)]

    def quiet() -> bool:
        now = read_metrics(url)
        if now.get(READS, 0.0) != start[0].get(READS, 0.0):
            start[0] = now
            return False
        return now.get(EVALUATIONS, 0.0) >= start[0].get(EVALUATIONS, 0.0) + evaluations

    wait_until(
        quiet,
        timeout=timeout,
        describe=lambda: (
            f"{evaluations} evaluations without a read; since "
            f"{ {k: start[0].get(k) for k in (EVALUATIONS, READS)} }: "
            f"{ {k: read_metrics(url).get(k) for k in (EVALUATIONS, READS)} }"
        ),
    )


def wait_release(objs: Objects, name: str, revision: str, image: str) -> None:
    wait_until(
        lambda: (
            (r := objs.status(name).get("release") or {}).get("revision") == revision
            and r.get("images") == [image]
        ),
        timeout=60,
        describe=lambda: json.dumps(objs.status(name), indent=1)[-2000:],
    )


def test_a_target_created_after_its_guard_is_seen_and_unguarded_objects_are_not_kept(
    cluster, namespace, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("other-1", "registry.local/other:1")
    objs.create_guard("g", SPEC)
    operator = run_operator(namespace, *LOCAL_METRICS)
    url = operator_metrics_url(operator.log_path)
    wait_until(
        lambda: (
            (s := objs.status("g")).get("phase") == "Invalid"
            and "Deployment app not found" in s.get("message", "")
        ),
        timeout=60,
        describe=lambda: objs.status("g"),
    )

    objs.create_deployment("app", "registry.local/app:1")
    objs.create_deployment("other-2", "registry.local/other:1")  # streams by after start
    wait_release(objs, "g", "1", "registry.local/app:1")
    assert objs.status("g")["phase"] != "Invalid"
    for name in ("other-1", "other-2"):
        wait_until(lambda n=name: objs.replica_sets(n), timeout=30, describe=f"{name}'s RS")
    wait_served_from_copies(url)
    wait_kept(url, 1, 1)  # app and its ReplicaSet; not the others and theirs


def test_a_rollout_after_start_is_seen_and_the_last_guard_to_go_drops_the_copies(
    cluster, namespace, run_operator
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_guard("g1", SPEC)
    objs.create_guard("g2", SPEC)
    operator = run_operator(namespace, *LOCAL_METRICS)
    url = operator_metrics_url(operator.log_path)
    wait_release(objs, "g1", "1", "registry.local/app:1")
    wait_served_from_copies(url)

    objs.set_image("app", "registry.local/app:2")
    for name in ("g1", "g2"):
        wait_release(objs, name, "2", "registry.local/app:2")
    # Served from the copies again: they hold revision 2 and its new ReplicaSet (a stale
    # copy would have kept the release at revision 1).
    wait_served_from_copies(url)
    wait_kept(url, 1, 2)

    def delete(name: str) -> None:
        objs.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        wait_until(
            lambda: not objs.exists(objs.guard, name), timeout=30, describe=f"{name} deleted"
        )

    delete("g1")
    wait_served_from_copies(url)  # g2 still names app: its copies stay
    assert kept(url) == (1, 2)
    delete("g2")
    wait_kept(url, 0, 0)
