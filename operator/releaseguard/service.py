"""One evaluation of one guard, end to end: gather facts, decide, act, record.

Blocking (the Kubernetes and Prometheus clients are synchronous): the handler runs
`GuardService.tick` in a worker thread. The decisions themselves are the pure
functions in `releaseguard.domain`; this module only moves data between them and the
adapters, and it never lets one guard's failure escape as an exception.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from releaseguard.adapters import metrics
from releaseguard.adapters.kube import Kube, Missing, recovered_record
from releaseguard.adapters.prometheus import Prometheus, PrometheusPool
from releaseguard.domain.changes import Obj
from releaseguard.domain.evaluate import evaluate
from releaseguard.domain.guard import Decision, Event, decide, decide_inactive, record_action
from releaseguard.domain.models import GuardSpec, GuardStatus, Phase
from releaseguard.domain.observations import Observations
from releaseguard.domain.plan import PlanKind
from releaseguard.domain.writes import Stored, must_write

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class GuardRef:
    namespace: str
    name: str
    uid: str
    generation: int


@dataclass(frozen=True)
class TickResult:
    status: GuardStatus  # the guard's state after this evaluation
    stored: Stored | None  # what the API server holds now (None: unknown)
    events: tuple[Event, ...]


def parse_status(raw: Mapping[str, Any] | None) -> GuardStatus:
    """The stored status; an unreadable one (older schema) starts over rather than crash."""
    try:
        return GuardStatus.model_validate(dict(raw or {}))
    except ValidationError as exc:
        log.warning("ignoring unreadable status: %s", exc)
        return GuardStatus()


def _spec_problem(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"spec.{where}: {err['msg']}" if where else err["msg"])
    return "; ".join(parts)


class GuardService:
    def __init__(
        self,
        kube: Kube,
        prometheus: PrometheusPool,
        default_prometheus_url: str | None,
        status_heartbeat: timedelta = timedelta(seconds=60),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.kube = kube
        self.prometheus = prometheus
        self.default_prometheus_url = default_prometheus_url
        self.status_heartbeat = status_heartbeat
        self.clock = clock

    def tick(
        self,
        guard: GuardRef,
        raw_spec: Mapping[str, Any],
        annotations: Mapping[str, str],
        status: GuardStatus,
        stored: Stored | None,
        cached_target: tuple[Obj, list[Obj]] | None = None,
    ) -> TickResult:
        """`status`: the guard's state after its previous evaluation; `stored`: what the
        API server holds (see `domain.writes`); `cached_target`: the target Deployment and
        its ReplicaSets as the operator's watches last saw them (None: read them)."""
        decision = self._decide(guard, raw_spec, annotations, status, cached_target)
        status = decision.status
        now = self.clock()
        if not must_write(stored, status, now, self.status_heartbeat):
            return TickResult(status, stored, decision.events)
        try:
            self.kube.patch_status(guard.namespace, guard.name, status.merge_patch())
        except ApiException as exc:
            log.error(
                "%s/%s: status write failed: %s %s",
                guard.namespace,
                guard.name,
                exc.status,
                exc.reason,
            )
            return TickResult(status, stored, decision.events)
        metrics.STATUS_WRITES.inc()
        return TickResult(status, Stored(status, now), decision.events)

    def _decide(
        self,
        guard: GuardRef,
        raw_spec: Mapping[str, Any],
        annotations: Mapping[str, str],
        status: GuardStatus,
        cached_target: tuple[Obj, list[Obj]] | None,
    ) -> Decision:
        now = self.clock()
        ns = guard.namespace
        try:
            spec = GuardSpec.model_validate(dict(raw_spec))
        except ValidationError as exc:
            return decide_inactive(
                status, Phase.INVALID, "InvalidSpec", _spec_problem(exc), guard.generation, now
            )
        if spec.suspend:
            return decide_inactive(
                status,
                Phase.SUSPENDED,
                "Suspended",
                "spec.suspend is true: not evaluating",
                guard.generation,
                now,
            )
        try:
            target, target_sets, facts = self.kube.target_facts(
                ns, spec.target.deployment, cached_target
            )
            client = self._prometheus(ns, spec)
        except Missing as exc:
            return decide_inactive(
                status,
                Phase.INVALID,
                "MissingObject",
                f"{exc}: check spec and namespace {ns}",
                guard.generation,
                now,
            )
        except _ConfigError as exc:
            return decide_inactive(
                status, Phase.INVALID, "NoPrometheus", str(exc), guard.generation, now
            )

        queries = {f"m:{m.name}": m.query for m in spec.metrics}
        queries |= {f"b:{m.name}": m.baseline_query for m in spec.metrics if m.baseline_query}
        if spec.min_traffic is not None:
            queries["traffic"] = spec.min_traffic.query
        answers = client.query_many(queries)
        observations = Observations(
            metrics={m.name: answers[f"m:{m.name}"] for m in spec.metrics},
            baselines={m.name: answers[f"b:{m.name}"] for m in spec.metrics if m.baseline_query},
            traffic=answers.get("traffic"),
        )
        evaluation = evaluate(spec, observations, status.last_evaluation, now)
        if evaluation.invalid:
            inactive = decide_inactive(
                status, Phase.INVALID, "BadQuery", evaluation.invalid, guard.generation, now
            )
            return Decision(
                inactive.status.model_copy(update={"last_evaluation": evaluation.result}),
                events=inactive.events,
            )

        views = self.kube.view_steps(ns, spec, status, target, target_sets)
        recovered = [r for v in views if (r := recovered_record(v, guard.uid)) is not None]
        decision = decide(
            spec,
            status,
            evaluation,
            facts,
            [v.readiness for v in views],
            recovered,
            dict(annotations),
            guard.generation,
            now,
        )
        plan = decision.plan
        if plan is None or plan.kind is not PlanKind.APPLY:
            return decision
        assert plan.index is not None and plan.action_id is not None
        started = time.perf_counter()
        record = self.kube.apply_step(
            ns,
            spec,
            decision.status,
            guard.uid,
            plan.index,
            plan.action_id,
            decision.reason,
            self.clock,
        )
        metrics.ACTIONS.labels(record.type.value, record.result.value).inc()
        log.info(
            "%s/%s: action %s %s %s decision-to-patch %.1f ms",
            ns,
            guard.name,
            record.id,
            record.type.value,
            record.result.value,
            (time.perf_counter() - started) * 1000,
        )
        recorded = record_action(decision.status, record, self.clock())
        return Decision(recorded.status, events=decision.events + recorded.events)

    def _prometheus(self, ns: str, spec: GuardSpec) -> Prometheus:
        url = spec.prometheus.url or self.default_prometheus_url
        if not url:
            raise _ConfigError(
                "no Prometheus URL: set spec.prometheus.url, or start the operator with "
                "--prometheus-url"
            )
        token = None
        ref = spec.prometheus.bearer_token_secret_ref
        if ref is not None:
            token = self.kube.secret_value(ns, ref.name, ref.key)
        return self.prometheus.get(url, spec.prometheus.timeout_seconds, token)


class _ConfigError(Exception):
    pass
