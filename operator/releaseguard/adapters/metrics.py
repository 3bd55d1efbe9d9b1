"""The operator's own metrics, served for Prometheus with `releaseguard run --metrics-port`.

What a platform team alerts on (evaluations failing, falling behind schedule) and what
`make bench` measures over a window (tools/bench/scale.py).
"""

from __future__ import annotations

import contextlib
import threading

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
STATUS_WRITE_ERRORS = Counter(
    "releaseguard_status_write_errors",
    "Guard status writes the API server refused or failed (each attempt, retries included).",
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


# ---- per guard (README "Getting told"). A guard's series go away with its daemon
# (`forget_guard`), so a deleted guard leaves nothing to alert on.
NOTIFICATIONS = Counter(
    "releaseguard_notifications",
    "Notification deliveries by sink type (webhook, slack, alertmanager), moment and result "
    "(sent; failed: given up; retried: one failed attempt that will be retried; superseded: an "
    "Alertmanager update replaced by a newer one before it was sent).",
    ["sink", "moment", "result"],
)
GUARD_PHASE = Gauge(
    "releaseguard_guard_phase",
    "1 for each guard's current phase (one series per guard).",
    ["namespace", "guard", "phase"],
)
GUARD_CONSECUTIVE_BREACHES = Gauge(
    "releaseguard_guard_consecutive_breaches",
    "Breaching evaluations in a row, per guard (lastEvaluation.consecutiveBreaches).",
    ["namespace", "guard"],
)
TIME_TO_CONTAIN = Histogram(
    "releaseguard_time_to_contain_seconds",
    "Seconds from the first breaching evaluation to the first applied step, per incident.",
    buckets=(1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 300, 600),
)
_guard_phases: dict[tuple[str, str], str] = {}
_guard_lock = threading.Lock()


def observe_guard(namespace: str, guard: str, phase: str, consecutive_breaches: int) -> None:
    with _guard_lock:
        old = _guard_phases.get((namespace, guard))
        if old != phase:
            if old is not None:
                _remove(GUARD_PHASE, namespace, guard, old)
            _guard_phases[(namespace, guard)] = phase
            GUARD_PHASE.labels(namespace, guard, phase).set(1)
    GUARD_CONSECUTIVE_BREACHES.labels(namespace, guard).set(consecutive_breaches)


def forget_guard(namespace: str, guard: str) -> None:
    with _guard_lock:
        old = _guard_phases.pop((namespace, guard), None)
        if old is not None:
            _remove(GUARD_PHASE, namespace, guard, old)
        _remove(GUARD_CONSECUTIVE_BREACHES, namespace, guard)


def _remove(metric: Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):  # never set
        metric.remove(*labels)
