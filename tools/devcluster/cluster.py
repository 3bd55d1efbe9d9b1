"""Bring the whole local cluster up, reuse it, describe it, and take it down.

This is the orchestration: it decides whether a recorded cluster can be
reused, otherwise starts every component in dependency order (overlapping
what can overlap), waits for each readiness signal under a deadline, records
the result in ``state.json``, and on any failure stops what it started and
reports the failing component with the tail of its log.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devcluster import alertmanager, components, crds, kwok, prometheus
from devcluster.binaries import Binaries, find_binaries
from devcluster.certs import Pki, generate_pki
from devcluster.errors import ComponentError, DevclusterError, log_tail
from devcluster.kubeconfig import write_kubeconfig
from devcluster.layout import Layout
from devcluster.probes import ApiClient, Timeout, http_get, http_ok, insecure_context, poll
from devcluster.processes import (
    free_port,
    is_alive,
    orphaned_components,
    proc_stat,
    spawn,
    stop_groups,
    vm_kib,
)
from devcluster.state import (
    ClusterState,
    ComponentRecord,
    exclusive_lock,
    load_state,
    save_state,
)
from devcluster.versions import ARGOCD_VERSION, Versions, cache_root

ETCD = "etcd"
APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
SCHEDULER = "kube-scheduler"
KWOK = "kwok"
PROMETHEUS = "prometheus"
# Every component, in dependency order (the order status prints them).
COMPONENTS = (ETCD, APISERVER, CONTROLLER_MANAGER, SCHEDULER, KWOK, PROMETHEUS)
# Started after the others, on a reused cluster too when it is missing (see
# _ensure_alertmanager); a cluster without it is still usable.
ALERTMANAGER = alertmanager.NAME
KUBECTL_TIMEOUT = 120.0
MAX_PORT_RETRIES = 2
BIND_CONFLICT = "address already in use"

Say = Callable[[str], None]


def _say(message: str) -> None:
    """Progress output; never lets a closed stderr (``up | head``) abort a start."""
    with contextlib.suppress(OSError, ValueError):
        print(f"devcluster: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Deadlines:
    """Seconds each readiness wait may take on a slow (2-core) machine."""

    etcd: float = 30.0
    apiserver: float = 90.0
    controllers: float = 90.0
    scheduler: float = 60.0
    node: float = 60.0
    prometheus: float = 60.0
    crds: float = 60.0


@dataclass(frozen=True)
class ClusterInfo:
    """What a client (a test, a human) needs to use a running cluster."""

    root: Path
    state_dir: Path
    kubeconfig: Path
    apiserver_url: str
    prometheus_url: str
    targets_dir: Path
    kubectl: Path
    log_dir: Path
    reused: bool
    seconds: float
    pids: Mapping[str, int] = field(default_factory=dict)
    alertmanager_url: str = ""

    @classmethod
    def from_state(
        cls, layout: Layout, state: ClusterState, *, reused: bool, seconds: float
    ) -> ClusterInfo:
        return cls(
            root=layout.root,
            state_dir=layout.state_dir,
            kubeconfig=layout.kubeconfig,
            apiserver_url=state.apiserver_url,
            prometheus_url=state.prometheus_url,
            targets_dir=layout.targets_dir,
            kubectl=Path(state.kubectl),
            log_dir=layout.log_dir,
            reused=reused,
            seconds=seconds,
            pids={name: record.pid for name, record in state.components.items()},
            alertmanager_url=state.alertmanager_url,
        )


def kubectl_runner(
    kubectl: Path, kubeconfig: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """A function running kubectl against the cluster, raising on failure."""

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = [str(kubectl), f"--kubeconfig={kubeconfig}", *args]
        try:
            result = subprocess.run(
                argv,
                input=input,
                capture_output=True,
                text=True,
                timeout=KUBECTL_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise DevclusterError(f"kubectl {' '.join(args)}: timed out") from error
        if result.returncode != 0:
            raise DevclusterError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
        return result

    return run


# --------------------------------------------------------------------------- launching


@dataclass
class _Proc:
    name: str
    build: Callable[[dict[str, int]], list[str]]
    port_names: tuple[str, ...]
    log: Path
    popen: subprocess.Popen[bytes]
    ports: dict[str, int]
    argv: list[str]
    start_ticks: int
    restarts: int = 0


class _Launcher:
    """Starts the components of one cold ``up``; stops them all if that ``up`` fails."""

    def __init__(self, layout: Layout, say: Say) -> None:
        self.layout = layout
        self.say = say
        self.taken: set[int] = set()
        self.procs: dict[str, _Proc] = {}

    def start(
        self,
        name: str,
        port_names: Sequence[str],
        build: Callable[[dict[str, int]], list[str]],
    ) -> _Proc:
        ports = {port: free_port(self.taken) for port in port_names}
        argv = build(ports)
        log = self.layout.log(name)
        try:
            popen = spawn(argv, log)
        except OSError as error:
            raise ComponentError(name, f"could not be started: {error}", log) from error
        stat = proc_stat(popen.pid)
        proc = _Proc(
            name=name,
            build=build,
            port_names=tuple(port_names),
            log=log,
            popen=popen,
            ports=ports,
            argv=argv,
            start_ticks=stat.start_ticks if stat else 0,
            restarts=self.procs[name].restarts + 1 if name in self.procs else 0,
        )
        self.procs[name] = proc
        return proc

    def check_alive(self) -> None:
        """Raise for any component that exited; restart one that lost a port race."""
        for proc in list(self.procs.values()):
            code = proc.popen.poll()
            if code is None:
                continue
            if BIND_CONFLICT in log_tail(proc.log, 60) and proc.restarts < MAX_PORT_RETRIES:
                self.say(f"{proc.name}: port taken meanwhile; restarting on new ports")
                self.start(proc.name, proc.port_names, proc.build)
                continue
            raise ComponentError(proc.name, f"exited with code {code} during startup", proc.log)

    def wait(
        self,
        name: str,
        check: Callable[[_Proc], tuple[bool, object]],
        *,
        what: str,
        timeout: float,
        started: float,
    ) -> None:
        """Poll ``check`` for component ``name`` until it passes or ``timeout`` elapses."""
        try:
            poll(
                lambda: check(self.procs[name]), what=what, timeout=timeout, guard=self.check_alive
            )
        except Timeout as error:
            raise ComponentError(
                name, f"not ready: {error}", self.procs[name].log if name in self.procs else None
            ) from None
        self.say(f"{what} ({time.monotonic() - started:.1f}s)")

    def stop_all(self) -> None:
        left = stop_groups([proc.popen.pid for proc in self.procs.values()])
        for proc in self.procs.values():
            proc.popen.poll()
        if left:
            self.say(f"WARNING: pids still alive after SIGKILL: {left}")

    def records(self) -> dict[str, ComponentRecord]:
        return {
            name: ComponentRecord(
                name=name,
                pid=proc.popen.pid,
                start_ticks=proc.start_ticks,
                ports=proc.ports,
                log=str(proc.log),
                argv=proc.argv,
            )
            for name, proc in self.procs.items()
        }


# --------------------------------------------------------------------------- up


def _prepare(layout: Layout, binaries: Binaries, versions: Versions) -> tuple[Pki, Path, Path]:
    """Fresh state directory contents: PKI, Prometheus config, kwok stages, CRD cache."""
    for directory in (layout.state_dir, layout.log_dir):
        directory.mkdir(parents=True, exist_ok=True)
    gateway_crds = crds.gateway_api_crds(cache_root(), versions.gateway_api)
    pki = generate_pki(binaries.openssl, layout.pki_dir)
    prometheus.write_config(layout)
    stages = layout.kwok_dir / "stages.yaml"
    kwok.write_stages(binaries.kwok_stages, stages)
    return pki, stages, gateway_crds


def _cold_start(layout: Layout, versions: Versions, deadlines: Deadlines, say: Say) -> ClusterState:
    started = time.monotonic()
    binaries = find_binaries(versions)
    pki, stages, gateway_crds = _prepare(layout, binaries, versions)
    launcher = _Launcher(layout, say)
    try:
        launcher.start(
            PROMETHEUS, ["web"], lambda p: prometheus.argv(binaries.prometheus, layout, p["web"])
        )
        launcher.start(
            ETCD,
            ["client", "peer"],
            lambda p: components.etcd(binaries.etcd, layout.etcd_data, p["client"], p["peer"]),
        )
        launcher.wait(
            ETCD,
            lambda proc: _etcd_healthy(proc.ports["client"]),
            what="etcd healthy",
            timeout=deadlines.etcd,
            started=started,
        )
        etcd_port = launcher.procs[ETCD].ports["client"]
        launcher.start(
            APISERVER,
            ["https"],
            lambda p: components.kube_apiserver(
                binaries.kube_apiserver, pki, etcd_port, p["https"]
            ),
        )

        def apiserver_ready(proc: _Proc) -> tuple[bool, object]:
            url = f"https://127.0.0.1:{proc.ports['https']}"
            return http_ok(f"{url}/readyz", ApiClient(url, pki).context)

        launcher.wait(
            APISERVER,
            apiserver_ready,
            what="kube-apiserver ready",
            timeout=deadlines.apiserver,
            started=started,
        )
        server = f"https://127.0.0.1:{launcher.procs[APISERVER].ports['https']}"
        write_kubeconfig(layout.kubeconfig, server, pki)
        api = ApiClient(server, pki)
        kubeconfig = layout.kubeconfig
        launcher.start(
            CONTROLLER_MANAGER,
            ["https"],
            lambda p: components.kube_controller_manager(
                binaries.kube_controller_manager, pki, kubeconfig, p["https"]
            ),
        )
        launcher.start(
            SCHEDULER,
            ["https"],
            lambda p: components.kube_scheduler(binaries.kube_scheduler, kubeconfig, p["https"]),
        )
        launcher.start(KWOK, [], lambda _: kwok.argv(binaries.kwok, kubeconfig, stages))

        kubectl = kubectl_runner(binaries.kubectl, kubeconfig)
        kubectl("apply", "-f", "-", input=kwok.node_manifest())
        repo_crds = crds.repo_crd_files(layout.crds_dir)
        argocd_crd = crds.argocd_application_crd(cache_root(), ARGOCD_VERSION)
        crd_names = crds.apply(kubectl, [gateway_crds, argocd_crd, *repo_crds])
        try:
            crds.wait_established(api, crd_names, deadlines.crds)
        except Timeout as error:
            raise ComponentError(
                APISERVER, f"CRDs: {error}", launcher.procs[APISERVER].log
            ) from None
        say(f"{len(crd_names)} CRDs established ({time.monotonic() - started:.1f}s)")

        launcher.wait(
            CONTROLLER_MANAGER,
            lambda proc: _default_service_account(api, proc.ports["https"]),
            what="kube-controller-manager healthy and default ServiceAccount created",
            timeout=deadlines.controllers,
            started=started,
        )
        launcher.wait(
            SCHEDULER,
            lambda proc: http_ok(
                f"https://127.0.0.1:{proc.ports['https']}/healthz", insecure_context()
            ),
            what="kube-scheduler healthy",
            timeout=deadlines.scheduler,
            started=started,
        )
        launcher.wait(
            KWOK,
            lambda _: _node_ready(api),
            what=f"kwok node {kwok.NODE_NAME} Ready with a Lease",
            timeout=deadlines.node,
            started=started,
        )
        launcher.wait(
            PROMETHEUS,
            lambda proc: http_ok(f"http://127.0.0.1:{proc.ports['web']}/-/ready"),
            what="prometheus ready",
            timeout=deadlines.prometheus,
            started=started,
        )
        launcher.check_alive()
    except BaseException:
        launcher.stop_all()
        raise

    prometheus_url = f"http://127.0.0.1:{launcher.procs[PROMETHEUS].ports['web']}"
    state = ClusterState(
        root=str(layout.root),
        versions=versions.as_dict(),
        components=launcher.records(),
        apiserver_url=server,
        prometheus_url=prometheus_url,
        kubectl=str(binaries.kubectl),
        crds_digest=crds.digest(repo_crds),
        startup_seconds=round(time.monotonic() - started, 2),
    )
    layout.prometheus_url_file.write_text(prometheus_url + "\n")
    _write_env(layout, state)
    save_state(layout, state)
    return state


def _write_env(layout: Layout, state: ClusterState) -> None:
    urls = f"PROMETHEUS_URL={state.prometheus_url}"
    if state.alertmanager_url:
        urls += f" ALERTMANAGER_URL={state.alertmanager_url}"
    layout.env_file.write_text(f"export KUBECONFIG={layout.kubeconfig} {urls}\n")


def _ensure_alertmanager(
    layout: Layout, state: ClusterState, deadlines: Deadlines, say: Say
) -> None:
    """Start Alertmanager when it is not running (cold start, or a cluster started before
    it was part of ``up``); without the binary, say so and go on without it."""
    record = state.components.get(ALERTMANAGER)
    if record is not None and is_alive(record.pid, record.start_ticks):
        if http_ok(f"{state.alertmanager_url}/-/ready")[0]:
            return
        stop_groups([record.pid])
    binary = alertmanager.binary()
    if binary is None:
        say(f"Alertmanager not installed, so not started: {alertmanager.INSTALL_HINT}")
        if state.alertmanager_url:
            state.alertmanager_url = ""
            state.components.pop(ALERTMANAGER, None)
            _write_env(layout, state)
            save_state(layout, state)
        return
    alertmanager.write_config(layout)
    launcher = _Launcher(layout, say)
    started = time.monotonic()
    try:
        launcher.start(ALERTMANAGER, ["web"], lambda p: alertmanager.argv(binary, layout, p["web"]))
        launcher.wait(
            ALERTMANAGER,
            lambda proc: http_ok(f"http://127.0.0.1:{proc.ports['web']}/-/ready"),
            what="alertmanager ready",
            timeout=deadlines.prometheus,
            started=started,
        )
    except BaseException:
        launcher.stop_all()
        raise
    state.components[ALERTMANAGER] = launcher.records()[ALERTMANAGER]
    state.alertmanager_url = f"http://127.0.0.1:{launcher.procs[ALERTMANAGER].ports['web']}"
    _write_env(layout, state)
    save_state(layout, state)


def _etcd_healthy(port: int) -> tuple[bool, object]:
    result = http_get(f"http://127.0.0.1:{port}/health")
    if isinstance(result, str):
        return False, result
    return result.status == 200 and '"health":"true"' in result.text, result.text


def _default_service_account(api: ApiClient, port: int) -> tuple[bool, object]:
    healthy, seen = http_ok(f"https://127.0.0.1:{port}/healthz", insecure_context())
    if not healthy:
        return False, f"/healthz: {seen}"
    return api.get_object("/api/v1/namespaces/default/serviceaccounts/default")


def _node_ready(api: ApiClient) -> tuple[bool, object]:
    ok, node = api.get_object(f"/api/v1/nodes/{kwok.NODE_NAME}")
    if not ok:
        return False, node
    ready, seen = kwok.node_is_ready(node)
    if not ready:
        return False, seen
    lease = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{kwok.NODE_NAME}"
    ok, seen = api.get_object(lease)
    return ok, "ready" if ok else f"Lease: {seen}"


def _unusable_reason(layout: Layout, state: ClusterState, versions: Versions) -> str | None:
    """Why the recorded cluster cannot be reused, or None when it can."""
    if state.versions != versions.as_dict():
        return f"versions changed ({state.versions} -> {versions.as_dict()})"
    for name in COMPONENTS:
        record = state.components.get(name)
        if record is None:
            return f"{name} was never recorded"
        if not is_alive(record.pid, record.start_ticks):
            return f"{name} (pid {record.pid}) is not running"
    try:
        api = ApiClient(state.apiserver_url, Pki.in_dir(layout.pki_dir))
    except OSError as error:
        return f"PKI unreadable: {error}"
    ready, seen = http_ok(f"{state.apiserver_url}/readyz", api.context)
    if not ready:
        return f"kube-apiserver /readyz: {seen}"
    ready, seen = http_ok(f"{state.prometheus_url}/-/ready")
    if not ready:
        return f"prometheus /-/ready: {seen}"
    return None


def _refresh_repo_crds(layout: Layout, state: ClusterState, deadlines: Deadlines, say: Say) -> None:
    """Re-apply crds/ on a reused cluster when its content changed since the last apply."""
    files = crds.repo_crd_files(layout.crds_dir)
    current = crds.digest(files)
    if current == state.crds_digest:
        return
    if files:
        kubectl = kubectl_runner(Path(state.kubectl), layout.kubeconfig)
        names = crds.apply(kubectl, files)
        api = ApiClient(state.apiserver_url, Pki.in_dir(layout.pki_dir))
        try:
            crds.wait_established(api, names, deadlines.crds)
        except Timeout as error:
            raise ComponentError(APISERVER, f"CRDs: {error}", layout.log(APISERVER)) from None
        say(f"re-applied {len(files)} changed file(s) from {layout.crds_dir}")
    state.crds_digest = current
    save_state(layout, state)


def _teardown(layout: Layout, state: ClusterState | None, say: Say) -> int:
    """Stop recorded and orphaned components, then clear runtime state. Returns #stopped."""
    pgids: list[int] = []
    if state is not None:
        pgids += [r.pid for r in state.components.values() if is_alive(r.pid, r.start_ticks)]
    orphans = orphaned_components(f"{layout.state_dir}/", (*COMPONENTS, *alertmanager.CANDIDATES))
    for pid in orphans:
        if pid not in pgids:
            say(f"also stopping unrecorded component pid {pid}")
            pgids.append(pid)
    left = stop_groups(pgids)
    if left:
        raise DevclusterError(f"could not stop pids {left} (still alive after SIGKILL)")
    for entry in layout.runtime_entries():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    return len(pgids)


def ensure_up(root: Path, *, deadlines: Deadlines | None = None, say: Say = _say) -> ClusterInfo:
    """Reuse the running cluster of ``root`` or start a new one; safe to call concurrently."""
    layout = Layout.for_root(root)
    versions = Versions.from_env()
    deadlines = deadlines or Deadlines()
    started = time.monotonic()
    with exclusive_lock(layout):
        state = load_state(layout)
        if state is not None:
            reason = _unusable_reason(layout, state, versions)
            if reason is None:
                _refresh_repo_crds(layout, state, deadlines, say)
                _ensure_alertmanager(layout, state, deadlines, say)
                seconds = time.monotonic() - started
                return ClusterInfo.from_state(layout, state, reused=True, seconds=seconds)
            say(f"recorded cluster is not usable ({reason}); starting a new one")
        _teardown(layout, state, say)
        try:
            state = _cold_start(layout, versions, deadlines, say)
            _ensure_alertmanager(layout, state, deadlines, say)
        except BaseException:
            _teardown(layout, None, say)
            raise
        seconds = time.monotonic() - started
        return ClusterInfo.from_state(layout, state, reused=False, seconds=seconds)


def down(root: Path, *, say: Say = _say) -> int:
    """Stop everything ``up`` started and clear runtime state. Returns #process groups stopped."""
    layout = Layout.for_root(root)
    if not layout.state_dir.exists():  # nothing recorded; still catch strays of a deleted dir
        return _teardown(layout, None, say)
    with exclusive_lock(layout):
        return _teardown(layout, load_state(layout), say)


def current(root: Path) -> ClusterInfo | None:
    """The recorded cluster (without health checks), or None."""
    layout = Layout.for_root(root)
    state = load_state(layout)
    if state is None:
        return None
    return ClusterInfo.from_state(layout, state, reused=True, seconds=0.0)


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int
    ports: Mapping[str, int]
    alive: bool
    peak_rss_kib: int | None
    log: str


def status(root: Path) -> tuple[ClusterState | None, list[ComponentStatus]]:
    """The recorded state and, per component, whether it is alive and its peak RSS."""
    layout = Layout.for_root(root)
    state = load_state(layout)
    if state is None:
        return None, []
    rows = []
    for name in (*COMPONENTS, ALERTMANAGER):
        record = state.components.get(name)
        if record is None:
            continue
        alive = is_alive(record.pid, record.start_ticks)
        rows.append(
            ComponentStatus(
                name=name,
                pid=record.pid,
                ports=record.ports,
                alive=alive,
                peak_rss_kib=vm_kib(record.pid) if alive else None,
                log=record.log,
            )
        )
    return state, rows
