"""Start the operator and the traffic simulator as background processes on the local
cluster, and read one number from its Prometheus: what `make demo` and the benchmarks
share. Processes are detached (see processes.spawn); callers record the pids and stop
them with processes.stop_groups.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from devcluster.cluster import ClusterInfo
from devcluster.processes import spawn

OPERATOR_READY = "watching ReleaseGuards"
OPERATOR_METRICS = "serving metrics on "
# Operator arguments: write the guard's status on every evaluation (default: on change,
# else once a minute), for callers that watch evaluations happen through the status.
EVERY_EVALUATION = ("--status-heartbeat", "0")
# Operator arguments: its own metrics on a free local port, logged (see operator_metrics).
LOCAL_METRICS = ("--metrics-port", "0", "--metrics-address", "127.0.0.1")
TRAFFICSIM_READY = "listening on"


def spawn_operator(
    info: ClusterInfo, namespace: str, log_path: Path, env: Mapping[str, str], *extra: str
) -> subprocess.Popen[bytes]:
    """`releaseguard run` for one namespace against this cluster's Prometheus."""
    return spawn(operator_argv(namespace, info.prometheus_url, *extra), log_path, env)


def operator_argv(namespace: str, prometheus_url: str, *extra: str) -> list[str]:
    return [
        *(sys.executable, "-m", "releaseguard", "run"),
        *("--namespace", namespace, "--prometheus-url", prometheus_url, *extra),
    ]


def spawn_trafficsim(
    info: ClusterInfo,
    namespace: str,
    app: str,
    http_route: str,
    rate: float,
    log_path: Path,
    env: Mapping[str, str],
) -> subprocess.Popen[bytes]:
    """The traffic simulator, registered with Prometheus through file_sd."""
    argv = [
        sys.executable,
        "-m",
        "trafficsim",
        "--namespace",
        namespace,
        "--app",
        app,
        "--http-route",
        http_route,
        "--rate",
        f"{rate:g}",
        "--targets-dir",
        str(info.targets_dir),
    ]
    return spawn(argv, log_path, env)


def wait_for_line(log_path: Path, fragment: str, what: str, timeout: float) -> str:
    """The first log line containing `fragment`; fails with the log tail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        text = log_path.read_text(errors="replace") if log_path.exists() else ""
        line = next((ln for ln in text.splitlines() if fragment in ln), None)
        if line is not None:
            return line
        if time.monotonic() >= deadline:
            tail = "\n".join(text.splitlines()[-20:])
            raise RuntimeError(
                f"{what} did not log {fragment!r} in {timeout:g}s; log {log_path}:\n{tail}"
            )
        time.sleep(0.2)


def trafficsim_port(log_path: Path, timeout: float = 30) -> int:
    """Wait for the simulator to listen; its port, from its log."""
    line = wait_for_line(log_path, TRAFFICSIM_READY, "the traffic simulator", timeout)
    return int(line.rsplit(":", 1)[1])


def wait_operator_ready(log_path: Path, timeout: float = 60) -> None:
    wait_for_line(log_path, OPERATOR_READY, "the operator", timeout)


def operator_metrics_url(log_path: Path, timeout: float = 60) -> str:
    """Where an operator started with LOCAL_METRICS serves /metrics, from its log."""
    line = wait_for_line(log_path, OPERATOR_METRICS, "the operator", timeout)
    return line.split(OPERATOR_METRICS, 1)[1].strip()


def read_metrics(url: str) -> dict[str, float]:
    """Every sample on a /metrics page, keyed `name{label="value",...}` (labels sorted)."""
    text = requests.get(url, timeout=5).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def query_value(prometheus_url: str, promql: str) -> float | None:
    """One number from an instant query; None when empty, NaN or unreachable."""
    try:
        data = requests.get(
            f"{prometheus_url}/api/v1/query", params={"query": promql}, timeout=5
        ).json()
        result = data["data"]["result"]
        number = float(result[0]["value"][1]) if result else None
    except (requests.RequestException, KeyError, ValueError, IndexError):
        return None
    return None if number is None or math.isnan(number) else number
