"""The `releaseguard` command: `releaseguard run` starts the operator.

Builds the shared clients once (Kubernetes API, Prometheus pool), hands them to the
handlers through Kopf's memo, and runs Kopf in the namespaces asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import kopf
from kubernetes import client, config

from releaseguard import handlers  # registers the Kopf handlers
from releaseguard.adapters import metrics
from releaseguard.adapters.kube import Kube
from releaseguard.adapters.prometheus import PrometheusPool
from releaseguard.service import GuardService

log = logging.getLogger("releaseguard")
TRIM_SECONDS = 60.0


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
    run.add_argument(
        "--prometheus-url",
        default=os.environ.get("RELEASEGUARD_PROMETHEUS_URL"),
        help="Prometheus base URL for guards without spec.prometheus.url "
        "(env RELEASEGUARD_PROMETHEUS_URL)",
    )
    run.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("RELEASEGUARD_WORKERS", "32")),
        help="threads evaluating guards at once, and as many for Prometheus queries; a "
        "guard whose Prometheus hangs holds one for up to its timeout (env "
        "RELEASEGUARD_WORKERS, default 32)",
    )
    run.add_argument(
        "--status-heartbeat",
        type=float,
        metavar="SECONDS",
        default=float(os.environ.get("RELEASEGUARD_STATUS_HEARTBEAT", "60")),
        help="write a guard's status when anything but lastEvaluation's time and values "
        "changed, and otherwise once per this many seconds; 0 writes every evaluation "
        "(env RELEASEGUARD_STATUS_HEARTBEAT, default 60)",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        default=_env_int("RELEASEGUARD_METRICS_PORT"),
        help="serve the operator's Prometheus metrics on this port (0: any free port, "
        "logged); off unless given (env RELEASEGUARD_METRICS_PORT)",
    )
    run.add_argument(
        "--metrics-address",
        default=os.environ.get("RELEASEGUARD_METRICS_ADDRESS", "0.0.0.0"),
        help="address to serve metrics on (env RELEASEGUARD_METRICS_ADDRESS, default 0.0.0.0)",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    namespaces: list[str] = args.namespace
    api = _api_client()
    pool = PrometheusPool(query_threads=args.workers)
    memo = kopf.Memo(
        service=GuardService(
            Kube(api), pool, args.prometheus_url, timedelta(seconds=args.status_heartbeat)
        ),
        scope=", ".join(namespaces) if namespaces else "all namespaces",
    )

    async def operate() -> None:
        # asyncio.to_thread uses the loop's default executor, min(32, cores + 4) threads
        # unless set: on 2 cores that is 6, and six guards with a hung Prometheus would
        # stall every other guard until their queries time out.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix="guard")
        )
        await kopf.operator(
            standalone=True,
            namespaces=namespaces or None,
            clusterwide=not namespaces,
            memo=memo,
        )

    _return_freed_memory()
    if args.metrics_port is not None:
        port = metrics.serve(args.metrics_port, args.metrics_address)
        log.info("serving metrics on http://%s:%d/metrics", args.metrics_address, port)
    try:
        asyncio.run(operate())
    finally:
        pool.close()
    return 0


@kopf.on.startup()
def _configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Handler log lines would otherwise become Events; we post our own, deliberately.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    log.info("ReleaseGuard operator watching ReleaseGuards in %s", memo.scope)


__all__ = ["handlers", "main"]
