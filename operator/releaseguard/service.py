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
from releaseguard.adapters.kube import Kube, Missing, SecretNotLabelled, recovered_record
from releaseguard.adapters.prometheus import Prometheus, PrometheusPool
from releaseguard.adapters.targets import TargetCache
from releaseguard.domain.allowlist import DEFAULT_PATTERNS, AllowList, url_problem
from releaseguard.domain.changes import Obj
from releaseguard.domain.confirmation import next_evaluation_delay
from releaseguard.domain.evaluate import evaluate
from releaseguard.domain.guard import (
    Decision,
    Event,
    TargetFacts,
    decide,
    decide_inactive,
    record_action,
)
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
    # Seconds until the next evaluation is due (domain.confirmation); None when the spec
    # could not be read, and the caller keeps its own interval.
    next_delay: float | None = None


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
        targets: TargetCache | None = None,
        allowed_urls: AllowList | None = None,
    ) -> None:
        """`targets`: the watch-fed copies of the guards' targets (default: fed through
        `kube`'s API configuration; its watches start with the first guard).
        `allowed_urls`: the URLs guards may name (default: the default Prometheus URL
        and ^https://, as `releaseguard run` without --allowed-url)."""
        if allowed_urls is None:
            allowed_urls = AllowList.of(DEFAULT_PATTERNS, [default_prometheus_url])
        self.allowed_urls = allowed_urls
        self.kube = kube
        self.targets = targets if targets is not None else TargetCache(kube.api)
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
    ) -> TickResult:
        """`status`: the guard's state after its previous evaluation; `stored`: what the
        API server holds (see `domain.writes`)."""
        try:
            spec: GuardSpec | None = GuardSpec.model_validate(dict(raw_spec))
        except ValidationError as exc:
            spec = None
            decision = decide_inactive(
                status,
                Phase.INVALID,
                "InvalidSpec",
                _spec_problem(exc),
                guard.generation,
                self.clock(),
            )
        else:
            decision = self._decide(guard, spec, annotations, status)
        status = decision.status
        delay = next_evaluation_delay(spec, status) if spec is not None else None
        now = self.clock()
        if not must_write(stored, status, now, self.status_heartbeat):
            return TickResult(status, stored, decision.events, delay)
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
            return TickResult(status, stored, decision.events, delay)
        metrics.STATUS_WRITES.inc()
        return TickResult(status, Stored(status, now), decision.events, delay)

    def _decide(
        self,
        guard: GuardRef,
        spec: GuardSpec,
        annotations: Mapping[str, str],
        status: GuardStatus,
    ) -> Decision:
        now = self.clock()
        ns = guard.namespace
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
            target, target_sets, facts = self._target(ns, spec.target.deployment)
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
                status, Phase.INVALID, exc.reason, str(exc), guard.generation, now
            )
        except SecretNotLabelled as exc:
            return decide_inactive(
                status, Phase.INVALID, "SecretNotLabelled", str(exc), guard.generation, now
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

    def _target(self, ns: str, name: str) -> tuple[Obj, list[Obj], TargetFacts]:
        """The target and its ReplicaSets from the watch-fed copies, else read from the
        API server, and what was read seeds the copies: the watches only deliver what
        changes, so each target's first evaluation reads it (adapters/targets.py)."""
        cached = self.targets.lookup(ns, name)
        if cached is not None:
            return self.kube.target_facts(ns, name, cached)
        metrics.TARGET_READS.inc()
        read = self.targets.begin_read()
        target, target_sets, facts = self.kube.target_facts(ns, name)
        self.targets.seed(read, target, target_sets)
        return target, target_sets, facts

    def _prometheus(self, ns: str, spec: GuardSpec) -> Prometheus:
        url = spec.prometheus.url or self.default_prometheus_url
        if not url:
            raise _ConfigError(
                "no Prometheus URL: set spec.prometheus.url, or start the operator with "
                "--prometheus-url"
            )
        # Before any Secret is read or request sent: see domain/allowlist.py.
        if problem := url_problem(url, self.allowed_urls):
            raise _ConfigError(problem, "URLNotAllowed")
        token = None
        ref = spec.prometheus.bearer_token_secret_ref
        if ref is not None:
            token = self.kube.secret_value(ns, ref.name, ref.key)
        return self.prometheus.get(url, spec.prometheus.timeout_seconds, token)


class _ConfigError(Exception):
    def __init__(self, message: str, reason: str = "NoPrometheus") -> None:
        super().__init__(message)
        self.reason = reason
