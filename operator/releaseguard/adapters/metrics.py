"""The operator's own metrics, served for Prometheus with `releaseguard run --metrics-port`.

What a platform team alerts on (evaluations failing, falling behind schedule) and what
`make bench` measures over a window (tools/bench/scale.py).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)

EVALUATIONS = Counter("releaseguard_evaluations", "Guard evaluations started.")
EVALUATION_ERRORS = Counter(
    "releaseguard_evaluation_errors",
    "Evaluations that failed unexpectedly (logged); the guard tries again next interval.",
)
LATENESS = Histogram(
    "releaseguard_evaluation_lateness_seconds",
    "How long after its schedule an evaluation started, waiting for a free worker included.",
    buckets=_SECONDS,
)
DURATION = Histogram(
    "releaseguard_evaluation_duration_seconds",
    "Wall time of one evaluation: reads, queries, decision, any step and the status write.",
    buckets=_SECONDS,
)
STATUS_WRITES = Counter(
    "releaseguard_status_writes",
    "Guard status writes: on every change that matters, else once per --status-heartbeat.",
)
ACTIONS = Counter(
    "releaseguard_actions",
    "Containment actions taken, by step type and result.",
    ["type", "result"],
)


def serve(port: int, address: str) -> int:
    """Serve /metrics from a daemon thread; return the port (useful with port 0)."""
    server, _ = start_http_server(port, address)
    return int(server.server_port)
