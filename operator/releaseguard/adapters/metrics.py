"""The operator's own metrics, served for Prometheus with `releaseguard run --metrics-port`.

What a platform team alerts on (evaluations failing, falling behind schedule) and what
`make bench` measures over a window (tools/bench/scale.py).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

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
LEADER = Gauge(
    "releaseguard_leader",
    "1 on the replica that holds the leader Lease and acts (always 1 without "
    "--leader-election), 0 on a standby.",
)
ACTIONS = Counter(
    "releaseguard_actions",
    "Containment actions taken, by step type and result.",
    ["type", "result"],
)
TARGET_CACHE_OBJECTS = Gauge(
    "releaseguard_target_cache_objects",
    "Deployments and ReplicaSets the operator keeps a copy of, by kind: the guards' targets "
    "and their ReplicaSets, nothing else (adapters/targets.py).",
    ["kind"],
)
TARGET_READS = Counter(
    "releaseguard_target_reads",
    "Evaluations that read their target and its ReplicaSets from the API server because "
    "the watch-fed copies could not vouch for them: a guard's first evaluation, a rollout "
    "not yet watched, a failing watch.",
)
TARGET_WATCH_ERRORS = Counter(
    "releaseguard_target_watch_errors",
    "Failed lists and watches of the guarded Deployments and ReplicaSets, by kind (logged "
    "once per failure streak); meanwhile evaluations read their targets from the API server.",
    ["kind"],
)


def serve(port: int, address: str) -> int:
    """Serve /metrics from a daemon thread; return the port (useful with port 0)."""
    server, _ = start_http_server(port, address)
    return int(server.server_port)
