"""One tick of a guard: from an evaluation and what the cluster looks like, to the next
status, the step to take (if any) and the Events to post.

Pure: no I/O, the clock is passed in. The service gathers the inputs, applies the step
this returns, then calls `record_action` to fold the result into the status.

The lifecycle (api.md "Phases"):
- Watching until a breach is confirmed; then an incident opens (Breaching).
- The planner picks steps; once one is applied the guard is Contained and stays so,
  even after recovery, until re-armed (annotation or a new release). It never undoes
  its own steps.
- Exhausted while the breach is confirmed and no applicable step is left.
- An incident in which nothing was applied (dry run, or nothing applicable) closes
  by itself once the guard is healthy again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from releaseguard.domain.changes import AT_KNOWN_GOOD, REFUSED
from releaseguard.domain.confirmation import stale_confirmation
from releaseguard.domain.evaluate import Evaluation
from releaseguard.domain.identity import incident_uid
from releaseguard.domain.models import (
    MAX_ACTIONS,
    ActionRecord,
    ActionResult,
    Condition,
    GuardSpec,
    GuardStatus,
    Incident,
    KnownGood,
    LastEvaluation,
    Phase,
    ReleaseObservation,
    Revert,
    StepReadiness,
    StepType,
    Verdict,
)
from releaseguard.domain.plan import PlanKind, StepPlan, incident_actions, plan_next_step
from releaseguard.domain.reverts import (
    RevertCheck,
    check_reverts,
    describe,
    exhausted_note,
    for_planning,
    is_known_bad,
    limit_rollbacks,
    note_rollback,
    reverted_message,
    rollbacks_blocked,
    with_reverts,
)
from releaseguard.domain.rollback_target import breached_templates

CONTAIN_NOW = "releaseguard.io/contain-now"
REARM = "releaseguard.io/rearm"


@dataclass(frozen=True)
class TargetFacts:
    """The guarded Deployment as the adapter saw it this tick."""

    revision: str
    pod_template_hash: str
    images: tuple[str, ...]
    available: bool


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    status: GuardStatus
    plan: StepPlan | None = None
    reason: str = ""  # why a step is taken: goes into the action record
    events: tuple[Event, ...] = ()


@dataclass
class _Draft:
    """Mutable scratch for building the next status; frozen again on the way out."""

    fields: dict[str, object]
    events: list[Event] = field(default_factory=list)

    def set(self, **values: object) -> None:
        self.fields.update(values)

    def get(self, name: str) -> object:
        return self.fields[name]


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: bool,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    """Replace one condition, keeping lastTransitionTime when its status did not change."""
    text = "True" if status else "False"
    old = next((c for c in conditions if c.type == type_), None)
    since = old.last_transition_time if old is not None and old.status == text else now
    new = Condition(
        type=type_,
        status=text,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )
    return [new if c.type == type_ else c for c in conditions] if old else [*conditions, new]


def _open_incident(status: GuardStatus) -> Incident | None:
    return status.incident if status.incident is not None and not status.incident.closed else None


def decide_inactive(
    status: GuardStatus, phase: Phase, reason: str, message: str, generation: int, now: datetime
) -> Decision:
    """Suspended or Invalid: no evaluation counts and no step is taken."""
    conditions = set_condition(status.conditions, "Ready", False, reason, message, now, generation)
    new = status.model_copy(
        update={
            "phase": phase,
            "message": message,
            "conditions": conditions,
            "observed_generation": generation,
        }
    )
    events: tuple[Event, ...] = ()
    if status.phase is not phase or status.message != message:
        kind = "Warning" if phase is Phase.INVALID else "Normal"
        events = (Event(kind, phase.value, message),)
    return Decision(new, events=events)


def _track_release(
    spec: GuardSpec,
    status: GuardStatus,
    target: TargetFacts,
    verdict: Verdict,
    incident: Incident | None,
    now: datetime,
) -> tuple[ReleaseObservation, KnownGood | None]:
    """Follow the target's current pod template; promote it to lastKnownGood once it has
    been Available and evaluated Healthy for knownGoodAfterSeconds without an incident."""
    release = status.release
    if release is None or release.pod_template_hash != target.pod_template_hash:
        release = ReleaseObservation(
            revision=target.revision,
            images=list(target.images),
            pod_template_hash=target.pod_template_hash,
        )
    else:
        release = release.model_copy(update={"revision": target.revision})
    healthy = verdict is Verdict.HEALTHY and target.available
    # Healthy while contained proves nothing about the release: the clock restarts once the
    # incident is over, or a re-armed bad release would become known-good at once.
    open_incident = incident is not None and not incident.closed
    if verdict is Verdict.BREACH or not target.available or open_incident:
        release = release.model_copy(update={"healthy_since": None})
    elif healthy and release.healthy_since is None:
        release = release.model_copy(update={"healthy_since": now})

    known_good = status.last_known_good
    sustained = release.healthy_since is not None and now - release.healthy_since >= timedelta(
        seconds=spec.known_good_after_seconds
    )
    if sustained and not open_incident:
        if known_good is None or known_good.pod_template_hash != release.pod_template_hash:
            known_good = KnownGood(
                revision=release.revision,
                images=release.images,
                pod_template_hash=release.pod_template_hash,
                since=now,
            )
        elif known_good.revision != release.revision:  # same template, renumbered by a rollout
            known_good = known_good.model_copy(update={"revision": release.revision})
    return release, known_good


def _own_rollback_hashes(actions: Sequence[ActionRecord]) -> set[str]:
    return {
        str(a.after.get("podTemplateHash", ""))
        for a in actions
        if a.type is StepType.ROLLBACK and a.result is ActionResult.APPLIED
    }


def decide(
    spec: GuardSpec,
    status: GuardStatus,
    evaluation: Evaluation,
    target: TargetFacts,
    readiness: Sequence[StepReadiness],
    recovered: Sequence[ActionRecord],
    annotations: dict[str, str],
    generation: int,
    now: datetime,
    objects: Mapping[int, dict[str, object] | None] | None = None,
) -> Decision:
    """The next status and step after one evaluation.

    `recovered` are actions found applied in the cluster (by their marker annotation)
    but missing from status: a previous process applied them and died before recording.
    `objects`: the object each step changes (by step index) as read this tick, to check
    that the incident's Applied steps still hold (domain/reverts.py); None: not checked.
    """
    events: list[Event] = []
    last: LastEvaluation = evaluation.result
    stale = stale_confirmation(spec, status, last)
    if stale is not None:
        events.append(Event("Warning", "StaleConfirmation", stale))
    # A re-arm resets the count, so this tick's confirmation no longer holds: the guard
    # counts consecutiveBreaches again before it acts on the (new) release.
    confirmed = evaluation.confirmed
    handled = dict(status.handled_annotations)
    actions = list(status.actions)
    incident = _open_incident(status)

    # A new release by someone else re-arms the guard; our own rollback is not one.
    previous_hash = status.release.pod_template_hash if status.release else ""
    if (
        incident is not None
        and previous_hash
        and target.pod_template_hash != previous_hash
        and target.pod_template_hash not in _own_rollback_hashes([*actions, *recovered])
        # A template this guard rolled back is no new release: putting it back is a
        # revert of the Rollback (domain/reverts.py).
        and not is_known_bad(status.known_bad, target.pod_template_hash)
    ):
        incident = incident.model_copy(update={"closed": True})
        events.append(
            Event(
                "Normal", "Rearmed", f"new release (revision {target.revision}) re-armed the guard"
            )
        )
        status = status.model_copy(update={"incident": incident})
        incident = None
        last = last.model_copy(update={"consecutive_breaches": 0, "breaching_since": None})
        confirmed = False

    rearm = annotations.get(REARM)
    if rearm is not None and handled.get(REARM) != rearm:
        handled[REARM] = rearm
        if incident is not None:
            status = status.model_copy(
                update={"incident": incident.model_copy(update={"closed": True})}
            )
            events.append(Event("Normal", "Rearmed", "re-armed by annotation: watching again"))
            incident = None
        last = last.model_copy(update={"consecutive_breaches": 0, "breaching_since": None})
        confirmed = False

    contain_now = annotations.get(CONTAIN_NOW)
    manual = contain_now is not None and handled.get(CONTAIN_NOW) != contain_now
    if manual:
        handled[CONTAIN_NOW] = str(contain_now)

    number = incident.number if incident else (status.incident.number if status.incident else 0) + 1
    known_bad = list(status.known_bad)
    for record in recovered:
        if record.id.startswith(f"{number}-") and all(a.id != record.id for a in actions):
            actions.append(record)
            known_bad = note_rollback(known_bad, record, number)
            events.append(
                Event("Normal", "ActionRecovered", f"{record.id} was applied before a restart")
            )
            # The process that applied it died before recording the annotation it was
            # answering; that answer is this record, not one more step.
            manual = False

    reason = evaluation.breaching_reason
    if not confirmed and manual:
        reason = f"manual {CONTAIN_NOW}={contain_now}"
    if incident is None and (confirmed or manual or _recovering(actions, number)):
        detected = last.breaching_since or now
        if not confirmed and not manual:
            ids = [a.id for a in incident_actions(actions, number)]
            reason = f"applied before a restart: {', '.join(ids)}"
        incident = Incident(
            number=number,
            detected_at=detected,
            confirmed_at=now,
            reason=reason,
            uid=incident_uid(now),  # never repeats, unlike number: domain/identity.py
            breached_templates=breached_templates(status, target.pod_template_hash),
        )
        events.append(Event("Warning", "BreachConfirmed", reason))

    readiness = limit_rollbacks(
        readiness, known_bad, target.pod_template_hash, spec.on_revert.reapply
    )
    plan: StepPlan | None = None
    reverts = RevertCheck()
    if incident is not None:
        taken = incident_actions(actions, incident.number)
        applied = [a for a in taken if a.result is ActionResult.APPLIED]
        if applied and incident.contained_at is None:  # recovered records
            incident = _contained(incident, min(a.time for a in applied))
        if objects is not None and applied:
            reverts = check_reverts(
                spec.steps,
                taken,
                incident,
                objects,
                spec.on_revert.reapply,
                spec.interval_seconds,
                now,
                blocked=rollbacks_blocked(
                    spec.steps, known_bad, target.pod_template_hash, spec.on_revert.reapply
                ),
            )
            incident = with_reverts(incident, reverts.found)
            for revert in reverts.found:
                events.append(Event("Warning", "ContainmentReverted", _revert_event(spec, revert)))
        if reverts.reapply is not None:
            # Containment must hold whatever the metrics say: the re-apply does not wait
            # for a confirmed breach.
            again = reverts.reapply
            plan = StepPlan(
                PlanKind.APPLY, index=again.index, step=again.step, action_id=again.action_id
            )
            reason = f"re-apply {again.n} of {spec.on_revert.reapply}: {describe(again.revert)}"
        elif (confirmed or manual) and spec.steps:  # no steps: detection only
            plan = plan_next_step(
                spec.steps,
                readiness,
                incident.number,
                for_planning(actions, reverts.given_up),
                0 if manual else spec.escalate_after_seconds,
                now,
            )
            if plan.kind is PlanKind.EXHAUSTED and reverts.given_up:
                note = exhausted_note(reverts, spec.steps)
                plan = StepPlan(PlanKind.EXHAUSTED, message=f"{plan.message}; {note}")
        if last.verdict is Verdict.HEALTHY and incident.recovered_at is None and taken:
            incident = incident.model_copy(update={"recovered_at": now})
            events.append(Event("Normal", "Recovered", "metrics are healthy again"))
        if last.verdict is Verdict.HEALTHY and not applied and not manual:
            # Nothing was changed in the cluster (dry run, or nothing applicable): the
            # incident ends with the breach, there is nothing for a human to undo.
            incident = incident.model_copy(
                update={"closed": True, "recovered_at": incident.recovered_at or now}
            )

    release, known_good = _track_release(spec, status, target, last.verdict, incident, now)
    dry_run_done = ""
    if spec.dry_run and plan is not None and plan.kind is PlanKind.EXHAUSTED:
        # Nothing was changed, so nothing is exhausted: the dry-run plan is complete.
        dry_run_done, plan = f"dry run: plan complete ({plan.message})", None

    if incident is None or incident.closed:
        phase = Phase.WATCHING
    elif plan is not None and plan.kind is PlanKind.EXHAUSTED:
        phase = Phase.EXHAUSTED
    elif reverts.reverted:
        phase = Phase.EXHAUSTED if status.phase is Phase.EXHAUSTED else Phase.BREACHING
    elif any(a.result is ActionResult.APPLIED for a in incident_actions(actions, incident.number)):
        phase = Phase.CONTAINED
    elif status.phase is Phase.EXHAUSTED and plan is None:
        phase = Phase.EXHAUSTED
    else:
        phase = Phase.BREACHING
    if phase is Phase.EXHAUSTED and status.phase is not Phase.EXHAUSTED and plan is not None:
        events.append(Event("Warning", "Exhausted", plan.message))

    g = generation
    conds = list(status.conditions)
    conds = set_condition(
        conds, "Ready", True, phase.value, f"guarding {spec.target.deployment}", now, g
    )
    conds = set_condition(
        conds,
        "MetricsAvailable",
        evaluation.metrics_available,
        "QueriesAnswered" if evaluation.metrics_available else evaluation.no_data_reason,
        "; ".join(evaluation.unavailable),
        now,
        g,
    )
    if confirmed:
        breached = (True, "BreachConfirmed", reason)
    elif last.verdict is Verdict.BREACH and last.consecutive_breaches:
        counting = (
            f"{last.consecutive_breaches} of {spec.consecutive_breaches} breaching evaluations"
        )
        breached = (False, "Counting", f"{counting}: {evaluation.breaching_reason}")
    else:
        breached = (False, last.verdict.value, "")
    conds = set_condition(conds, "Breached", *breached, now, g)
    contained = incident is not None and not incident.closed and phase is not Phase.BREACHING
    contained = contained and any(
        a.result is ActionResult.APPLIED for a in incident_actions(actions, incident.number)
    )
    if reverts.reverted and incident is not None and not incident.closed:
        # Users are exposed again: never Contained while a step is undone.
        why = reverted_message(reverts, spec.on_revert.reapply)
        conds = set_condition(conds, "Contained", False, "Reverted", why, now, g)
    else:
        conds = set_condition(
            conds,
            "Contained",
            contained,
            "StepApplied" if contained else "NotContained",
            status.last_action or "" if contained else "",
            now,
            g,
        )
    conds = _rollback_condition(conds, spec, readiness, known_good, now, g)
    refusal = _rollback_refusal(readiness)
    if refusal and refusal != _rollback_refusal(status.readiness):
        events.append(Event("Warning", "RollbackRefused", refusal))

    quiet_start = status.phase is Phase.PENDING and phase is Phase.WATCHING
    if phase is not status.phase and not quiet_start and phase is not Phase.EXHAUSTED:
        events.append(Event("Normal", phase.value, f"phase {status.phase.value} -> {phase.value}"))

    if plan is not None and plan.kind is PlanKind.EXHAUSTED:
        message = plan.message
    elif dry_run_done:
        message = dry_run_done
    elif phase is Phase.EXHAUSTED:  # still exhausted on a tick that plans nothing (NoData)
        message = status.message
    else:
        message = ""
    new = status.model_copy(
        update={
            "observed_generation": generation,
            "phase": phase,
            "message": message,
            "conditions": conds,
            "last_evaluation": last,
            "readiness": list(readiness),
            "release": release,
            "last_known_good": known_good,
            "incident": incident if incident is not None else status.incident,
            "actions": actions[-MAX_ACTIONS:],
            "handled_annotations": handled,
            "known_bad": known_bad,
        }
    )
    if plan is not None and plan.kind is not PlanKind.APPLY:
        plan = plan if plan.kind is PlanKind.EXHAUSTED else None
    return Decision(new, plan=plan, reason=reason, events=tuple(events))


def _revert_event(spec: GuardSpec, revert: Revert) -> str:
    limit = spec.on_revert.reapply
    what = f"{describe(revert)} (undoing {revert.action})"
    if limit == 0:
        return f"{what}; spec.onRevert.reapply is 0: not re-applied"
    return f"{what}; re-applied at most {limit} times per incident"


def _recovering(actions: Sequence[ActionRecord], number: int) -> bool:
    return any(a.id.startswith(f"{number}-") for a in actions)


def _contained(incident: Incident, at: datetime) -> Incident:
    return incident.model_copy(
        update={
            "contained_at": at,
            "time_to_contain_seconds": round((at - incident.detected_at).total_seconds(), 3),
        }
    )


def _rollback_refusal(readiness: Sequence[StepReadiness]) -> str:
    """Why rollback is refused because state changed, or "" (other reasons are not refusals)."""
    for r in readiness:
        if r.type is StepType.ROLLBACK and not r.ready and r.reason.startswith(REFUSED):
            return r.reason
    return ""


def _rollback_condition(
    conds: list[Condition],
    spec: GuardSpec,
    readiness: Sequence[StepReadiness],
    known_good: KnownGood | None,
    now: datetime,
    generation: int,
) -> list[Condition]:
    rollback = next((r for r in readiness if r.type is StepType.ROLLBACK), None)
    if rollback is None and not any(s.type is StepType.ROLLBACK for s in spec.steps):
        good = known_good is not None
        message = f"revision {known_good.revision} ({', '.join(known_good.images)})" if good else ""
        reason = "KnownGoodRevision" if good else "NoKnownGoodRevision"
        return set_condition(conds, "RollbackReady", good, reason, message, now, generation)
    if rollback is None:
        return conds
    prepared = rollback.ready or AT_KNOWN_GOOD in rollback.reason
    if prepared and known_good is not None:
        images = ", ".join(known_good.images)
        reason, message = "KnownGoodRevision", f"revision {known_good.revision} ({images})"
    else:
        refused = rollback.reason.startswith(REFUSED)
        reason = "Ready" if prepared else "StateChanged" if refused else "NotReady"
        message = rollback.reason
    return set_condition(conds, "RollbackReady", prepared, reason, message, now, generation)


def record_action(status: GuardStatus, record: ActionRecord, now: datetime) -> Decision:
    """Fold one step's outcome into the status: action log, incident, phase, Events."""
    actions = [*status.actions, record][-MAX_ACTIONS:]
    incident = status.incident
    phase = status.phase
    known_bad = status.known_bad
    # Pausing Argo CD contains nothing by itself: phase and Contained follow the steps.
    pause = record.type is StepType.GITOPS_PAUSE
    if record.result is ActionResult.APPLIED and incident is not None and not pause:
        if incident.contained_at is None:
            incident = _contained(incident, record.time)
        phase = Phase.CONTAINED
        known_bad = note_rollback(known_bad, record, incident.number)
    summary = f"{record.type.value} {record.target}: {_describe_change(record)}"
    last_action = f"{record.type.value} {record.result.value}"
    kind = "Warning" if record.result is ActionResult.FAILED else "Normal"
    message = f"{record.id} {summary} ({record.reason})"
    if record.message:
        message += f": {record.message}"
    conds = status.conditions
    if record.result is ActionResult.APPLIED and not pause:
        conds = set_condition(
            conds, "Contained", True, "StepApplied", summary, now, status.observed_generation
        )
    new = status.model_copy(
        update={
            "actions": actions,
            "incident": incident,
            "phase": phase,
            "last_action": last_action,
            "conditions": conds,
            "known_bad": known_bad,
        }
    )
    return Decision(new, events=(Event(kind, f"Step{record.result.value}", message),))


def _describe_change(record: ActionRecord) -> str:
    if not record.before and not record.after:
        return record.result.value.lower()
    return f"{record.before} -> {record.after}"
