"""The local cluster does what the operator's e2e tests rely on.

Deployments roll out to Ready pods (kwok plays kubelet), an image change makes
revision 2, Prometheus scrapes a target registered at run time, and the
operator starts and watches its namespace.
"""

from __future__ import annotations

import math
from typing import Any

from kubernetes import client as k8s

from waiting import wait_until

REVISION = "deployment.kubernetes.io/revision"
ROLLOUT_TIMEOUT = 60


def deployment(name: str, image: str, replicas: int = 2) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def pod_ready(pod: k8s.V1Pod) -> bool:
    conditions = pod.status.conditions or []
    return pod.status.phase == "Running" and any(
        c.type == "Ready" and c.status == "True" for c in conditions
    )


def wait_rolled_out(apps: k8s.AppsV1Api, namespace: str, name: str, replicas: int) -> None:
    """Wait until the latest spec is observed and every replica is updated and available."""

    def rolled_out() -> bool:
        deploy = apps.read_namespaced_deployment(name, namespace)
        status = deploy.status
        return (
            (status.observed_generation or 0) >= deploy.metadata.generation
            and status.available_replicas == replicas
            and status.updated_replicas == replicas
            and (status.replicas or 0) == replicas
        )

    wait_until(
        rolled_out,
        timeout=ROLLOUT_TIMEOUT,
        describe=lambda: (
            f"{namespace}/{name} rolled out: "
            f"{apps.read_namespaced_deployment(name, namespace).status}"
        ),
    )


def test_deployment_becomes_available_with_ready_pods(cluster, namespace):
    apps = k8s.AppsV1Api(cluster.api)
    core = k8s.CoreV1Api(cluster.api)
    apps.create_namespaced_deployment(namespace, deployment("web", "registry.local/app:1"))

    wait_rolled_out(apps, namespace, "web", replicas=2)

    rollout = cluster.kubectl(
        "-n", namespace, "rollout", "status", "deployment/web", "--timeout=30s"
    )
    assert "successfully rolled out" in rollout.stdout
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 2
    assert all(pod_ready(pod) for pod in pods), [p.status for p in pods]
    assert {pod.spec.node_name for pod in pods} == {"kwok-node-0"}


def test_image_change_creates_revision_2(cluster, namespace):
    apps = k8s.AppsV1Api(cluster.api)
    apps.create_namespaced_deployment(namespace, deployment("web", "registry.local/app:1"))
    wait_rolled_out(apps, namespace, "web", replicas=2)

    container = {"name": "app", "image": "registry.local/app:2"}
    patch = {"spec": {"template": {"spec": {"containers": [container]}}}}
    apps.patch_namespaced_deployment("web", namespace, patch)

    def revision_2() -> k8s.V1ReplicaSet | None:
        for rs in apps.list_namespaced_replica_set(namespace, label_selector="app=web").items:
            if (rs.metadata.annotations or {}).get(REVISION) == "2":
                return rs
        return None

    rs = wait_until(revision_2, timeout=ROLLOUT_TIMEOUT, describe="ReplicaSet with revision 2")
    assert rs.spec.template.spec.containers[0].image == "registry.local/app:2"
    wait_rolled_out(apps, namespace, "web", replicas=2)
    old = [
        r
        for r in apps.list_namespaced_replica_set(namespace, label_selector="app=web").items
        if (r.metadata.annotations or {}).get(REVISION) == "1"
    ]
    assert [r.spec.replicas for r in old] == [0]


def test_prometheus_scrapes_registered_target(prometheus, exporter):
    query = f'rg_selftest_value{{exporter="{exporter.name}"}}'

    exporter.set("rg_selftest_value", 42.5, {"case": "a"})
    result = prometheus.wait_for(query, lambda r: len(r) == 1 and r[0]["value"][1] == "42.5")
    assert result[0]["metric"]["case"] == "a"

    exporter.set("rg_selftest_value", 7, {"case": "a"})
    prometheus.wait_for(query, lambda r: len(r) == 1 and r[0]["value"][1] == "7")

    exporter.set("rg_selftest_value", math.nan, {"case": "a"})
    prometheus.wait_for(query, lambda r: len(r) == 1 and r[0]["value"][1] == "NaN")


def test_operator_starts_and_watches(cluster, namespace, run_operator):
    operator = run_operator(namespace)

    assert operator.alive()
    assert "watching ReleaseGuards" in operator.log_text()
