"""Small builders for specs, statuses, query answers and Kubernetes objects.

Each builder gives a valid default and takes only what a test wants to vary, so a test
reads as the one fact it is about.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from releaseguard.domain import changes
from releaseguard.domain.evaluate import Evaluation, evaluate
from releaseguard.domain.guard import Decision, TargetFacts, TickInput, decide, record_action
from releaseguard.domain.models import (
    ActionRecord,
    ActionResult,
    Blocker,
    GuardSpec,
    GuardStatus,
    LastEvaluation,
    Step,
    StepReadiness,
    StepType,
    Verdict,
)
from releaseguard.domain.observations import Observations, Outcome, QueryResult
from releaseguard.domain.plan import Apply

T0 = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """A fixed clock: T0 plus some seconds."""
    return T0 + timedelta(seconds=seconds)


# ---------------------------------------------------------------- query answers


def value(x: float) -> QueryResult:
    return QueryResult.number(x)


EMPTY = QueryResult(Outcome.EMPTY, message="the query returned no series")
NAN = QueryResult.number(float("nan"))
UNAVAILABLE = QueryResult(Outcome.UNAVAILABLE, message="query timed out")
BAD_QUERY = QueryResult(Outcome.BAD_QUERY, message="Prometheus rejected the query: parse error")
MULTIPLE = QueryResult(Outcome.MULTIPLE, message="the query returned 2 series")


# ---------------------------------------------------------------- spec


def metric(name: str = "error-rate", **bounds: Any) -> dict[str, Any]:
    """A metric on the wire; `max=0.05` unless bounds are given."""
    bounds = bounds or {"max": 0.05}
    if "maxRatio" in bounds and "baselineQuery" not in bounds:
        bounds["baselineQuery"] = f"baseline_{name.replace('-', '_')}"
    return {"name": name, "query": name.replace("-", "_"), **bounds}


def feature_flag(value: str = "false", **extra: Any) -> dict[str, Any]:
    return {
        "type": "FeatureFlag",
        "featureFlag": {"configMap": "checkout-flags", "key": "new-flow", "value": value},
        **extra,
    }


def canary_weight(weight: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "type": "CanaryWeight",
        "canaryWeight": {"httpRoute": "checkout", "canaryBackend": "checkout-v2", "weight": weight},
        **extra,
    }


def scale(replicas: int = 0, **extra: Any) -> dict[str, Any]:
    return {"type": "Scale", "scale": {"deployment": "checkout-v2", "replicas": replicas}, **extra}


def blue_green(**extra: Any) -> dict[str, Any]:
    return {
        "type": "BlueGreen",
        "blueGreen": {"service": "checkout", "selectorKey": "color", "stableValue": "blue"},
        **extra,
    }


def rollback(to: str = "LastKnownGood", **extra: Any) -> dict[str, Any]:
    return {"type": "Rollback", "rollback": {"toRevision": to}, **extra}


def step(wire: dict[str, Any]) -> Step:
    return Step.model_validate(wire)


def steps(*wires: dict[str, Any]) -> list[Step]:
    return [step(w) for w in wires]


def guard_spec(**fields: Any) -> GuardSpec:
    """A spec on the wire (camelCase), with one max metric and two steps by default."""
    wire: dict[str, Any] = {
        "target": {"deployment": "checkout"},
        "metrics": [metric()],
        "consecutiveBreaches": 2,
        "escalateAfterSeconds": 60,
        "knownGoodAfterSeconds": 60,
        "steps": [feature_flag(), rollback()],
    }
    wire.update(fields)
    return GuardSpec.model_validate(wire)


# ---------------------------------------------------------------- status parts


def last_evaluation(
    count: int = 0, since: datetime | None = None, verdict: Verdict | None = None
) -> LastEvaluation:
    if verdict is None:
        verdict = Verdict.BREACH if count else Verdict.HEALTHY
    return LastEvaluation(
        time=T0, verdict=verdict, consecutive_breaches=count, breaching_since=since
    )


def action(
    incident: int = 1,
    index: int = 0,
    result: ActionResult = ActionResult.APPLIED,
    time: datetime = T0,
    type_: StepType = StepType.FEATURE_FLAG,
    **extra: Any,
) -> ActionRecord:
    return ActionRecord(
        id=f"{incident}-{type_.value.lower()}-{index}",
        type=type_,
        step_index=index,
        target="ConfigMap/checkout-flags",
        result=result,
        time=time,
        **extra,
    )


def _code(reason: str) -> Blocker | None:
    """The code domain/changes.py gives with a reason worded so (for the tests' readiness)."""
    if reason.startswith(changes.REFUSED):
        return Blocker.STATE_CHANGED
    if changes.AT_KNOWN_GOOD in reason:
        return Blocker.AT_KNOWN_GOOD
    return None


def ready(spec_or_steps: GuardSpec | list[Step], **not_ready: str) -> list[StepReadiness]:
    """Readiness for every step: ready, except indexes named `s<index>=reason` (with the
    code a rollback refusal or one already at the known-good revision has)."""
    all_steps = spec_or_steps.steps if isinstance(spec_or_steps, GuardSpec) else spec_or_steps
    reasons = {int(k[1:]): why for k, why in not_ready.items()}
    return [
        StepReadiness(
            type=s.type,
            index=i,
            ready=i not in reasons,
            reason=reasons.get(i, ""),
            code=_code(reasons[i]) if i in reasons else None,
        )
        for i, s in enumerate(all_steps)
    ]


# ---------------------------------------------------------------- guard ticks

BREACHING = Observations(metrics={"error-rate": value(0.31)})
HEALTHY = Observations(metrics={"error-rate": value(0.004)})
NO_DATA = Observations(metrics={"error-rate": EMPTY})

RELEASE_A = TargetFacts(
    revision="7", pod_template_hash="aaa", images=("checkout:1.41",), available=True
)
RELEASE_B = TargetFacts(
    revision="8", pod_template_hash="bbb", images=("checkout:1.42",), available=True
)


def evaluation(
    spec: GuardSpec, status: GuardStatus, obs: Observations, now: datetime
) -> Evaluation:
    return evaluate(spec, obs, status.last_evaluation, now)


def tick(
    spec: GuardSpec,
    status: GuardStatus,
    now: datetime,
    obs: Observations = BREACHING,
    target: TargetFacts = RELEASE_B,
    readiness: list[StepReadiness] | None = None,
    recovered: tuple[ActionRecord, ...] = (),
    annotations: dict[str, str] | None = None,
    generation: int = 1,
) -> Decision:
    """One evaluation and decision, as the service runs it, at `now`."""
    return decide(
        TickInput(
            spec,
            status,
            evaluation(spec, status, obs, now),
            target,
            now,
            generation,
            readiness=ready(spec) if readiness is None else readiness,
            recovered=recovered,
            annotations=annotations or {},
        )
    )


def apply_planned(
    decision: Decision,
    now: datetime,
    result: ActionResult = ActionResult.APPLIED,
    after: dict[str, Any] | None = None,
) -> Decision:
    """Record the planned step with `result`, as the service does after applying it."""
    plan = decision.plan
    assert isinstance(plan, Apply), plan
    record = ActionRecord(
        id=plan.action_id,
        type=plan.step.type,
        step_index=plan.index,
        target="Object/x",
        result=result,
        time=now,
        reason=decision.reason,
        before={"k": "before"},
        after=after if after is not None else {"k": "after"},
    )
    return record_action(decision.status, record, now)


# ---------------------------------------------------------------- Kubernetes objects


def config_map(data: dict[str, str] | None) -> dict[str, Any]:
    cm: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "checkout-flags", "resourceVersion": "41"},
    }
    if data is not None:
        cm["data"] = data
    return cm


def backend(name: str, weight: int | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name, "port": 8080}
    if weight is not None:
        ref["weight"] = weight
    return ref


def http_route(*rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "checkout", "resourceVersion": "12"},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "rules": [{"matches": [{"path": {"value": "/"}}], "backendRefs": r} for r in rules],
        },
    }


def service(selector: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "checkout", "resourceVersion": "3"},
        "spec": {"selector": selector, "ports": [{"port": 80}]},
    }


def pod_template(image: str, template_hash: str | None = None) -> dict[str, Any]:
    labels = {"app": "checkout"}
    if template_hash is not None:
        labels["pod-template-hash"] = template_hash
    return {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def deployment(
    revision: int = 3,
    image: str = "checkout:1.42",
    replicas: int | None = 2,
    annotations: dict[str, str] | None = None,
    name: str = "checkout",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "checkout"}},
        "template": pod_template(image),
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "resourceVersion": "99",
            "annotations": {
                "deployment.kubernetes.io/revision": str(revision),
                **(annotations or {}),
            },
        },
        "spec": spec,
    }


def replica_set(revision: int, template_hash: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"checkout-{template_hash}",
            "labels": {"app": "checkout", "pod-template-hash": template_hash},
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
        },
        "spec": {"template": pod_template(image, template_hash)},
    }
