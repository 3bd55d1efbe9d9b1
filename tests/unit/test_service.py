"""GuardService's tick end to end, on an in-memory cluster (tests/fakes.py).

Each test runs whole evaluations as the handler does (the status and the stored copy
carried from one tick to the next), against a FakeCluster that answers 409 on a stale
write, and a fake Prometheus at the client's boundary: reads, decisions, the step's
write with its marker, and the status writes, without a cluster.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from builders import T0, feature_flag, metric

from fakes import Crash, FakeCluster, FakeEvents, FakePool, FakePrometheus, NoTargetCopies
from releaseguard.adapters import cluster as cluster_io
from releaseguard.domain.applicability import ADOPTED
from releaseguard.domain.identity import MARKER, parse_markers
from releaseguard.domain.models import ActionResult, Blocker, GuardStatus, Phase
from releaseguard.domain.observations import QueryResult
from releaseguard.domain.writes import Stored
from releaseguard.service import (
    GuardRef,
    GuardService,
    InvalidSpec,
    TickResult,
    parse_spec,
    read_status,
)

NS = "shop"
GUARD = GuardRef(NS, "g", "guard-uid", 1, "2026-11-26T09:00:00Z")
PROM = "http://prometheus.test"
BAD = QueryResult.number(0.5)  # error-rate over its max of 0.05
FLAGS = ("ConfigMap", "checkout-flags")


def spec(**fields: Any) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "target": {"deployment": "checkout"},
        "metrics": [metric()],
        "consecutiveBreaches": 2,
        "intervalSeconds": 10,
        "steps": [feature_flag()],
    }
    return wire | fields


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "checkout",
            "uid": "dep-uid",
            "generation": 1,
            "annotations": {"deployment.kubernetes.io/revision": "1"},
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": {"metadata": {"labels": {"app": "checkout"}}, "spec": {"containers": []}},
        },
        "status": {
            "observedGeneration": 1,
            "replicas": 2,
            "updatedReplicas": 2,
            "availableReplicas": 2,
            "conditions": [{"type": "Available", "status": "True"}],
        },
    }


def replica_set() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": "checkout-abc",
            "labels": {"app": "checkout", "pod-template-hash": "abc"},
            "annotations": {"deployment.kubernetes.io/revision": "1"},
            "ownerReferences": [{"uid": "dep-uid"}],
        },
        "spec": {"template": {"metadata": {"labels": {"app": "checkout"}}}},
    }


def flags(value: str = "true") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "checkout-flags"},
        "data": {"new-flow": value},
    }


class Operator:
    """One operator process: a GuardService, and the status its daemon carries."""

    def __init__(self, cluster: FakeCluster, prometheus: FakePrometheus, clock: list[datetime]):
        self.clock = clock
        self.service = GuardService(
            cluster,
            FakePool(prometheus),
            PROM,
            clock=lambda: clock[0],
            targets=NoTargetCopies(),
            events=FakeEvents(),
        )
        # As the handler starts: the status as stored, its write time unknown.
        status, _ = read_status(cluster.status)
        self.status: GuardStatus = status
        self.stored: Stored | None = Stored(status)

    def tick(self, wire: Any, seconds: float = 10) -> TickResult:
        result = self.service.tick(GUARD, wire, {}, self.status, self.stored)
        self.status, self.stored = result.status, result.stored
        self.clock[0] += timedelta(seconds=seconds)
        return result


@pytest.fixture
def cluster() -> FakeCluster:
    c = FakeCluster(guard=GUARD.name)
    c.put(NS, deployment())
    c.put(NS, replica_set())
    c.put(NS, flags())
    return c


@pytest.fixture
def prometheus() -> FakePrometheus:
    return FakePrometheus()


@pytest.fixture
def clock() -> list[datetime]:
    return [T0]


def breach(prometheus: FakePrometheus) -> None:
    prometheus.answers["error_rate"] = BAD


def flag_writes(cluster: FakeCluster) -> list[Any]:
    return [w for w in cluster.writes if (w[0], w[1]) == FLAGS]


def contain(op: Operator, wire: dict[str, Any], ticks: int = 3) -> None:
    for _ in range(ticks):
        op.tick(wire)


def test_a_healthy_guard_writes_its_status_and_changes_nothing(cluster, prometheus, clock):
    op = Operator(cluster, prometheus, clock)
    result = op.tick(spec())
    assert result.status.phase is Phase.WATCHING
    assert cluster.writes == []
    assert cluster.status["phase"] == "Watching"
    assert prometheus.asked == ["error_rate"]
    assert result.status.readiness[0].ready is True and result.status.readiness[0].code is None


def test_a_confirmed_breach_applies_the_step_once_with_its_marker(cluster, prometheus, clock):
    op = Operator(cluster, prometheus, clock)
    op.tick(spec())
    breach(prometheus)
    op.tick(spec())
    assert flag_writes(cluster) == []  # one breach is not yet confirmed
    op.tick(spec())
    assert cluster.get(NS, *FLAGS)["data"]["new-flow"] == "false"
    [(_, _, body)] = flag_writes(cluster)
    entry = parse_markers(body["metadata"]["annotations"][MARKER])[GUARD.uid]
    [action] = op.status.actions
    assert action.result is ActionResult.APPLIED and action.id == entry.id
    assert action.incident == op.status.incident.number == 1
    assert entry.incident == op.status.incident.uid
    assert cluster.status["phase"] == op.status.phase.value == "Contained"
    op.tick(spec())
    assert len(flag_writes(cluster)) == 1  # contained: not written again


def test_a_crash_between_the_step_write_and_the_status_write_applies_it_exactly_once(
    cluster, prometheus, clock
):
    first = Operator(cluster, prometheus, clock)
    first.tick(spec())
    breach(prometheus)
    first.tick(spec())

    def die(ns: str, kind: str, body: Any) -> None:
        raise Crash

    cluster.after_replace = die
    with pytest.raises(Crash):
        first.tick(spec())
    cluster.after_replace = None
    assert len(flag_writes(cluster)) == 1
    # The incident was written before the step; the action was not.
    assert cluster.status["incident"]["number"] == 1 and not cluster.status.get("actions")

    second = Operator(cluster, prometheus, clock)  # a new process, from the stored status
    second.tick(spec())
    second.tick(spec())
    assert len(flag_writes(cluster)) == 1
    [action] = second.status.actions
    assert action.result is ActionResult.APPLIED and action.message == ADOPTED
    assert action.incident == 1
    assert [a["id"] for a in cluster.status["actions"]] == [action.id]


def concurrent_writes(cluster: FakeCluster, times: int) -> list[int]:
    """Someone else writes the object between our read and our write, the first `times`
    times (a Deployment controller busy with a rollout does this with its status updates)."""
    touched: list[int] = []

    def concurrent_writer(ns: str, kind: str, body: Any) -> None:
        if len(touched) < times:
            other = cluster.get(ns, kind, body["metadata"]["name"])
            other["data"]["other-key"] = "kept"
            cluster.put(ns, other)
            touched.append(1)

    cluster.before_replace = concurrent_writer
    return touched


def one_tick_from_containing(
    cluster: FakeCluster, prometheus: FakePrometheus, clock: Any
) -> Operator:
    """An operator whose next tick confirms the breach and applies the flag step."""
    op = Operator(cluster, prometheus, clock)
    op.tick(spec())
    breach(prometheus)
    op.tick(spec())
    return op


def test_a_concurrent_write_makes_a_409_and_the_step_is_written_from_a_fresh_read(
    cluster, prometheus, clock
):
    op = one_tick_from_containing(cluster, prometheus, clock)
    touched = concurrent_writes(cluster, 1)
    op.tick(spec())
    assert touched
    assert len(flag_writes(cluster)) == 1  # the stale write was refused, not stored
    assert cluster.get(NS, *FLAGS)["data"] == {"new-flow": "false", "other-key": "kept"}
    [action] = op.status.actions
    assert action.result is ActionResult.APPLIED and action.message == "after 1 conflict(s)"


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The attempts after which a write paused for a conflict (the pause itself is 0 here)."""
    paused: list[int] = []

    def no_pause(attempt: int, jitter: float | None = None) -> float:
        paused.append(attempt)
        return 0.0

    monkeypatch.setattr(cluster_io, "conflict_pause", no_pause)
    return paused


def test_a_run_of_conflicts_shorter_than_the_bound_still_lands_the_step_after_pauses(
    cluster, prometheus, clock, pauses
):
    op = one_tick_from_containing(cluster, prometheus, clock)
    concurrent_writes(cluster, cluster_io.CONFLICT_RETRIES - 1)
    op.tick(spec())
    [action] = op.status.actions
    assert action.result is ActionResult.APPLIED, action.message
    assert action.message == f"after {cluster_io.CONFLICT_RETRIES - 1} conflict(s)"
    assert pauses == list(range(cluster_io.CONFLICT_RETRIES - 1))
    assert len(flag_writes(cluster)) == 1


def test_conflicts_on_every_attempt_fail_the_step_and_say_why(cluster, prometheus, clock, pauses):
    op = one_tick_from_containing(cluster, prometheus, clock)
    touched = concurrent_writes(cluster, 100)
    op.tick(spec())
    [action] = op.status.actions
    assert action.result is ActionResult.FAILED
    assert action.message == (
        f"API error 409: Conflict, {cluster_io.CONFLICT_RETRIES} times in a row: "
        "the object kept changing"
    )
    assert len(touched) == cluster_io.CONFLICT_RETRIES  # bounded: no write loops forever
    assert flag_writes(cluster) == []


@pytest.mark.parametrize("jitter", [0.0, 0.999])
def test_conflict_pauses_double_to_a_cap_and_add_up_to_a_few_seconds(jitter: float):
    waits = [cluster_io.conflict_pause(a, jitter) for a in range(cluster_io.CONFLICT_RETRIES - 1)]
    assert waits == sorted(waits) and waits[0] <= 0.05 and waits[-1] <= 1.0
    assert 2.5 < sum(waits) < 5.6  # long enough to let a rollout's burst pass, short to contain


def test_dry_run_records_what_would_be_written_and_writes_nothing(cluster, prometheus, clock):
    op = Operator(cluster, prometheus, clock)
    breach(prometheus)
    contain(op, spec(dryRun=True))
    assert flag_writes(cluster) == []
    assert cluster.get(NS, *FLAGS)["data"]["new-flow"] == "true"
    [action] = op.status.actions
    assert action.result is ActionResult.DRY_RUN
    assert action.patch == {"data": {"new-flow": "false"}}


def test_a_missing_target_makes_the_guard_invalid(cluster, prometheus, clock):
    cluster.delete(NS, "Deployment", "checkout")
    op = Operator(cluster, prometheus, clock)
    result = op.tick(spec())
    assert result.status.phase is Phase.INVALID
    ready = [c for c in result.status.conditions if c.type == "Ready"]
    assert ready and ready[0].reason == "MissingObject"
    assert "Deployment checkout not found" in result.status.message
    assert prometheus.asked == []  # nothing is queried for a guard that cannot work


def test_a_missing_step_object_is_not_ready_with_code_missing(cluster, prometheus, clock):
    cluster.delete(NS, *FLAGS)
    op = Operator(cluster, prometheus, clock)
    [readiness] = op.tick(spec()).status.readiness
    assert not readiness.ready and readiness.code is Blocker.MISSING
    assert cluster.status["readiness"][0]["code"] == "Missing"


def test_a_step_someone_reverts_is_applied_again(cluster, prometheus, clock):
    op = Operator(cluster, prometheus, clock)
    breach(prometheus)
    contain(op, spec())
    assert len(flag_writes(cluster)) == 1
    cluster.put(NS, flags("true"))  # a reconciler puts the flag back
    for _ in range(6):  # re-applied after intervalSeconds x 2
        op.tick(spec())
    assert cluster.get(NS, *FLAGS)["data"]["new-flow"] == "false"
    assert len(flag_writes(cluster)) == 2
    again = op.status.actions[-1]
    assert again.id == f"{op.status.actions[0].id}-r1" and again.result is ActionResult.APPLIED


def test_the_handler_parses_the_spec_once_per_generation() -> None:
    from releaseguard.handlers import ParsedSpec

    parsed = ParsedSpec()
    first = parsed.get(3, spec())
    assert parsed.get(3, spec()) is first and parsed.parses == 1
    changed = parsed.get(4, spec(intervalSeconds=30))
    assert changed is not first and changed.interval_seconds == 30 and parsed.parses == 2
    invalid = parsed.get(5, spec(metrics=[]))
    assert isinstance(invalid, InvalidSpec) and "spec.metrics" in invalid.problem
    assert parsed.get(0, spec()) is not parsed.get(0, spec())  # no generation: no caching


def test_a_parsed_spec_is_evaluated_as_the_raw_one(cluster, prometheus, clock):
    op = Operator(cluster, prometheus, clock)
    result = op.tick(parse_spec(spec()))
    assert result.status.phase is Phase.WATCHING
    invalid = op.tick(parse_spec(spec(metrics=[])))
    assert invalid.status.phase is Phase.INVALID and "spec.metrics" in invalid.status.message
