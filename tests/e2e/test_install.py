"""The operator as the chart deploys it: the args and env `helm template` renders, the
chart's RBAC identity (a ServiceAccount token), leader election between replicas.

What stands in for the kubelet: a process per "pod", started with the rendered
container's args (the image's entrypoint is `releaseguard`, run here as
`python -m releaseguard`) and env, where the Downward API values (POD_NAMESPACE,
POD_NAME) are filled in as the kubelet would. Ports are chosen by the test through the
chart's values, because tests run in parallel on one machine.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3
import yaml
from chart import render, token_kubeconfig
from kubernetes import client as k8s
from kubernetes import watch
from objects import Objects
from test_containment import bad_metric, spec, wait_actions, wait_phase

from conftest import Cluster, OperatorProcess, dns_label, extra_namespace
from devcluster.launch import read_metrics
from releaseguard.adapters.leadership import LEASE_DURATION
from waiting import wait_until

RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
CLUSTER_SCOPED = ("ClusterRole", "ClusterRoleBinding")
LEADS = "leads (Lease"
STANDBY = "standby: acting once this replica holds the Lease"
FAILOVER_BOUND_SECONDS = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Pod:
    process: OperatorProcess
    metrics_port: int
    health_port: int

    def probe(self, path: str) -> int:
        url = f"http://127.0.0.1:{self.health_port}{path}"
        return requests.get(url, timeout=5).status_code

    def leader(self) -> float:
        """releaseguard_leader as this pod serves it."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        return read_metrics(url)["releaseguard_leader"]


class Install:
    """One rendered release: its RBAC applied, its "pods" started on demand. Each pod is
    rendered with its own ports (the only values that differ), since all run on one
    machine."""

    def __init__(self, cluster: Cluster, release: str, namespace: str, values: dict[str, Any]):
        self.cluster = cluster
        self.release = release
        self.namespace = namespace
        self.values = values
        self.docs = render(release, namespace, values)
        self.pods: list[Pod] = []
        rbac = [d for d in self.docs if d["kind"] in RBAC_KINDS]
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rbac))
        self.cluster_scoped = [d for d in rbac if d["kind"] in CLUSTER_SCOPED]

    @property
    def pod_spec(self) -> dict[str, Any]:
        deployment = next(d for d in self.docs if d["kind"] == "Deployment")
        return deployment["spec"]["template"]["spec"]

    @property
    def container(self) -> dict[str, Any]:
        containers = self.pod_spec["containers"]
        assert len(containers) == 1
        return containers[0]

    def env(self, container: dict[str, Any], pod: str) -> dict[str, str]:
        """The container's env as the kubelet resolves it for Pod `pod`."""
        downward = {"metadata.namespace": self.namespace, "metadata.name": pod}
        env = {}
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = str(item["value"])
                continue
            path = item["valueFrom"]["fieldRef"]["fieldPath"]
            assert path in downward, f"the test cannot resolve {item}: teach it"
            env[item["name"]] = downward[path]
        return env

    def start_pod(self, tmp_path: Path, ready_line: str) -> Pod:
        ports = {"metricsPort": free_port(), "healthPort": free_port()}
        docs = render(self.release, self.namespace, {**self.values, **ports})
        deployment = next(d for d in docs if d["kind"] == "Deployment")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert "command" not in container, "the image's entrypoint is `releaseguard`"
        name = f"{self.release}-{len(self.pods)}"
        account = self.pod_spec["serviceAccountName"]
        kubeconfig = token_kubeconfig(
            self.cluster, self.namespace, account, tmp_path / f"{name}.kubeconfig"
        )
        argv = [sys.executable, "-m", "releaseguard", *container["args"]]
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONUNBUFFERED": "1",
            "KUBECONFIG": str(kubeconfig),
            **self.env(container, name),
        }
        log_path = self.cluster.log_dir / f"operator-{self.namespace}-{name}.log"
        pod = Pod(
            OperatorProcess(argv, log_path, env, cwd=Path.cwd()),
            ports["metricsPort"],
            ports["healthPort"],
        )
        self.pods.append(pod)
        pod.process.wait_for_log(ready_line)
        return pod

    def stop(self) -> None:
        for pod in self.pods:
            pod.process.stop()
        for doc in self.cluster_scoped:
            self.cluster.kubectl(
                "delete", doc["kind"], doc["metadata"]["name"], "--ignore-not-found", check=False
            )


@pytest.fixture
def install(cluster: Cluster, prometheus: Any) -> Iterator[Callable[..., Install]]:
    """Factory: ``install(release_namespace, **values) -> Install`` against the local
    Prometheus; stops its pods and deletes its cluster-scoped objects afterwards."""
    made: list[Install] = []

    def make(namespace: str, **values: Any) -> Install:
        values = {"prometheusUrl": prometheus.url, **values}
        made.append(Install(cluster, dns_label("rg", 30), namespace, values))
        return made[-1]

    yield make
    for each in made:
        each.stop()


def lease_holder(cluster: Cluster, namespace: str, name: str) -> str | None:
    try:
        lease = k8s.CoordinationV1Api(cluster.api).read_namespaced_lease(name, namespace)
    except k8s.ApiException as error:
        if error.status == 404:
            return None
        raise
    return lease.spec.holder_identity


def denied_or_crashed(log: str) -> list[str]:
    """Log lines of a request the chart's RBAC forbade, or of a crash. A cluster where
    namespaces of earlier tests are still terminating forbids Event posts there for that
    reason alone (NamespaceTerminating): not an RBAC denial."""
    return [
        line
        for line in log.splitlines()
        if ("Forbidden" in line and "is being terminated" not in line) or "Traceback" in line
    ]


@pytest.mark.clusterwide
def test_the_default_install_contains_a_guard_in_a_namespace_made_after_it_started(
    cluster, namespace, exporter, install, tmp_path
):
    """Default values (`--all-namespaces`, leader election) with only the chart's
    ClusterRole: this is the install that crashed at start."""
    release = install(namespace)
    assert "--all-namespaces" in release.container["args"]
    assert "--leader-election" in release.container["args"]
    pod = release.start_pod(tmp_path, "watching ReleaseGuards in all namespaces")
    assert pod.probe("/healthz") == 200
    wait_until(lambda: pod.probe("/readyz") == 200, timeout=30, describe="/readyz")
    assert pod.leader() == 1

    with extra_namespace(cluster, "made-after") as later:
        objs = Objects(cluster.api, later)
        objs.create_deployment("app", "registry.local/app:1")
        objs.create_config_map("flags", {"f": "on"})
        step = {"type": "FeatureFlag", "featureFlag": {"configMap": "flags", "key": "f"}}
        step["featureFlag"]["value"] = "off"
        objs.create_guard("g", spec(bad_metric(exporter, later), [step]))

        status = wait_phase(objs, "g", "Contained")
        assert status["actions"][0]["result"] == "Applied"
        assert objs.config_map("flags")["data"]["f"] == "off"
        problems = denied_or_crashed(pod.process.log_text())
        assert not problems, "\n".join(problems[:5])


def test_the_namespaced_install_contains_with_roles_in_the_watched_namespace_only(
    cluster, namespace, exporter, install, tmp_path
):
    with extra_namespace(cluster, "watched") as watched:
        release = install(namespace, watchNamespaces=[watched])
        assert f"--namespace={watched}" in release.container["args"]
        account = f"system:serviceaccount:{namespace}:{release.pod_spec['serviceAccountName']}"
        for where, expected in ((["-n", watched], "yes"), (["-A"], "no")):
            answer = cluster.kubectl(
                "auth", "can-i", "get", "secrets", *where, f"--as={account}", check=False
            )
            assert answer.stdout.strip() == expected, (where, answer.stdout, answer.stderr)

        pod = release.start_pod(tmp_path, f"watching ReleaseGuards in {watched}")
        objs = Objects(cluster.api, watched)
        objs.create_deployment("app", "registry.local/app:1")
        objs.create_http_route("checkout", {"checkout-v1": 90, "checkout-v2": 10})
        step = {
            "type": "CanaryWeight",
            "canaryWeight": {"httpRoute": "checkout", "canaryBackend": "checkout-v2"},
        }
        objs.create_guard("g", spec(bad_metric(exporter, watched), [step]))
        status = wait_phase(objs, "g", "Contained")
        assert status["actions"][0]["result"] == "Applied"
        problems = denied_or_crashed(pod.process.log_text())
        assert not problems, "\n".join(problems[:5])


class ChangeCounter:
    """Counts writes to the ConfigMaps of a namespace through a watch (ConfigMaps have
    no generation to read it from)."""

    def __init__(self, api: k8s.ApiClient, namespace: str) -> None:
        self.modified: dict[str, int] = {}
        self.error: Exception | None = None
        self._watch = watch.Watch()
        core = k8s.CoreV1Api(api)
        version = core.list_namespaced_config_map(namespace).metadata.resource_version
        self._thread = threading.Thread(
            target=self._run, args=(core, namespace, version), daemon=True
        )
        self._thread.start()

    def _run(self, core: k8s.CoreV1Api, namespace: str, version: str) -> None:
        stream = self._watch.stream(
            core.list_namespaced_config_map,
            namespace,
            resource_version=version,
            timeout_seconds=300,
        )
        try:
            for event in stream:
                if event["type"] == "MODIFIED":
                    name = event["object"].metadata.name
                    self.modified[name] = self.modified.get(name, 0) + 1
        except urllib3.exceptions.ProtocolError as error:
            self.error = error  # a cut stream: the counts are incomplete

    def stop(self) -> None:
        self._watch.stop()


def three_step_ladder(cluster: Cluster, namespace: str, exporter: Any) -> Objects:
    """FeatureFlag (cost 10), CanaryWeight (20), Scale (30), escalating every 5 s."""
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    objs.create_deployment("canary", "registry.local/app:2")
    objs.create_config_map("flags", {"f": "on"})
    objs.create_http_route("checkout", {"checkout-v1": 90, "checkout-v2": 10})
    steps = [
        {"type": "Scale", "scale": {"deployment": "canary", "replicas": 0}},
        {
            "type": "CanaryWeight",
            "canaryWeight": {"httpRoute": "checkout", "canaryBackend": "checkout-v2"},
        },
        {"type": "FeatureFlag", "featureFlag": {"configMap": "flags", "key": "f", "value": "off"}},
    ]
    objs.create_guard("g", spec(bad_metric(exporter, namespace), steps, escalateAfterSeconds=5))
    return objs


def wait_holder(cluster: Cluster, namespace: str, lease: str, pod: str) -> float:
    """Wait until Pod `pod`'s process holds the Lease; the monotonic time it was seen."""
    wait_until(
        lambda: (lease_holder(cluster, namespace, lease) or "").startswith(pod + "_"),
        timeout=FAILOVER_BOUND_SECONDS + 15,
        interval=0.1,
        describe=lambda: f"Lease held by {pod} (now {lease_holder(cluster, namespace, lease)})",
    )
    return time.monotonic()


def test_a_standby_takes_over_when_the_leader_dies_and_no_step_is_repeated_or_lost(
    cluster, namespace, exporter, install, tmp_path
):
    """Two replicas of the namespaced install and a 3-step ladder. The leader is
    SIGKILLed after step 1; the standby takes over. A third replica (a rolling update's
    new pod) joins, and the second leader is stopped with SIGTERM (the rolling update's
    old pod) after step 2. Each step is applied exactly once, and the first takeover is
    within the bound."""
    release = install(namespace, watchNamespaces=[namespace])
    args = release.container["args"]
    lease = next(a.split("=", 1)[1] for a in args if a.startswith("--leader-election-name="))
    first = release.start_pod(tmp_path, LEADS)
    second = release.start_pod(tmp_path, STANDBY)
    assert first.leader() == 1
    assert second.leader() == 0
    assert second.probe("/readyz") == 200, "a standby is Ready, so rolling updates proceed"
    assert second.probe("/healthz") == 200

    flags = ChangeCounter(cluster.api, namespace)
    try:
        objs = three_step_ladder(cluster, namespace, exporter)
        wait_actions(objs, "g", 1)
        first.process.kill()
        killed = time.monotonic()
        failover = wait_holder(cluster, namespace, lease, f"{release.release}-1") - killed
        print(f"failover after SIGKILL: {failover:.1f} s")
        assert failover <= FAILOVER_BOUND_SECONDS
        second.process.wait_for_log(LEADS)
        wait_until(lambda: second.leader() == 1, timeout=10, describe="releaseguard_leader 1")

        wait_actions(objs, "g", 2, timeout=60)
        release.start_pod(tmp_path, STANDBY)
        assert second.process.stop() == 0
        stopped = time.monotonic()
        handover = wait_holder(cluster, namespace, lease, f"{release.release}-2") - stopped
        print(f"handover after SIGTERM: {handover:.1f} s")
        # The stopped leader released the Lease: no waiting for it to expire.
        assert handover < LEASE_DURATION

        actions = wait_actions(objs, "g", 3, timeout=60)
        assert [a["id"] for a in actions] == ["1-featureflag-2", "1-canaryweight-1", "1-scale-0"]
        assert all(a["result"] == "Applied" for a in actions), actions
        assert objs.status("g")["phase"] == "Contained"
        # Each object written once: a spec change bumps a Deployment's or an HTTPRoute's
        # generation; the ConfigMap's writes are counted on the watch.
        assert objs.deployment("canary")["metadata"]["generation"] == 2
        assert objs.http_route("checkout")["metadata"]["generation"] == 2
        assert flags.error is None, f"the ConfigMap watch broke: {flags.error}"
        assert flags.modified.get("flags") == 1, flags.modified
    finally:
        flags.stop()
