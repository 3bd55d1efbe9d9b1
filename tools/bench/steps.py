"""Benchmark: decision-to-patch latency of each step type on the local cluster.

It times exactly what the operator times between "the planner chose step N" and "the
write returned": `Kube.apply_step` (fresh read, compute the change, PUT with
resourceVersion). Between rounds the object is put back by hand, so each round really
changes something. Prints median and p95 per step type; asserts nothing.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config

import devcluster
from releaseguard.adapters import cluster as cluster_io
from releaseguard.adapters.kube import Kube
from releaseguard.domain import changes
from releaseguard.domain.models import GuardSpec, GuardStatus, KnownGood

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "e2e"))
from objects import Objects, deployment_available

from waiting import wait_until

ROUNDS = 20
STEPS: list[dict[str, Any]] = [
    {"type": "FeatureFlag", "featureFlag": {"configMap": "flags", "key": "f", "value": "off"}},
    {"type": "CanaryWeight", "canaryWeight": {"httpRoute": "route", "canaryBackend": "v2"}},
    {"type": "Scale", "scale": {"deployment": "canary", "replicas": 0}},
    {
        "type": "BlueGreen",
        "blueGreen": {"service": "svc", "selectorKey": "color", "stableValue": "blue"},
    },
    {"type": "Rollback"},
]


def setup(objs: Objects) -> None:
    objs.create_deployment("app", "registry.local/app:1")
    wait_until(lambda: deployment_available(objs.deployment("app")), timeout=60)
    objs.set_image("app", "registry.local/app:2")
    wait_until(lambda: len(objs.replica_sets("app")) == 2, timeout=60)
    objs.create_config_map("flags", {"f": "on"})
    objs.create_http_route("route", {"v1": 90, "v2": 10})
    objs.create_deployment("canary", "registry.local/app:2")
    objs.create_deployment("blue", "registry.local/shop:1", labels={"color": "blue"})
    objs.create_service("svc", {"color": "green"})
    wait_until(lambda: deployment_available(objs.deployment("blue")), timeout=60)


def reset(objs: Objects, api: client.ApiClient, index: int) -> None:
    ns = objs.ns
    if index == 0:
        objs.core.patch_namespaced_config_map("flags", ns, {"data": {"f": "on"}})
    elif index == 1:
        route = objs.http_route("route")
        for ref in route["spec"]["rules"][0]["backendRefs"]:
            ref["weight"] = 10 if ref["name"] == "v2" else 90
        objs.custom.replace_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", ns, "httproutes", "route", route
        )
    elif index == 2:
        objs.apps.patch_namespaced_deployment("canary", ns, {"spec": {"replicas": 1}})
    elif index == 3:
        objs.core.patch_namespaced_service("svc", ns, {"spec": {"selector": {"color": "green"}}})
    else:
        objs.set_image("app", f"registry.local/app:{uuid.uuid4().hex[:6]}")


def readiness_cost(
    kube: Kube, api: client.ApiClient, ns: str, spec: GuardSpec, status: GuardStatus
) -> None:
    """What one evaluation's readiness check costs for these five steps: API requests
    (counted at the client) and wall time, on top of the target reads every evaluation
    makes anyway (GET Deployment, LIST ReplicaSets)."""
    calls: list[str] = []
    original = api.call_api

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(" ".join(str(a) for a in args[:2]))
        return original(*args, **kwargs)

    target, sets, _ = cluster_io.target(kube, ns, "app")
    api.call_api = counting  # type: ignore[method-assign]
    try:
        samples = []
        for _ in range(ROUNDS):
            calls.clear()
            t0 = time.perf_counter()
            cluster_io.view_steps(kube, ns, spec, status, target, sets)
            samples.append((time.perf_counter() - t0) * 1000)
    finally:
        api.call_api = original  # type: ignore[method-assign]
    samples.sort()
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(
        f"readiness of {len(spec.steps)} steps per evaluation: {len(calls)} API requests, "
        f"median {statistics.median(samples):.1f} ms, p95 {p95:.1f} ms"
    )
    for call in calls:
        print(f"  {call}")


def main() -> None:
    info = devcluster.ensure_up(Path.cwd())
    api = config.new_client_from_config(config_file=str(info.kubeconfig))
    ns = f"bench-steps-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": ns}})
    wait_until(
        lambda: any(
            sa.metadata.name == "default"
            for sa in client.CoreV1Api(api).list_namespaced_service_account(ns).items
        ),
        timeout=30,
    )
    objs = Objects(api, ns)
    kube = Kube(api)
    try:
        setup(objs)
        dep = objs.deployment("app")
        first = next(rs for rs in objs.replica_sets("app") if changes.revision_of(rs) == 1)
        good = KnownGood(
            revision="1",
            images=["registry.local/app:1"],
            pod_template_hash=changes.template_hash(first),
            since=datetime.now(UTC),
        )
        status = GuardStatus(last_known_good=good)
        spec = GuardSpec.model_validate(
            {
                "target": {"deployment": "app"},
                "metrics": [{"name": "m", "query": "vector(0)", "max": 1}],
                "steps": STEPS,
            }
        )
        assert dep
        readiness_cost(kube, api, ns, spec, status)
        print(f"decision-to-patch latency per step type ({ROUNDS} rounds each, namespace {ns}):")
        for index, step in enumerate(spec.steps):
            samples = []
            for round_ in range(ROUNDS):
                if round_:
                    reset(objs, api, index)
                if index == 4:  # the new revision's ReplicaSet must exist before rollback
                    wait_until(
                        lambda: (
                            changes.current_replica_set(
                                objs.deployment("app"), objs.replica_sets("app")
                            )
                            is not None
                        ),
                        timeout=30,
                    )
                t0 = time.perf_counter()
                record = cluster_io.apply_step(
                    kube,
                    ns,
                    spec,
                    status,
                    "bench",
                    index,
                    f"{round_}-{step.type.value.lower()}-{index}",
                    "bench",
                    lambda: datetime.now(UTC),
                )
                samples.append((time.perf_counter() - t0) * 1000)
                if record.result.value != "Applied":
                    sys.exit(f"{step.type.value} round {round_}: {record.result} {record.message}")
            samples.sort()
            print(
                f"  {step.type.value:13s} median {statistics.median(samples):6.1f} ms   "
                f"p95 {samples[int(len(samples) * 0.95) - 1]:6.1f} ms   "
                f"max {samples[-1]:6.1f} ms"
            )
    finally:
        client.CoreV1Api(api).delete_namespace(ns)


if __name__ == "__main__":
    main()
