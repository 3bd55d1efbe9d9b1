"""Fixtures for end-to-end tests against the local cluster (tools/devcluster).

Every test in tests/e2e is marked ``e2e``. The session-scoped ``cluster``
fixture reuses the cluster that ``make cluster-up`` started, or starts one
(safe under pytest-xdist: devcluster serialises ``up`` with a file lock).
Tests get an isolated ``namespace`` each, can register scrape targets with
``prometheus``/``exporter``, and can start the operator with ``run_operator``.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import shutil
import signal
import string
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import client as k8s
from kubernetes import config as k8s_config

import devcluster
from devcluster.exporter import Exporter
from devcluster.launch import operator_argv
from trafficsim import Profile, Routing, Simulator, serve
from waiting import wait_until

E2E_DIR = Path(__file__).resolve().parent
KUBECTL_TIMEOUT = 60.0
OPERATOR_READY_LINE = "watching ReleaseGuards"
OPERATOR_START_TIMEOUT = 60.0
PROMETHEUS_TIMEOUT = 10.0
# API groups whose objects may carry the operator's finalizer (see release_finalizers).
FINALIZER_GROUPS = frozenset({"releaseguard.io"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees every collected item, not just this directory's.
    for item in items:
        if E2E_DIR in item.path.resolve().parents:
            item.add_marker(pytest.mark.e2e)


def dns_label(text: str, max_length: int = 63) -> str:
    """``text`` as a DNS-1123 label with a short random suffix, at most ``max_length`` chars."""
    suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "test"
    base = base[: max_length - len(suffix) - 1].rstrip("-")
    return f"{base}-{suffix}"


# --------------------------------------------------------------------------- cluster


class KubectlError(subprocess.CalledProcessError):
    """A failed kubectl call whose message includes its output."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


@dataclass
class Cluster:
    """Handle on the running local cluster."""

    info: devcluster.ClusterInfo
    api: k8s.ApiClient

    @property
    def kubeconfig(self) -> Path:
        return self.info.kubeconfig

    @property
    def log_dir(self) -> Path:
        return self.info.log_dir

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = KUBECTL_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl against the cluster; raises KubectlError if ``check``."""
        argv = [str(self.info.kubectl), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, argv, result.stdout, result.stderr)
        return result


@pytest.fixture(scope="session")
def cluster(repo_root: Path) -> Iterator[Cluster]:
    """The local cluster (reused if running, else started); sets KUBECONFIG for the session."""
    try:
        info = devcluster.ensure_up(repo_root)
    except devcluster.MissingBinaryError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"local cluster binaries missing: {error}")
    api = k8s_config.new_client_from_config(config_file=str(info.kubeconfig))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(info.kubeconfig))
        patch.setenv("PROMETHEUS_URL", info.prometheus_url)
        yield Cluster(info=info, api=api)
    api.close()


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test; deleted (without waiting) afterwards."""
    name = dns_label(request.node.name)
    core = k8s.CoreV1Api(cluster.api)
    core.create_namespace(
        k8s.V1Namespace(
            metadata=k8s.V1ObjectMeta(name=name, labels={"releaseguard.dev/e2e": "true"})
        )
    )

    def default_service_account() -> bool:
        names = core.list_namespaced_service_account(name).items
        return any(sa.metadata.name == "default" for sa in names)

    # Pods are rejected until the serviceaccount controller creates "default".
    wait_until(default_service_account, timeout=30, describe=f"ServiceAccount {name}/default")
    yield name
    try:
        core.delete_namespace(name, propagation_policy="Background")
    except k8s.ApiException as error:
        if error.status != 404:
            raise
    release_finalizers(cluster.api, name)


@contextmanager
def extra_namespace(
    cluster: Cluster, base: str, labels: Mapping[str, str] | None = None
) -> Iterator[str]:
    """A further namespace for a test (unique name from ``base``), deleted afterwards
    like ``namespace``, the operator's finalizers released."""
    name = dns_label(base)
    core = k8s.CoreV1Api(cluster.api)
    labels = {"releaseguard.dev/e2e": "true", **(labels or {})}
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name, labels=labels)))
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name, propagation_policy="Background")
        except k8s.ApiException as error:
            if error.status != 404:
                raise
        release_finalizers(cluster.api, name)


def release_finalizers(api: k8s.ApiClient, namespace: str) -> None:
    """Drop finalizers from the operator's objects in ``namespace``.

    The operator (kopf) puts a finalizer on the guards it handles, and
    ``run_operator`` stops it before the namespace is deleted, so nothing would
    ever remove those finalizers and the namespace would stay Terminating.
    """
    custom = k8s.CustomObjectsApi(api)
    for crd in k8s.ApiextensionsV1Api(api).list_custom_resource_definition().items:
        if crd.spec.group not in FINALIZER_GROUPS or crd.spec.scope != "Namespaced":
            continue
        version = next(v.name for v in crd.spec.versions if v.storage)
        plural = crd.spec.names.plural
        items = custom.list_namespaced_custom_object(crd.spec.group, version, namespace, plural)
        for item in items.get("items", []):
            if not item["metadata"].get("finalizers"):
                continue
            try:
                custom.patch_namespaced_custom_object(
                    crd.spec.group,
                    version,
                    namespace,
                    plural,
                    item["metadata"]["name"],
                    {"metadata": {"finalizers": None}},
                )
            except k8s.ApiException as error:
                if error.status not in (404, 409):
                    raise


# --------------------------------------------------------------------------- prometheus


@dataclass
class Prometheus:
    """The cluster's Prometheus: register targets (file_sd) and query."""

    url: str
    targets_dir: Path

    def add_target(self, name: str, port: int, labels: Mapping[str, str] | None = None) -> Path:
        """Scrape 127.0.0.1:``port`` (as ``<name>.json``, written atomically)."""
        return devcluster.write_target(self.targets_dir, name, port, labels)

    def remove_target(self, name: str) -> None:
        (self.targets_dir / f"{name}.json").unlink(missing_ok=True)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; the result list (scalars come back as one sample with no labels)."""
        response = requests.get(
            f"{self.url}/api/v1/query", params={"query": promql}, timeout=PROMETHEUS_TIMEOUT
        )
        payload = response.json()
        if payload.get("status") != "success":
            raise AssertionError(f"query {promql!r} failed: {payload}")
        data = payload["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def wait_for(
        self,
        promql: str,
        predicate: Callable[[list[dict[str, Any]]], object],
        timeout: float = 30,
    ) -> list[dict[str, Any]]:
        """Poll ``query(promql)`` until ``predicate(result)`` is truthy; return that result."""
        last: list[list[dict[str, Any]]] = [[]]

        def attempt() -> list[dict[str, Any]] | None:
            last[0] = self.query(promql)
            return last[0] if predicate(last[0]) else None

        return wait_until(
            attempt,
            timeout=timeout,
            interval=0.25,
            describe=lambda: f"PromQL {promql!r} to satisfy the predicate (last: {last[0]})",
            ignore=(requests.RequestException,),
        )


@pytest.fixture(scope="session")
def prometheus(cluster: Cluster) -> Prometheus:
    return Prometheus(url=cluster.info.prometheus_url, targets_dir=cluster.info.targets_dir)


@pytest.fixture
def exporter(prometheus: Prometheus, request: pytest.FixtureRequest) -> Iterator[Exporter]:
    """A test-controlled exporter, scraped as target ``exporter.name``.

    Its series carry the label ``exporter="<exporter.name>"``; filter on it in queries.
    Prometheus scrapes a new target first some seconds later (file_sd updates are batched,
    every 5 s): a test that asserts on data, not only on a breach, waits for its series
    with ``prometheus.wait_for`` first.
    """
    name = dns_label(f"exp-{request.node.name}")
    with Exporter(name=name) as exp:
        prometheus.add_target(name, exp.port, {"exporter": name})
        try:
            yield exp
        finally:
            prometheus.remove_target(name)


# --------------------------------------------------------------------------- operator


class OperatorProcess:
    """A running ``python -m releaseguard run`` started by ``run_operator``."""

    def __init__(self, argv: list[str], log_path: Path, env: Mapping[str, str], cwd: Path):
        self.argv = argv
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, fragment: str, timeout: float = OPERATOR_START_TIMEOUT) -> None:
        """Wait until the log contains ``fragment``; fail early if the process exits."""

        def seen() -> bool:
            if fragment in self.log_text():
                return True
            if not self.alive():
                raise AssertionError(
                    f"operator exited with code {self.popen.returncode} before logging "
                    f"{fragment!r}; log {self.log_path}:\n{self.log_tail()}"
                )
            return False

        wait_until(
            seen,
            timeout=timeout,
            describe=lambda: f"{fragment!r} in {self.log_path}; log tail:\n{self.log_tail()}",
        )

    def kill(self) -> None:
        """SIGKILL (a crash, as far as the operator can tell)."""
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait (SIGKILL after ``timeout``); returns the exit code."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.wait()


@pytest.fixture
def run_operator(
    cluster: Cluster, prometheus: Prometheus, repo_root: Path
) -> Iterator[Callable[..., OperatorProcess]]:
    """Factory: ``run_operator(namespace, *extra_args, env=None, faults=()) -> OperatorProcess``,
    ready.

    Starts the operator for ``namespace`` with this cluster's kubeconfig and
    Prometheus, logging to ``.devcluster/logs/operator-<ns>-<n>.log``, and
    returns once it logs "watching ReleaseGuards". Stops every one at teardown.
    ``faults``: flags of tests/e2e/faulty_operator.py (e.g. "--kill-after-write"),
    which runs the same CLI with faults injected at its Cluster.
    """
    started: list[OperatorProcess] = []
    counter = itertools.count(1)

    def start(
        namespace: str,
        *extra_args: str,
        env: Mapping[str, str] | None = None,
        faults: Sequence[str] = (),
    ) -> OperatorProcess:
        argv = operator_argv(namespace, prometheus.url, *extra_args)
        if faults:  # [python, -m, releaseguard, run, ...] -> [python, faulty_operator.py, ...]
            argv = [argv[0], str(E2E_DIR / "faulty_operator.py"), *faults, *argv[3:]]
        env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        log_path = cluster.log_dir / f"operator-{namespace}-{next(counter)}.log"
        operator = OperatorProcess(argv, log_path, env, cwd=repo_root)
        started.append(operator)
        operator.wait_for_log(OPERATOR_READY_LINE, timeout=OPERATOR_START_TIMEOUT)
        return operator

    yield start
    for operator in started:
        operator.stop()


def pytest_configure(config: pytest.Config) -> None:
    """Point pytest-kind at a local kind (and kubectl) instead of letting it download them."""
    option = config.option
    kind = shutil.which("kind")
    if kind and hasattr(option, "kind_bin") and not option.kind_bin:
        option.kind_bin = kind
    kubectl = shutil.which("kubectl")
    if kubectl and hasattr(option, "kind_kubectl_bin") and not option.kind_kubectl_bin:
        option.kind_kubectl_bin = kubectl


# --------------------------------------------------------------------------- traffic


@pytest.fixture
def traffic(cluster: Cluster, prometheus: Prometheus) -> Iterator[Callable[..., Simulator]]:
    """Factory: ``traffic(namespace, app, http_route=None, service="", rate=100.0,
    profiles=None) -> Simulator``, running and scraped by Prometheus.

    Its series carry ``namespace="<namespace>"`` (a file_sd target label), so guards
    filter on it. Fault injection: ``sim.set_profile("v2", error_ratio=0.3)``.
    """
    running: list[tuple[Simulator, Any, str]] = []

    def start(
        namespace: str,
        app: str,
        http_route: str | None = None,
        service: str = "",
        rate: float = 100.0,
        profiles: Mapping[str, Profile] | None = None,
    ) -> Simulator:
        sim = Simulator(
            cluster.api,
            Routing(namespace, app, http_route, service),
            rate=rate,
            profiles=dict(profiles or {}),
        )
        server = serve(sim)
        target = dns_label(f"sim-{namespace}")
        prometheus.add_target(target, server.server_address[1], {"namespace": namespace})
        running.append((sim.start(), server, target))
        return sim

    yield start
    for sim, server, target in running:
        prometheus.remove_target(target)
        sim.stop()
        server.shutdown()
