"""The `releaseguard` command: `releaseguard run` starts the operator.

Builds the shared clients once (Kubernetes API, Prometheus pool), hands them to the
handlers through Kopf's memo, and runs Kopf in the namespaces asked for. With
`--leader-election` it first waits, as a standby, until it holds the Lease.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import kopf
from kubernetes import client, config

from releaseguard import handlers  # registers the Kopf handlers
from releaseguard.adapters import health, logs, metrics
from releaseguard.adapters.kube import Kube
from releaseguard.adapters.leadership import Leadership, default_identity
from releaseguard.adapters.notify import Notifier
from releaseguard.adapters.prometheus import PrometheusPool
from releaseguard.domain.allowlist import DEFAULT_PATTERNS, AllowList, parse_patterns
from releaseguard.service import GuardService

log = logging.getLogger("releaseguard")
TRIM_SECONDS = 60.0
# Liveness fails when the event loop has not run for this long: a loop that blocked so
# long evaluates nothing, and a restart is the cure (a standby may take over).
LOOP_STALL_SECONDS = 60.0
BEAT_SECONDS = 5.0
ENV_ALLOWED = "RELEASEGUARD_ALLOWED_URLS"
SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def _return_freed_memory(every: float = TRIM_SECONDS) -> None:
    """Hand memory that is free again back to the OS, every `every` seconds, from a
    daemon thread. Taking on a thousand new guards at once (Kopf adds its finalizer to
    each, each writes its first status) briefly needs ~85 MiB more; glibc keeps that in
    its free lists, so RSS stayed at 277 MiB instead of 195 MiB (1,000 guards, VmRSS
    100 s after start). No-op where the C library has no malloc_trim (musl, macOS)."""
    name = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    if trim is None:
        return

    def loop() -> None:
        while True:
            time.sleep(every)  # a period, not a wait for a state
            trim(0)

    threading.Thread(target=loop, name="malloc-trim", daemon=True).start()


def _api_client() -> client.ApiClient:
    try:
        config.load_incluster_config()
        return client.ApiClient()
    except config.ConfigException:
        return config.new_client_from_config(config_file=os.environ.get("KUBECONFIG"))


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


def _own_namespace() -> str | None:
    """Where the Lease lives: POD_NAMESPACE (the chart sets it), else the namespace of
    the mounted ServiceAccount token."""
    if namespace := os.environ.get("POD_NAMESPACE"):
        return namespace
    try:
        with open(SERVICE_ACCOUNT_NAMESPACE) as f:
            return f.read().strip() or None
    except OSError:
        return None


def _allowed_urls(
    flags: list[str] | None, prometheus_url: str | None, alertmanager_url: str | None = None
) -> AllowList:
    """The flags, else RELEASEGUARD_ALLOWED_URLS, else the default (docs/security.md
    says why ^https:// and not everything), always with the operator's own URL."""
    patterns = flags if flags is not None else parse_patterns(os.environ.get(ENV_ALLOWED))
    if patterns is None:
        patterns = DEFAULT_PATTERNS
        log.info("no --allowed-url: guards may name %s", " ".join(DEFAULT_PATTERNS))
    allowed = AllowList.of(patterns, [prometheus_url, alertmanager_url])
    log.info("URL allow-list: %s", allowed.describe())
    return allowed


class Liveness:
    """What /healthz and /readyz report: the election thread (standby), the event loop's
    heartbeat (leader)."""

    def __init__(self, leadership: Leadership | None) -> None:
        self.leadership = leadership
        self.last_beat: float | None = None

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    def _standby(self) -> bool:
        return self.leadership is not None and not self.leadership.leading

    def live(self) -> str | None:
        if self._standby():
            assert self.leadership is not None
            return None if self.leadership.alive() else "the leader election thread died"
        if self.last_beat is not None:
            stalled = time.monotonic() - self.last_beat
            if stalled > LOOP_STALL_SECONDS:
                return f"the event loop has not run for {stalled:.0f} s"
        return None

    def ready(self) -> str | None:
        if self._standby() or self.last_beat is not None:
            return self.live()
        return "starting"


@dataclass(frozen=True)
class _Flag:
    """One flag of `releaseguard run`. `default` is called when the parser is built, so
    the environment is read then (as tests and the chart expect), not at import."""

    names: tuple[str, ...]
    help: str
    default: Callable[[], Any] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


def _env(name: str, fallback: str | None = None) -> Callable[[], str | None]:
    return lambda: os.environ.get(name, fallback)


def _env_true(name: str) -> Callable[[], bool]:
    return lambda: os.environ.get(name, "") == "true"


_INT = {"type": int}
_COUNT = {"type": int, "metavar": "N"}
RUN_FLAGS: tuple[_Flag, ...] = (
    _Flag(
        ("--prometheus-url",),
        "Prometheus base URL for guards without spec.prometheus.url "
        "(env RELEASEGUARD_PROMETHEUS_URL)",
        _env("RELEASEGUARD_PROMETHEUS_URL"),
    ),
    _Flag(
        ("--alertmanager-url",),
        "Alertmanager base URL for spec.notify alertmanager entries without a url "
        "(env RELEASEGUARD_ALERTMANAGER_URL); always allowed, like --prometheus-url",
        _env("RELEASEGUARD_ALERTMANAGER_URL"),
    ),
    _Flag(
        ("--argocd-cross-namespace",),
        "let a guard's spec.gitOps.argoCD name an Application outside the guard's "
        "namespace (off by default; the chart's admission policy checks that the guard's "
        "author may patch it; env RELEASEGUARD_ARGOCD_CROSS_NAMESPACE=true)",
        _env_true("RELEASEGUARD_ARGOCD_CROSS_NAMESPACE"),
        {"action": "store_true"},
    ),
    _Flag(
        ("--allowed-url",),
        "guards may name only URLs this regex finds (Python re, anchor it: "
        "'^https://prom\\.example\\.com(/|:|$)'); repeatable. The --prometheus-url is "
        "always allowed. Without this flag: env RELEASEGUARD_ALLOWED_URLS "
        "(whitespace-separated; set and empty allows only --prometheus-url), else "
        f"{' '.join(DEFAULT_PATTERNS)}",
        options={"action": "append", "metavar": "REGEX"},
    ),
    _Flag(
        ("--workers",),
        "threads evaluating guards at once, and as many for Prometheus queries; a "
        "guard whose Prometheus hangs holds one for up to its timeout (env "
        "RELEASEGUARD_WORKERS, default 32)",
        lambda: int(os.environ.get("RELEASEGUARD_WORKERS", "32")),
        _INT,
    ),
    _Flag(
        ("--max-inflight-queries",),
        "Prometheus queries in flight at once, all guards together; a query waits "
        "for a slot until its deadline, then its guard shows NoData (QueryBudgetExhausted) "
        "(env RELEASEGUARD_MAX_INFLIGHT_QUERIES, default --workers)",
        lambda: _env_int("RELEASEGUARD_MAX_INFLIGHT_QUERIES"),
        _COUNT,
    ),
    _Flag(
        ("--max-inflight-queries-per-namespace",),
        "as --max-inflight-queries, for the guards of one namespace "
        "(env RELEASEGUARD_MAX_INFLIGHT_QUERIES_PER_NAMESPACE, default half of "
        "--max-inflight-queries)",
        lambda: _env_int("RELEASEGUARD_MAX_INFLIGHT_QUERIES_PER_NAMESPACE"),
        _COUNT,
    ),
    _Flag(
        ("--status-heartbeat",),
        "write a guard's status when anything but lastEvaluation's time and values "
        "changed, and otherwise once per this many seconds; 0 writes every evaluation "
        "(env RELEASEGUARD_STATUS_HEARTBEAT, default 60)",
        lambda: float(os.environ.get("RELEASEGUARD_STATUS_HEARTBEAT", "60")),
        {"type": float, "metavar": "SECONDS"},
    ),
    _Flag(
        ("--metrics-port",),
        "serve the operator's Prometheus metrics on this port (0: any free port, "
        "logged); off unless given (env RELEASEGUARD_METRICS_PORT)",
        lambda: _env_int("RELEASEGUARD_METRICS_PORT"),
        _INT,
    ),
    _Flag(
        ("--metrics-address",),
        "address to serve metrics on (env RELEASEGUARD_METRICS_ADDRESS, default 0.0.0.0)",
        _env("RELEASEGUARD_METRICS_ADDRESS", "0.0.0.0"),
    ),
    _Flag(
        ("--health-port",),
        "serve /healthz (liveness) and /readyz (readiness) on this port; off unless "
        "given (env RELEASEGUARD_HEALTH_PORT)",
        lambda: _env_int("RELEASEGUARD_HEALTH_PORT"),
        _INT,
    ),
    _Flag(
        ("--leader-election",),
        "act only while holding a coordination.k8s.io Lease, so that several "
        "replicas can run with one writer (env RELEASEGUARD_LEADER_ELECTION=true)",
        _env_true("RELEASEGUARD_LEADER_ELECTION"),
        {"action": "store_true"},
    ),
    _Flag(
        ("--leader-election-name",),
        "name of the Lease (default releaseguard)",
        lambda: "releaseguard",
    ),
    _Flag(
        ("--leader-election-namespace",),
        "namespace of the Lease (default: env POD_NAMESPACE, else the namespace of "
        "the mounted ServiceAccount)",
        _own_namespace,
    ),
    _Flag(
        ("--log-format",),
        "text (default) or json: one JSON object per line, with namespace, guard, "
        "incident and actionId fields where they apply (env RELEASEGUARD_LOG_FORMAT)",
        _env("RELEASEGUARD_LOG_FORMAT", "text"),
        {"choices": ("text", "json")},
    ),
    _Flag(("-v", "--verbose"), "debug logging", options={"action": "store_true"}),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="releaseguard", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator (honours KUBECONFIG)")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)"
    )
    scope.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="watch every namespace (the default when no --namespace is given)",
    )
    for flag in RUN_FLAGS:
        default = {} if flag.default is None else {"default": flag.default()}
        run.add_argument(*flag.names, help=flag.help, **default, **flag.options)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.leader_election and not args.leader_election_namespace:
        parser.error("--leader-election needs --leader-election-namespace or POD_NAMESPACE")
    logs.configure(args.log_format, logging.DEBUG if args.verbose else logging.INFO)
    try:
        allowed = _allowed_urls(args.allowed_url, args.prometheus_url, args.alertmanager_url)
    except re.error as exc:
        parser.error(f"--allowed-url / RELEASEGUARD_ALLOWED_URLS: bad regex {exc.pattern!r}: {exc}")
    api = _api_client()
    leadership = None
    if args.leader_election:
        lease = (args.leader_election_namespace, args.leader_election_name)
        leadership = Leadership(api, *lease, default_identity())
    liveness = Liveness(leadership)
    for flag in ("max_inflight_queries", "max_inflight_queries_per_namespace"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    pool = PrometheusPool(
        query_threads=args.workers,
        max_in_flight=args.max_inflight_queries,
        max_in_flight_per_namespace=args.max_inflight_queries_per_namespace,
    )
    memo = _memo(args, Kube(api), pool, allowed)
    _return_freed_memory()
    metrics.LEADER.set(0 if leadership else 1)
    _serve_probes(args, liveness)
    if leadership is not None:
        leadership.start()
        log.info("standby: acting once this replica holds the Lease")
        leadership.wait()
        metrics.LEADER.set(1)
    try:
        asyncio.run(_operate(args.namespace, args.workers, memo, liveness))
    finally:
        pool.close()
    if leadership is not None:  # Kopf has stopped: nothing more is written
        leadership.release()
    return 0


def _memo(
    args: argparse.Namespace, kube: Kube, pool: PrometheusPool, allowed: AllowList
) -> kopf.Memo:
    """The shared clients, built once and handed to every handler."""
    namespaces: list[str] = args.namespace
    return kopf.Memo(
        service=GuardService(
            kube,
            pool,
            args.prometheus_url,
            timedelta(seconds=args.status_heartbeat),
            allowed_urls=allowed,
            notifier=Notifier(),
            default_alertmanager_url=args.alertmanager_url,
            argocd_cross_namespace=args.argocd_cross_namespace,
        ),
        scope=", ".join(namespaces) if namespaces else "all namespaces",
        namespaced=bool(namespaces),
    )


def _serve_probes(args: argparse.Namespace, liveness: Liveness) -> None:
    if args.metrics_port is not None:
        port = metrics.serve(args.metrics_port, args.metrics_address)
        log.info("serving metrics on http://%s:%d/metrics", args.metrics_address, port)
    if args.health_port is not None:
        checks = {"/healthz": liveness.live, "/readyz": liveness.ready}
        port = health.serve(args.health_port, args.metrics_address, checks)
        log.info("serving health probes on http://%s:%d/healthz", args.metrics_address, port)


async def _beat(liveness: Liveness) -> None:
    while True:
        liveness.beat()
        await asyncio.sleep(BEAT_SECONDS)  # a heartbeat period, not a wait for a state


async def _operate(
    namespaces: list[str], workers: int, memo: kopf.Memo, liveness: Liveness
) -> None:
    # asyncio.to_thread uses the loop's default executor, min(32, cores + 4) threads
    # unless set: on 2 cores that is 6, and six guards with a hung Prometheus would
    # stall every other guard until their queries time out.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="guard")
    )
    heartbeat = asyncio.create_task(_beat(liveness))
    try:
        # Kopf takes an empty collection, not None, for "no namespace patterns":
        # None crashed its namespace observer with --all-namespaces.
        await kopf.operator(
            standalone=True,
            namespaces=namespaces,
            clusterwide=not namespaces,
            memo=memo,
        )
    finally:
        heartbeat.cancel()


@kopf.on.startup()
def _configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Handler log lines would otherwise become Events; we post our own, deliberately.
    settings.posting.level = logging.WARNING
    # Events say who posted them: this operator, and which replica (the chart sets POD_NAME
    # from the Downward API; a local run has the host name).
    settings.posting.reporting_component = "releaseguard"
    settings.posting.reporting_instance = os.environ.get("POD_NAME") or socket.gethostname()
    settings.posting.event_name_prefix = "releaseguard-"
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    # Serving named namespaces needs no cluster-wide reads: without this Kopf lists and
    # watches Namespaces and CRDs cluster-wide, and the chart would need a ClusterRole
    # even with watchNamespaces set. The CRD must exist when the operator starts (the
    # chart installs it first).
    settings.scanning.disabled = memo.namespaced
    log.info("ReleaseGuard operator watching ReleaseGuards in %s", memo.scope)


__all__ = ["handlers", "main"]
