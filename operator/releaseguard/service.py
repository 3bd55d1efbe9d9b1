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
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from releaseguard.adapters import cluster as cluster_io
from releaseguard.adapters import metrics
from releaseguard.adapters.argocd import ArgoCD
from releaseguard.adapters.claims import ClaimRegistry
from releaseguard.adapters.cluster import Cluster, Missing, SecretNotLabelled
from releaseguard.adapters.events import EventPoster
from releaseguard.adapters.kube import Kube
from releaseguard.adapters.notify import Notifier, SinkProblem, Sinks
from releaseguard.adapters.prometheus import Prometheus, PrometheusPool
from releaseguard.adapters.targets import TargetCache
from releaseguard.domain import steps
from releaseguard.domain.allowlist import DEFAULT_PATTERNS, AllowList, url_problem
from releaseguard.domain.announce import ANNOUNCED_REASONS, mark_announced, pending_announcements
from releaseguard.domain.applicability import StepView, recovered_records
from releaseguard.domain.changes import Change, Obj
from releaseguard.domain.conditions import EventReason, EventType, Reason
from releaseguard.domain.confirmation import next_evaluation_delay
from releaseguard.domain.evaluate import Evaluation, evaluate
from releaseguard.domain.gitops import pause_due
from releaseguard.domain.guard import (
    Decision,
    Event,
    TargetFacts,
    TickInput,
    decide,
    decide_inactive,
    record_action,
)
from releaseguard.domain.identity import incident_recorded
from releaseguard.domain.models import GuardSpec, GuardStatus, Phase, StepReadiness
from releaseguard.domain.notifications import moments, record_owed, settle
from releaseguard.domain.observations import Observations
from releaseguard.domain.ownership import (
    GuardIdentity,
    Overlap,
    claims_of,
    overlaps,
    with_conflict,
    yielded,
)
from releaseguard.domain.plan import Apply
from releaseguard.domain.reverts import undone_without_managers
from releaseguard.domain.salvage import salvage_message, salvage_status
from releaseguard.domain.writes import Stored, actions_recorded, must_write

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class GuardRef:
    namespace: str
    name: str
    uid: str
    generation: int
    created: str = ""  # creationTimestamp: the older of two overlapping guards acts

    @property
    def identity(self) -> GuardIdentity:
        return GuardIdentity(self.name, self.uid, self.created)


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


def read_status(raw: Mapping[str, Any] | None) -> tuple[GuardStatus, str]:
    """The stored status, keeping every readable part (domain/salvage.py), and what was
    dropped as a sentence for a Warning Event ("" when it was readable whole)."""
    status, dropped = salvage_status(raw)
    if not dropped:
        return status, ""
    message = salvage_message(dropped)
    log.warning("%s", message)
    return status, message


@dataclass(frozen=True)
class InvalidSpec:
    """A spec that does not validate, and why (phase Invalid)."""

    problem: str


def parse_spec(raw: GuardSpec | InvalidSpec | Mapping[str, Any]) -> GuardSpec | InvalidSpec:
    """The spec as the models read it (one already parsed is returned as it is)."""
    if isinstance(raw, (GuardSpec, InvalidSpec)):
        return raw
    try:
        return GuardSpec.model_validate(dict(raw))
    except ValidationError as exc:
        return InvalidSpec(_spec_problem(exc))


def _spec_problem(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"spec.{where}: {err['msg']}" if where else err["msg"])
    return "; ".join(parts)


class GuardService:
    def __init__(
        self,
        kube: Cluster,
        prometheus: PrometheusPool,
        default_prometheus_url: str | None,
        status_heartbeat: timedelta = timedelta(seconds=60),
        clock: Callable[[], datetime] = utcnow,
        targets: TargetCache | None = None,
        allowed_urls: AllowList | None = None,
        notifier: Notifier | None = None,
        default_alertmanager_url: str | None = None,
        argocd_cross_namespace: bool = False,
        events: EventPoster | None = None,
    ) -> None:
        """`targets`: the watch-fed copies of the guards' targets (default: fed through
        `kube`'s API configuration; its watches start with the first guard). `events`:
        posts the action Events (default: through `kube`'s API configuration). Both
        defaults need `kube` to be a `Kube`.
        `allowed_urls`: the URLs guards may name (default: the default Prometheus URL
        and ^https://, as `releaseguard run` without --allowed-url)."""
        if allowed_urls is None:
            allowed_urls = AllowList.of(
                DEFAULT_PATTERNS, [default_prometheus_url, default_alertmanager_url]
            )
        self.allowed_urls = allowed_urls
        self.kube = kube
        if targets is None or events is None:
            assert isinstance(kube, Kube), "targets and events are needed without Kube"
            targets = targets if targets is not None else TargetCache(kube.api)
            events = events if events is not None else EventPoster(kube.api)
        self.targets = targets
        self.prometheus = prometheus
        self.default_prometheus_url = default_prometheus_url
        self.status_heartbeat = status_heartbeat
        self.clock = clock
        self.sinks = Sinks(kube, allowed_urls, notifier, default_alertmanager_url, clock)
        self.events = events  # action Events, from status (domain/announce.py)
        self.claims = ClaimRegistry()  # what each guard's steps write (domain/ownership.py)
        self._write_failing: set[str] = set()  # uids whose last status write failed
        self.argocd = ArgoCD(kube, argocd_cross_namespace)  # spec.gitOps.argoCD

    def tick(
        self,
        guard: GuardRef,
        raw_spec: GuardSpec | InvalidSpec | Mapping[str, Any],
        annotations: Mapping[str, str],
        status: GuardStatus,
        stored: Stored | None,
    ) -> TickResult:
        """`raw_spec`: the spec as parsed by `parse_spec` (the handler parses it once per
        change), or as stored; `status`: the guard's state after its previous
        evaluation; `stored`: what the API server holds (see `domain.writes`)."""
        before = status
        parsed = parse_spec(raw_spec)
        spec = parsed if isinstance(parsed, GuardSpec) else None
        if isinstance(parsed, InvalidSpec):
            decision = decide_inactive(
                status,
                Phase.INVALID,
                "InvalidSpec",
                parsed.problem,
                guard.generation,
                self.clock(),
            )
        else:
            decision = self._evaluate_and_contain(guard, parsed, annotations, status, stored)
        status = decision.status
        # Incident and action Events are posted from the written status, below.
        events = tuple(e for e in decision.events if e.reason not in ANNOUNCED_REASONS)
        delay = next_evaluation_delay(spec, status) if spec is not None else None
        now = self.clock()
        # What is owed to spec.notify goes into the same status write as the transition.
        status = self._tell(guard, spec, before, status, now)
        if not must_write(stored, status, now, self.status_heartbeat):
            self.sinks.deliver(guard, spec, status)
            # Nothing recorded changed, so the stored status holds what `status` records.
            return TickResult(self._announce(guard, status, now), stored, events, delay)
        try:
            self._patch_status(guard.namespace, guard.name, status)
        except ApiException as exc:
            log.error(
                "%s/%s: status write failed: %s %s",
                guard.namespace,
                guard.name,
                exc.status,
                exc.reason,
            )
            if guard.uid not in self._write_failing:  # one Event per run of failures
                self._write_failing.add(guard.uid)
                events = (*events, _write_failed_event(exc))
            self.sinks.deliver(guard, spec, status)
            return TickResult(status, stored, events, delay)
        metrics.STATUS_WRITES.inc()
        self._write_failing.discard(guard.uid)
        self.sinks.deliver(guard, spec, status)
        written = Stored(status, now)
        return TickResult(self._announce(guard, status, now), written, events, delay)

    def _patch_status(self, ns: str, name: str, status: GuardStatus) -> None:
        """Write `status` (its messages cut to the CRD's limits, domain/bounds.py). A
        conflict, throttling or server error is retried once at once; every failure is
        counted; the last one raises, and the next evaluation writes again."""
        for attempt in (1, 2):
            try:
                self.kube.patch_status(ns, name, status.merge_patch())
                return
            except ApiException as exc:
                metrics.STATUS_WRITE_ERRORS.inc()
                if attempt == 2 or not _transient(exc):
                    raise

    def _announce(self, guard: GuardRef, status: GuardStatus, now: datetime) -> GuardStatus:
        """Post the Events the stored status owes (domain/announce.py); the keys posted
        go into the next status write."""
        posted = [
            a.key
            for a in pending_announcements(status)
            if self.events.post(guard.namespace, guard.name, guard.uid, a, now)
        ]
        return mark_announced(status, posted)

    def register(
        self, guard: GuardRef, raw_spec: GuardSpec | InvalidSpec | Mapping[str, Any]
    ) -> None:
        """Make the guard's claims known to the other guards before it first evaluates."""
        spec = parse_spec(raw_spec)
        if isinstance(spec, GuardSpec):
            self.claims.register(guard.namespace, guard.identity, claims_of(spec))

    def _ownership(
        self, guard: GuardRef, spec: GuardSpec, readiness: list[StepReadiness]
    ) -> tuple[list[StepReadiness], list[Overlap]]:
        """Readiness with the steps yielded to an older overlapping guard marked not ready,
        and the overlaps (domain/ownership.py)."""
        mine = claims_of(spec)
        self.claims.register(guard.namespace, guard.identity, mine)
        if not mine:  # a guard without steps (detection only) writes nothing
            return readiness, []
        found = overlaps(guard.identity, mine, self.claims.others(guard.namespace, guard.uid))
        return yielded(readiness, found), found

    def _tell(
        self,
        guard: GuardRef,
        spec: GuardSpec | None,
        before: GuardStatus,
        status: GuardStatus,
        now: datetime,
    ) -> GuardStatus:
        """Structured log lines, per-guard metrics and the notifications owed for what
        changed between `before` and `status`."""
        ctx = {"namespace": guard.namespace, "guard": guard.name}
        incident = status.incident.number if status.incident is not None else None
        if before.phase is not status.phase:
            log.info(
                "%s/%s: phase %s -> %s",
                guard.namespace,
                guard.name,
                before.phase.value,
                status.phase.value,
                extra={
                    **ctx,
                    "event": "transition",
                    "incident": incident,
                    "phase": status.phase.value,
                    "previousPhase": before.phase.value,
                },
            )
        for moment, number, action_id, message in moments(before, status):
            log.info(
                "%s/%s: %s (incident %d) %s",
                guard.namespace,
                guard.name,
                moment.value,
                number,
                message,
                extra={**ctx, "event": moment.value, "incident": number, "actionId": action_id},
            )
        last = status.last_evaluation
        metrics.observe_guard(
            guard.namespace,
            guard.name,
            status.phase.value,
            last.consecutive_breaches if last is not None else 0,
        )
        ttc = status.incident.time_to_contain_seconds if status.incident is not None else None
        old = before.incident
        if ttc is not None and (
            old is None or old.number != incident or old.time_to_contain_seconds is None
        ):
            metrics.TIME_TO_CONTAIN.observe(ttc)
        if spec is None:  # unreadable spec: keep what is owed as it is
            return status
        count = len(spec.notify)
        status = settle(status, self.sinks.collect(guard.uid), count)
        return record_owed(before, status, count, now)

    def forget(self, guard: GuardRef) -> None:
        """The guard's daemon has stopped (deleted, or the operator stops)."""
        metrics.forget_guard(guard.namespace, guard.name)
        self.sinks.forget(guard.uid)
        self.claims.forget(guard.namespace, guard.uid)

    def _evaluate_and_contain(
        self,
        guard: GuardRef,
        spec: GuardSpec,
        annotations: Mapping[str, str],
        status: GuardStatus,
        stored: Stored | None = None,
    ) -> Decision:
        """One evaluation of an active guard: read the target and the metrics, read the
        steps' objects and decide, write the incident, apply the planned step and
        record it, pause GitOps."""
        now = self.clock()
        if spec.suspend:
            return decide_inactive(
                status,
                Phase.SUSPENDED,
                Reason.SUSPENDED,
                "spec.suspend is true: not evaluating",
                guard.generation,
                now,
            )
        observed = self._read_and_evaluate(guard, spec, status, now)
        if isinstance(observed, Decision):
            return observed
        decision, views = self._read_steps_and_decide(guard, spec, annotations, status, observed)
        plan = decision.plan
        if isinstance(plan, Apply):
            if not self._write_incident_first(guard, decision, plan, stored):
                return replace(decision, plan=None)
            decision = self._apply_planned_step(guard, spec, decision, plan, views)
        return self._pause_gitops(guard.namespace, guard, spec, decision)

    def _read_and_evaluate(
        self, guard: GuardRef, spec: GuardSpec, status: GuardStatus, now: datetime
    ) -> _Observed | Decision:
        """Read the target and query the metrics, and judge them (domain/evaluate.py); a
        Decision instead when the guard cannot work (phase Invalid)."""
        ns = guard.namespace
        try:
            target, target_sets, facts = self._target(ns, spec.target.deployment)
            client = self._prometheus(ns, spec)
            self.sinks.check(ns, spec)
        except Missing as exc:
            return decide_inactive(
                status,
                Phase.INVALID,
                Reason.MISSING_OBJECT,
                f"{exc}: check spec and namespace {ns}",
                guard.generation,
                now,
            )
        except (_ConfigError, SinkProblem) as exc:
            return decide_inactive(
                status, Phase.INVALID, exc.reason, str(exc), guard.generation, now
            )
        except SecretNotLabelled as exc:
            return decide_inactive(
                status, Phase.INVALID, Reason.SECRET_NOT_LABELLED, str(exc), guard.generation, now
            )
        queries = {f"m:{m.name}": m.query for m in spec.metrics}
        queries |= {f"b:{m.name}": m.baseline_query for m in spec.metrics if m.baseline_query}
        if spec.min_traffic is not None:
            queries["traffic"] = spec.min_traffic.query
        answers = client.query_many(queries, namespace=ns)
        observations = Observations(
            metrics={m.name: answers[f"m:{m.name}"] for m in spec.metrics},
            baselines={m.name: answers[f"b:{m.name}"] for m in spec.metrics if m.baseline_query},
            traffic=answers.get("traffic"),
        )
        evaluation = evaluate(spec, observations, status.last_evaluation, now)
        if evaluation.invalid:
            inactive = decide_inactive(
                status, Phase.INVALID, Reason.BAD_QUERY, evaluation.invalid, guard.generation, now
            )
            return Decision(
                inactive.status.model_copy(update={"last_evaluation": evaluation.result}),
                events=inactive.events,
            )
        return _Observed(target, target_sets, facts, evaluation, now)

    def _read_steps_and_decide(
        self,
        guard: GuardRef,
        spec: GuardSpec,
        annotations: Mapping[str, str],
        status: GuardStatus,
        observed: _Observed,
    ) -> tuple[Decision, list[StepView]]:
        """Read each step's object (readiness, markers, reverts) and decide (domain/guard.py)."""
        ns, now = guard.namespace, observed.now
        views = cluster_io.view_steps(
            self.kube, ns, spec, status, observed.target, observed.target_sets
        )
        readiness, found = self._ownership(guard, spec, [v.readiness for v in views])
        pause_ready = self.argocd.readiness(ns, spec)
        if pause_ready is not None:
            readiness = [*readiness, pause_ready]
        tick = TickInput(
            spec,
            status,
            observed.evaluation,
            observed.facts,
            now,
            guard.generation,
            readiness=readiness,
            # Only markers of the incident the status records count (domain/identity.py).
            recovered=recovered_records(views, guard.uid, status.incident),
            annotations=dict(annotations),
            objects=self._objects(ns, spec, status, views),
        )
        decision = decide(tick)
        shown, conflict_events = with_conflict(decision.status, found, now, guard.generation)
        return replace(decision, status=shown, events=(*decision.events, *conflict_events)), views

    def _write_incident_first(
        self, guard: GuardRef, decision: Decision, plan: Apply, stored: Stored | None
    ) -> bool:
        """Write the incident (and its uid, which the step's marker names) before the
        step: a process that dies right after the step's write leaves a marker that the
        status it leaves behind can tell from an older incident's. False: the write
        failed, and the step is not applied this time."""
        recorded_incident = stored.status.incident if stored else None
        if incident_recorded(recorded_incident, decision.status.incident) and actions_recorded(
            stored, decision.status
        ):
            return True
        try:
            self._patch_status(guard.namespace, guard.name, decision.status)
        except ApiException as exc:
            log.error(
                "%s/%s: status write before %s failed (%s %s): not applied this time",
                guard.namespace,
                guard.name,
                plan.action_id,
                exc.status,
                exc.reason,
            )
            return False
        metrics.STATUS_WRITES.inc()
        return True

    def _apply_planned_step(
        self,
        guard: GuardRef,
        spec: GuardSpec,
        decision: Decision,
        plan: Apply,
        views: list[StepView],
    ) -> Decision:
        """Apply the planned step once (adapters/cluster.py) and record its outcome."""
        ns = guard.namespace
        # A Rollback restores the target it was planned with, on every retry.
        view = views[plan.index]
        pinned = None
        if isinstance(view.change, Change):
            pinned = steps.kind_of(view.step).pinned(view.change)
        started = time.perf_counter()
        record = cluster_io.apply_step(
            self.kube,
            ns,
            spec,
            decision.status,
            guard.uid,
            plan.index,
            plan.action_id,
            decision.reason,
            self.clock,
            pinned_hash=pinned,
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

    def _pause_gitops(
        self, ns: str, guard: GuardRef, spec: GuardSpec, decision: Decision
    ) -> Decision:
        """Pause Argo CD with the incident's first applied step (domain/gitops.py)."""
        action_id = pause_due(spec, decision.status, self.clock())
        if action_id is None:
            return decision
        number = decision.status.incident.number if decision.status.incident else 0
        why = f"the first step of incident {number} was applied"
        record = self.argocd.pause(ns, spec, decision.status, guard.uid, action_id, why, self.clock)
        metrics.ACTIONS.labels(record.type.value, record.result.value).inc()
        log.info("%s/%s: action %s %s", ns, guard.name, record.id, record.result.value)
        recorded = record_action(decision.status, record, self.clock())
        return replace(
            decision, status=recorded.status, events=(*decision.events, *recorded.events)
        )

    def _objects(
        self, ns: str, spec: GuardSpec, status: GuardStatus, views: list[StepView]
    ) -> dict[int, Obj | None]:
        """The object each step changes, as read this tick, to check the incident's steps
        still hold. A watch-fed copy has no managedFields: one undone is read again
        whole, so the revert names who wrote it (only on a tick that finds a revert)."""
        objects = {v.index: v.obj for v in views}
        for index in undone_without_managers(spec.steps, status, objects):
            obj = objects[index]
            assert obj is not None
            try:
                objects[index] = self.kube.read(ns, "Deployment", obj["metadata"]["name"])
            except (Missing, ApiException) as exc:
                log.warning("%s: re-reading %s for its managedFields: %s", ns, index, exc)
        return objects

    def _target(self, ns: str, name: str) -> tuple[Obj, list[Obj], TargetFacts]:
        """The target and its ReplicaSets from the watch-fed copies, else read from the
        API server, and what was read seeds the copies: the watches only deliver what
        changes, so each target's first evaluation reads it (adapters/targets.py)."""
        cached = self.targets.lookup(ns, name)
        if cached is not None:
            return cluster_io.target(self.kube, ns, name, cached)
        metrics.TARGET_READS.inc()
        read = self.targets.begin_read()
        target, target_sets, facts = cluster_io.target(self.kube, ns, name)
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
            raise _ConfigError(problem, Reason.URL_NOT_ALLOWED)
        token = None
        ref = spec.prometheus.bearer_token_secret_ref
        if ref is not None:
            token = cluster_io.secret_value(self.kube, ns, ref.name, ref.key)
            if not (token.isascii() and token.isprintable()):
                raise _ConfigError(
                    f"Secret {ref.name} key {ref.key} is not a bearer token (printable ASCII "
                    "text): fix the Secret",
                    Reason.INVALID_TOKEN,
                )
        return self.prometheus.get(url, spec.prometheus.timeout_seconds, token)


@dataclass(frozen=True)
class _Observed:
    """What one evaluation read of the target and the metrics, and how they were judged."""

    target: Obj
    target_sets: list[Obj]
    facts: TargetFacts
    evaluation: Evaluation
    now: datetime


class _ConfigError(Exception):
    def __init__(self, message: str, reason: Reason = Reason.NO_PROMETHEUS) -> None:
        super().__init__(message)
        self.reason = reason


def _transient(exc: ApiException) -> bool:
    return exc.status in (0, 409, 429) or (exc.status or 0) >= 500


def _write_failed_event(exc: ApiException) -> Event:
    body = str(exc.body or "")[:300]
    return Event(
        EventType.WARNING,
        EventReason.STATUS_WRITE_FAILED,
        f"writing the guard's status failed ({exc.status} {exc.reason}: {body}); what the "
        "guard decided is not recorded, no further step is applied until it is, and the "
        "write is retried every evaluation",
    )
