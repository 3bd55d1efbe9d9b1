"""Would this guard work right now? The verdicts of `kubectl releaseguard check`.

Pure: functions of the spec (the operator's own model), the query answers (the
operator's own types, from its Prometheus adapter) and each step's readiness (from its
kube adapter). The metric verdicts come from `domain.evaluate`, so check judges a value
against its bound exactly as the operator will.

Exit codes: 0 when the guard would work; 1 when it would not (a query Prometheus
rejects or that returns several series, Prometheus unreachable, a missing object, a
step not ready); 2 for usage errors (decided by the command line, not here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from releaseguard.domain.evaluate import evaluate_metric
from releaseguard.domain.models import (
    Blocker,
    GuardSpec,
    Metric,
    MetricVerdict,
    MinTraffic,
    StepReadiness,
)
from releaseguard.domain.observations import Observations, Outcome, QueryResult
from releaseguard.plugin.views import in_incident


@dataclass(frozen=True)
class QueryCheck:
    name: str  # the metric, "<metric> (baseline)" or "minTraffic"
    query: str
    value: str
    bound: str
    verdict: str  # Pass, Breach, NoData, BadQuery, Multiple, Unavailable
    ok: bool
    note: str = ""


@dataclass(frozen=True)
class StepCheck:
    index: int
    type: str
    object: str
    state: str  # ready, prepared, applied, pending, not ready
    why: str
    ok: bool


@dataclass
class CheckReport:
    namespace: str
    name: str
    source: str  # "cluster" or the file checked
    prometheus_url: str
    problems: list[str] = field(default_factory=list)  # each makes the guard not work
    notes: list[str] = field(default_factory=list)
    queries: list[QueryCheck] = field(default_factory=list)
    steps: list[StepCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.problems and all(q.ok for q in self.queries) and all(s.ok for s in self.steps)
        )

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["exitCode"] = self.exit_code
        return data


def _bound(max_: float | None, min_: float | None, ratio: float | None) -> str:
    parts = []
    if max_ is not None:
        parts.append(f"≤ {max_:g}")
    if min_ is not None:
        parts.append(f"≥ {min_:g}")
    if ratio is not None:
        parts.append(f"≤ {ratio:g} x baseline")
    return ", ".join(parts) or "-"


def _failure(answer: QueryResult) -> tuple[bool, str]:
    """Whether an answer without a value means the guard cannot work, and why."""
    if answer.outcome is Outcome.BAD_QUERY:
        return True, answer.message or "Prometheus rejected the query"
    if answer.outcome is Outcome.MULTIPLE:
        return True, answer.message or "the query returned several series"
    if answer.outcome is Outcome.UNAVAILABLE:
        return True, f"no answer from Prometheus: {answer.message or 'unavailable'}"
    # Empty or NaN: legitimate while nothing flows (a ratio without errors yet); the
    # guard holds (noData: Hold) or breaches (noData: Breach) on it.
    return False, f"no data now ({answer.describe()})"


def query_checks(spec: GuardSpec, observations: Observations) -> list[QueryCheck]:
    checks = []
    for metric in spec.metrics:
        answer = observations.metrics[metric.name]
        baseline = observations.baselines.get(metric.name)
        checks.append(_metric_check(metric, answer, baseline))
        if baseline is not None and metric.baseline_query:
            checks.append(_baseline_check(metric.name, metric.baseline_query, baseline))
    if spec.min_traffic is not None and observations.traffic is not None:
        checks.append(_traffic_check(spec.min_traffic, observations.traffic))
    return checks


def _metric_check(metric: Metric, answer: QueryResult, baseline: QueryResult | None) -> QueryCheck:
    bound = _bound(metric.max, metric.min, metric.max_ratio)
    if not answer.has_value:
        failed, why = _failure(answer)
        verdict = answer.outcome.value if failed else MetricVerdict.NO_DATA.value
        return QueryCheck(metric.name, metric.query, "-", bound, verdict, not failed, why)
    judged = evaluate_metric(metric, answer, baseline)
    note = judged.message if judged.verdict is MetricVerdict.BREACH else ""
    return QueryCheck(
        metric.name, metric.query, answer.describe(), bound, judged.verdict.value, True, note
    )


def _baseline_check(name: str, query: str, baseline: QueryResult) -> QueryCheck:
    label = f"{name} (baseline)"
    if baseline.has_value:
        return QueryCheck(label, query, baseline.describe(), "-", "Value", True, "")
    failed, why = _failure(baseline)
    return QueryCheck(label, query, "-", "-", baseline.outcome.value, not failed, why)


def _traffic_check(traffic: MinTraffic, answer: QueryResult) -> QueryCheck:
    bound = f"≥ {traffic.min:g}"
    if not answer.has_value:
        failed, why = _failure(answer)
        return QueryCheck(
            "minTraffic", traffic.query, "-", bound, answer.outcome.value, not failed, why
        )
    assert answer.value is not None
    enough = answer.value >= traffic.min
    note = "" if enough else "below minTraffic: the verdict would be InsufficientTraffic"
    verdict = "Pass" if enough else "Low"
    return QueryCheck("minTraffic", traffic.query, answer.describe(), bound, verdict, True, note)


def step_checks(
    readiness: Sequence[StepReadiness],
    objects: Sequence[str],
    status: Mapping[str, Any],
) -> list[StepCheck]:
    """Each step's readiness as check judges it. Not ready is a failure, except where the
    operator itself does not count it as one: rollback already at the known-good revision
    (prepared), a step applied in the open incident, and a known-good revision not yet
    recorded by a guard that has never been evaluated (it is recorded after
    knownGoodAfterSeconds of health)."""
    incident = status.get("incident") if isinstance(status.get("incident"), Mapping) else None
    applied: dict[int, str] = {}
    if incident and not incident.get("closed"):
        for action in status.get("actions") or []:
            if (
                isinstance(action, Mapping)
                and in_incident(action, incident.get("number"))
                and action.get("result") == "Applied"
                and isinstance(action.get("stepIndex"), int)
            ):
                applied[action["stepIndex"]] = str(action.get("id"))
    evaluated = bool(status.get("lastEvaluation"))
    checks = []
    for r, ref in zip(readiness, objects, strict=True):
        if r.ready:
            state, why, ok = "ready", "usable now", True
        elif r.index in applied:
            state, why, ok = "applied", f"applied in the open incident ({applied[r.index]})", True
        elif r.code is Blocker.AT_KNOWN_GOOD:
            state, why, ok = "prepared", r.reason, True
        elif r.code is Blocker.NO_KNOWN_GOOD and not evaluated:
            state, ok = "pending", True
            why = (
                f"{r.reason}: the operator records one once the target has been healthy for "
                "knownGoodAfterSeconds"
            )
        else:
            state, why, ok = "not ready", r.reason, False
        checks.append(StepCheck(r.index, r.type.value, ref, state, why, ok))
    return checks
