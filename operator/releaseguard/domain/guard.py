"""One tick of a guard: from an evaluation and what the cluster looks like, to the next
status, the step to take (if any) and the Events to post.

Pure: no I/O, the clock is passed in. The service gathers the inputs, applies the step
this returns, then calls `record_action` to fold the result into the status.

The lifecycle (README "What it does, step by step" and "Reading a guard during an incident"):
- Watching until a breach is confirmed; then an incident opens (Breaching).
- The planner picks steps; once one is applied the guard is Contained and stays so,
  even after recovery, until re-armed (annotation or a new release). It never undoes
  its own steps.
- Exhausted while the breach is confirmed and no applicable step is left.
- An incident in which nothing was applied (dry run, or nothing applicable) closes
  by itself once the guard is healthy again.

`decide` runs one tick as a ladder of named phases, each a pure function of the tick's
input (`TickInput`) and what the phases before it decided (`_Tick`), in this order:
apply_manual_controls, adopt_unrecorded_actions, track_incident, check_containment_holds,
plan_next_step, note_recovery, track_known_good, derive_phase, build_conditions,
announce_changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from releaseguard.domain import plan as ladder
from releaseguard.domain.conditions import (
    ConditionType,
    Event,
    EventReason,
    EventType,
    Reason,
    phase_reason,
    set_condition,
    step_reason,
)
from releaseguard.domain.confirmation import stale_confirmation
from releaseguard.domain.evaluate import Evaluation
from releaseguard.domain.identity import in_incident, incident_uid
from releaseguard.domain.models import (
    MAX_ACTIONS,
    ActionRecord,
    ActionResult,
    Blocker,
    Condition,
    GuardSpec,
    GuardStatus,
    Incident,
    KnownBad,
    KnownGood,
    LastEvaluation,
    Phase,
    ReleaseObservation,
    Revert,
    StepReadiness,
    StepType,
    Verdict,
)
from releaseguard.domain.plan import Apply, Exhausted, StepPlan, Wait, incident_actions
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

__all__ = [  # set_condition and Event are defined in domain/conditions.py
    "CONTAIN_NOW",
    "REARM",
    "Decision",
    "Event",
    "TargetFacts",
    "TickInput",
    "decide",
    "decide_inactive",
    "record_action",
    "set_condition",
]

CONTAIN_NOW = "releaseguard.io/contain-now"
REARM = "releaseguard.io/rearm"

Objects = Mapping[int, dict[str, object] | None]


@dataclass(frozen=True)
class TargetFacts:
    """The guarded Deployment as the adapter saw it this tick."""

    revision: str
    pod_template_hash: str
    images: tuple[str, ...]
    available: bool


@dataclass(frozen=True)
class Decision:
    status: GuardStatus
    plan: Apply | Exhausted | None = None  # a Wait is no decision: None
    reason: str = ""  # why a step is taken: goes into the action record
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class TickInput:
    """Everything one tick decides from, as the service gathered it.

    `recovered`: actions found applied in the cluster (by their marker annotation) but
    missing from status: a previous process applied them and died before recording.
    `objects`: the object each step changes (by step index) as read this tick, to check
    that the incident's Applied steps still hold (domain/reverts.py); None: not checked.
    """

    spec: GuardSpec
    status: GuardStatus
    evaluation: Evaluation
    target: TargetFacts
    now: datetime
    generation: int
    readiness: Sequence[StepReadiness] = ()
    recovered: Sequence[ActionRecord] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    objects: Objects | None = None


@dataclass(frozen=True)
class _Tick:
    """What the phases decided so far; each phase returns an updated copy."""

    status: GuardStatus  # as found, with an incident closed by a re-arm
    last: LastEvaluation
    confirmed: bool  # the breach is confirmed (a re-arm makes the guard count again)
    handled: dict[str, str]
    actions: tuple[ActionRecord, ...]
    known_bad: tuple[KnownBad, ...]
    incident: Incident | None = None  # the open incident, if any
    contain_now: str | None = None  # a contain-now value answered by this tick's step
    reason: str = ""
    readiness: tuple[StepReadiness, ...] = ()
    reverts: RevertCheck = field(default_factory=RevertCheck)
    plan: StepPlan | None = None
    dry_run_done: str = ""
    release: ReleaseObservation | None = None
    known_good: KnownGood | None = None
    phase: Phase = Phase.PENDING
    conditions: tuple[Condition, ...] = ()
    events: tuple[Event, ...] = ()

    @property
    def manual(self) -> bool:
        return self.contain_now is not None

    def event(self, type_: EventType, reason: EventReason, message: str) -> _Tick:
        return replace(self, events=(*self.events, Event(type_, reason, message)))

    def applied(self) -> bool:
        """A step of the open incident is Applied."""
        return self.incident is not None and any(
            a.result is ActionResult.APPLIED
            for a in incident_actions(self.actions, self.incident.number)
        )


def _open_incident(status: GuardStatus) -> Incident | None:
    return status.incident if status.incident is not None and not status.incident.closed else None


def decide_inactive(
    status: GuardStatus, phase: Phase, reason: str, message: str, generation: int, now: datetime
) -> Decision:
    """Suspended or Invalid: no evaluation counts and no step is taken."""
    conditions = set_condition(
        status.conditions, ConditionType.READY, False, reason, message, now, generation
    )
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
        kind = EventType.WARNING if phase is Phase.INVALID else EventType.NORMAL
        events = (Event(kind, phase_reason(phase), message),)
    return Decision(new, events=events)


def decide(tick: TickInput) -> Decision:
    """The next status and step after one evaluation: the phases below, in order."""
    state = _start(tick)
    for run in (
        apply_manual_controls,
        adopt_unrecorded_actions,
        track_incident,
        check_containment_holds,
        plan_next_step,
        note_recovery,
        track_known_good,
        derive_phase,
        build_conditions,
        announce_changes,
    ):
        state = run(tick, state)
    return _finish(tick, state)


def _start(tick: TickInput) -> _Tick:
    """The tick's starting point: the status as found, and a Warning when the breach
    count was confirmed from evaluations too far apart (domain/confirmation.py)."""
    status = tick.status
    last = tick.evaluation.result
    state = _Tick(
        status=status,
        last=last,
        confirmed=tick.evaluation.confirmed,
        handled=dict(status.handled_annotations),
        actions=tuple(status.actions),
        known_bad=tuple(status.known_bad),
        incident=_open_incident(status),
        reason=tick.evaluation.breaching_reason,
    )
    stale = stale_confirmation(tick.spec, status, last)
    if stale is not None:
        state = state.event(EventType.WARNING, EventReason.STALE_CONFIRMATION, stale)
    return state


def _rearmed(state: _Tick, message: str | None) -> _Tick:
    """Close the open incident (with a Rearmed Event when `message`) and count again: this
    tick's confirmation no longer holds, the guard counts consecutiveBreaches anew."""
    status = state.status
    if state.incident is not None:
        closed = state.incident.model_copy(update={"closed": True})
        status = status.model_copy(update={"incident": closed})
        if message is not None:
            state = state.event(EventType.NORMAL, EventReason.REARMED, message)
    last = state.last.model_copy(update={"consecutive_breaches": 0, "breaching_since": None})
    return replace(state, status=status, incident=None, last=last, confirmed=False)


def _new_release(tick: TickInput, state: _Tick) -> bool:
    """The target runs a new release by someone else: not our own rollback, and not a
    template this guard rolled back (putting that back is a revert of the Rollback)."""
    previous = tick.status.release.pod_template_hash if tick.status.release else ""
    current = tick.target.pod_template_hash
    own = _own_rollback_hashes([*state.actions, *tick.recovered])
    return (
        bool(previous)
        and current != previous
        and current not in own
        and not is_known_bad(tick.status.known_bad, current)
    )


def apply_manual_controls(tick: TickInput, state: _Tick) -> _Tick:
    """Re-arm on a new release or the rearm annotation; take up a new contain-now value.

    Each annotation value is acted on once (status.handledAnnotations)."""
    if state.incident is not None and _new_release(tick, state):
        revision = tick.target.revision
        state = _rearmed(state, f"new release (revision {revision}) re-armed the guard")
    handled = dict(state.handled)
    rearm = tick.annotations.get(REARM)
    if rearm is not None and handled.get(REARM) != rearm:
        handled[REARM] = rearm
        state = _rearmed(state, "re-armed by annotation: watching again")
    contain_now = tick.annotations.get(CONTAIN_NOW)
    if contain_now is not None and handled.get(CONTAIN_NOW) != contain_now:
        handled[CONTAIN_NOW] = str(contain_now)
        state = replace(state, contain_now=str(contain_now))
    return replace(state, handled=handled)


def _incident_number(state: _Tick) -> int:
    """The open incident's number, or the next one's."""
    if state.incident is not None:
        return state.incident.number
    return (state.status.incident.number if state.status.incident else 0) + 1


def adopt_unrecorded_actions(tick: TickInput, state: _Tick) -> _Tick:
    """Record the actions of this incident that a previous process applied and died before
    recording (found by their marker), once each."""
    number = _incident_number(state)
    actions, known_bad = list(state.actions), list(state.known_bad)
    for record in tick.recovered:
        if in_incident(record, number) and all(a.id != record.id for a in actions):
            actions.append(record)
            known_bad = note_rollback(known_bad, record, number)
            message = f"{record.id} was applied before a restart"
            state = state.event(EventType.NORMAL, EventReason.ACTION_RECOVERED, message)
            # The process that applied it died before recording the annotation it was
            # answering; that answer is this record, not one more step.
            state = replace(state, contain_now=None)
    return replace(state, actions=tuple(actions), known_bad=tuple(known_bad))


def track_incident(tick: TickInput, state: _Tick) -> _Tick:
    """Open an incident on a confirmed breach, a new contain-now, or recovered actions;
    an incident with recovered Applied actions counts as contained when they were."""
    number = _incident_number(state)
    reason = state.reason
    if not state.confirmed and state.manual:
        reason = f"manual {CONTAIN_NOW}={state.contain_now}"
    incident = state.incident
    recovering = any(in_incident(a, number) for a in state.actions)
    if incident is None and (state.confirmed or state.manual or recovering):
        if not state.confirmed and not state.manual:
            ids = [a.id for a in incident_actions(state.actions, number)]
            reason = f"applied before a restart: {', '.join(ids)}"
        incident = Incident(
            number=number,
            detected_at=state.last.breaching_since or tick.now,
            confirmed_at=tick.now,
            reason=reason,
            uid=incident_uid(tick.now),  # never repeats, unlike number: domain/identity.py
            breached_templates=breached_templates(tick.status, tick.target.pod_template_hash),
        )
        state = state.event(EventType.WARNING, EventReason.BREACH_CONFIRMED, reason)
    if incident is not None and incident.contained_at is None:
        applied = [a for a in _taken(state, incident) if a.result is ActionResult.APPLIED]
        if applied:  # recovered records
            incident = _contained(incident, min(a.time for a in applied))
    spec = tick.spec
    readiness = limit_rollbacks(
        tick.readiness, state.known_bad, tick.target.pod_template_hash, spec.on_revert.reapply
    )
    return replace(state, incident=incident, reason=reason, readiness=tuple(readiness))


def _taken(state: _Tick, incident: Incident) -> list[ActionRecord]:
    return incident_actions(state.actions, incident.number)


def check_containment_holds(tick: TickInput, state: _Tick) -> _Tick:
    """Check that the open incident's Applied steps still hold in the objects read this
    tick (domain/reverts.py): a Warning per revert found, and the re-apply due, if any."""
    incident, spec = state.incident, tick.spec
    if incident is None or tick.objects is None:
        return state
    taken = _taken(state, incident)
    if not any(a.result is ActionResult.APPLIED for a in taken):
        return state
    blocked = rollbacks_blocked(
        spec.steps, state.known_bad, tick.target.pod_template_hash, spec.on_revert.reapply
    )
    reverts = check_reverts(
        spec.steps,
        taken,
        incident,
        tick.objects,
        spec.on_revert.reapply,
        spec.interval_seconds,
        tick.now,
        blocked=blocked,
    )
    state = replace(state, incident=with_reverts(incident, reverts.found), reverts=reverts)
    for revert in reverts.found:
        message = _revert_event(spec, revert)
        state = state.event(EventType.WARNING, EventReason.CONTAINMENT_REVERTED, message)
    return state


def plan_next_step(tick: TickInput, state: _Tick) -> _Tick:
    """The step to take: a due re-apply first (containment must hold whatever the metrics
    say), else the ladder's next step while the breach is confirmed or contain-now asks.
    In dry run an exhausted ladder is a complete plan, not exhaustion."""
    incident, spec, reverts = state.incident, tick.spec, state.reverts
    if incident is None:
        return state
    plan: StepPlan | None = None
    reason = state.reason
    if reverts.reapply is not None:
        again = reverts.reapply
        plan = Apply(again.index, again.step, again.action_id)
        reason = f"re-apply {again.n} of {spec.on_revert.reapply}: {describe(again.revert)}"
    elif (state.confirmed or state.manual) and spec.steps:  # no steps: detection only
        plan = ladder.plan_next_step(
            spec.steps,
            state.readiness,
            incident.number,
            for_planning(state.actions, reverts.given_up),
            0 if state.manual else spec.escalate_after_seconds,
            tick.now,
        )
        if isinstance(plan, Exhausted) and reverts.given_up:
            plan = Exhausted(f"{plan.message}; {exhausted_note(reverts, spec.steps)}")
    dry_run_done = ""
    if spec.dry_run and isinstance(plan, Exhausted):
        # Nothing was changed, so nothing is exhausted: the dry-run plan is complete.
        dry_run_done, plan = f"dry run: plan complete ({plan.message})", None
    return replace(state, plan=plan, reason=reason, dry_run_done=dry_run_done)


def note_recovery(tick: TickInput, state: _Tick) -> _Tick:
    """Healthy again: note when the incident recovered; an incident in which nothing was
    changed in the cluster (dry run, nothing applicable) ends with the breach."""
    incident = state.incident
    if incident is None or state.last.verdict is not Verdict.HEALTHY:
        return state
    taken = _taken(state, incident)
    if incident.recovered_at is None and taken:
        incident = incident.model_copy(update={"recovered_at": tick.now})
        state = state.event(EventType.NORMAL, EventReason.RECOVERED, "metrics are healthy again")
    if not any(a.result is ActionResult.APPLIED for a in taken) and not state.manual:
        # There is nothing for a human to undo.
        recovered_at = incident.recovered_at or tick.now
        incident = incident.model_copy(update={"closed": True, "recovered_at": recovered_at})
    return replace(state, incident=incident)


def track_known_good(tick: TickInput, state: _Tick) -> _Tick:
    """Follow the target's current pod template; promote it to lastKnownGood once it has
    been Available and evaluated Healthy for knownGoodAfterSeconds without an incident."""
    target, now = tick.target, tick.now
    release = state.status.release
    if release is None or release.pod_template_hash != target.pod_template_hash:
        release = ReleaseObservation(
            revision=target.revision,
            images=list(target.images),
            pod_template_hash=target.pod_template_hash,
        )
    else:
        release = release.model_copy(update={"revision": target.revision})
    verdict = state.last.verdict
    # Healthy while contained proves nothing about the release: the clock restarts once the
    # incident is over, or a re-armed bad release would become known-good at once.
    open_incident = state.incident is not None and not state.incident.closed
    if verdict is Verdict.BREACH or not target.available or open_incident:
        release = release.model_copy(update={"healthy_since": None})
    elif verdict is Verdict.HEALTHY and release.healthy_since is None:
        release = release.model_copy(update={"healthy_since": now})
    known_good = state.status.last_known_good
    after = timedelta(seconds=tick.spec.known_good_after_seconds)
    sustained = release.healthy_since is not None and now - release.healthy_since >= after
    if sustained and not open_incident:
        known_good = _promoted(known_good, release, now)
    return replace(state, release=release, known_good=known_good)


def _promoted(
    known_good: KnownGood | None, release: ReleaseObservation, now: datetime
) -> KnownGood:
    if known_good is None or known_good.pod_template_hash != release.pod_template_hash:
        return KnownGood(
            revision=release.revision,
            images=release.images,
            pod_template_hash=release.pod_template_hash,
            since=now,
        )
    if known_good.revision != release.revision:  # same template, renumbered by a rollout
        return known_good.model_copy(update={"revision": release.revision})
    return known_good


def derive_phase(tick: TickInput, state: _Tick) -> _Tick:
    """The lifecycle phase (module docstring), and a Warning when it becomes Exhausted."""
    before, plan, incident = tick.status.phase, state.plan, state.incident
    if incident is None or incident.closed:
        phase = Phase.WATCHING
    elif isinstance(plan, Exhausted):
        phase = Phase.EXHAUSTED
    elif state.reverts.reverted:
        phase = Phase.EXHAUSTED if before is Phase.EXHAUSTED else Phase.BREACHING
    elif state.applied():
        phase = Phase.CONTAINED
    elif before is Phase.EXHAUSTED and plan is None:
        phase = Phase.EXHAUSTED
    else:
        phase = Phase.BREACHING
    state = replace(state, phase=phase)
    if phase is Phase.EXHAUSTED and before is not Phase.EXHAUSTED and isinstance(plan, Exhausted):
        state = state.event(EventType.WARNING, EventReason.EXHAUSTED, plan.message)
    return state


def build_conditions(tick: TickInput, state: _Tick) -> _Tick:
    """Ready, MetricsAvailable, Breached, Contained and RollbackReady, each keeping its
    lastTransitionTime while its status holds."""
    spec, evaluation, now, g = tick.spec, tick.evaluation, tick.now, tick.generation
    conds = list(tick.status.conditions)
    guarding = f"guarding {spec.target.deployment}"
    conds = set_condition(conds, ConditionType.READY, True, state.phase, guarding, now, g)
    available = evaluation.metrics_available
    conds = set_condition(
        conds,
        ConditionType.METRICS_AVAILABLE,
        available,
        Reason.QUERIES_ANSWERED if available else evaluation.no_data_reason,
        "; ".join(evaluation.unavailable),
        now,
        g,
    )
    conds = set_condition(conds, ConditionType.BREACHED, *_breached(tick, state), now, g)
    conds = set_condition(conds, ConditionType.CONTAINED, *_contained_cond(tick, state), now, g)
    conds = _rollback_condition(conds, spec, state.readiness, state.known_good, now, g)
    return replace(state, conditions=tuple(conds))


def _breached(tick: TickInput, state: _Tick) -> tuple[bool, str, str]:
    last = state.last
    if state.confirmed:
        return True, Reason.BREACH_CONFIRMED, state.reason
    if last.verdict is Verdict.BREACH and last.consecutive_breaches:
        wanted = tick.spec.consecutive_breaches
        counting = f"{last.consecutive_breaches} of {wanted} breaching evaluations"
        return False, Reason.COUNTING, f"{counting}: {tick.evaluation.breaching_reason}"
    return False, last.verdict, ""


def _contained_cond(tick: TickInput, state: _Tick) -> tuple[bool, str, str]:
    incident = state.incident
    open_incident = incident is not None and not incident.closed
    if state.reverts.reverted and open_incident:
        # Users are exposed again: never Contained while a step is undone.
        return False, Reason.REVERTED, reverted_message(state.reverts, tick.spec.on_revert.reapply)
    if open_incident and state.phase is not Phase.BREACHING and state.applied():
        return True, Reason.STEP_APPLIED, tick.status.last_action or ""
    return False, Reason.NOT_CONTAINED, ""


def announce_changes(tick: TickInput, state: _Tick) -> _Tick:
    """A Warning when rollback becomes refused, and a Normal Event per phase change (not
    for the first Watching, nor for Exhausted, which derive_phase announced)."""
    refusal = _rollback_refusal(state.readiness)
    if refusal and refusal != _rollback_refusal(tick.status.readiness):
        state = state.event(EventType.WARNING, EventReason.ROLLBACK_REFUSED, refusal)
    before, phase = tick.status.phase, state.phase
    quiet_start = before is Phase.PENDING and phase is Phase.WATCHING
    if phase is not before and not quiet_start and phase is not Phase.EXHAUSTED:
        message = f"phase {before.value} -> {phase.value}"
        state = state.event(EventType.NORMAL, phase_reason(phase), message)
    return state


def _finish(tick: TickInput, state: _Tick) -> Decision:
    """The next status, and the plan the service acts on (a Wait is dropped)."""
    status, plan = state.status, state.plan
    if isinstance(plan, Exhausted):
        message = plan.message
    elif state.dry_run_done:
        message = state.dry_run_done
    elif state.phase is Phase.EXHAUSTED:  # still exhausted on a tick that plans nothing
        message = status.message
    else:
        message = ""
    new = status.model_copy(
        update={
            "observed_generation": tick.generation,
            "phase": state.phase,
            "message": message,
            "conditions": list(state.conditions),
            "last_evaluation": state.last,
            "readiness": list(state.readiness),
            "release": state.release,
            "last_known_good": state.known_good,
            "incident": state.incident if state.incident is not None else status.incident,
            "actions": list(state.actions[-MAX_ACTIONS:]),
            "handled_annotations": state.handled,
            "known_bad": list(state.known_bad),
        }
    )
    kept = None if isinstance(plan, Wait) else plan
    return Decision(new, plan=kept, reason=state.reason, events=state.events)


def _own_rollback_hashes(actions: Sequence[ActionRecord]) -> set[str]:
    return {
        str(a.after.get("podTemplateHash", ""))
        for a in actions
        if a.type is StepType.ROLLBACK and a.result is ActionResult.APPLIED
    }


def _revert_event(spec: GuardSpec, revert: Revert) -> str:
    limit = spec.on_revert.reapply
    what = f"{describe(revert)} (undoing {revert.action})"
    if limit == 0:
        return f"{what}; spec.onRevert.reapply is 0: not re-applied"
    return f"{what}; re-applied at most {limit} times per incident"


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
        if r.type is StepType.ROLLBACK and not r.ready and r.code is Blocker.STATE_CHANGED:
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
    """RollbackReady: whether a rollback to lastKnownGood could be taken now."""
    rollback = next((r for r in readiness if r.type is StepType.ROLLBACK), None)
    cond = ConditionType.ROLLBACK_READY
    if rollback is None and not any(s.type is StepType.ROLLBACK for s in spec.steps):
        good = known_good is not None
        message = f"revision {known_good.revision} ({', '.join(known_good.images)})" if good else ""
        reason = Reason.KNOWN_GOOD_REVISION if good else Reason.NO_KNOWN_GOOD_REVISION
        return set_condition(conds, cond, good, reason, message, now, generation)
    if rollback is None:
        return conds
    prepared = rollback.ready or rollback.code is Blocker.AT_KNOWN_GOOD
    if prepared and known_good is not None:
        images = ", ".join(known_good.images)
        reason, message = Reason.KNOWN_GOOD_REVISION, f"revision {known_good.revision} ({images})"
    else:
        refused = rollback.code is Blocker.STATE_CHANGED
        reason = Reason.READY if prepared else Reason.STATE_CHANGED if refused else Reason.NOT_READY
        message = rollback.reason
    return set_condition(conds, cond, prepared, reason, message, now, generation)


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
    kind = EventType.WARNING if record.result is ActionResult.FAILED else EventType.NORMAL
    message = f"{record.id} {summary} ({record.reason})"
    if record.message:
        message += f": {record.message}"
    conds = status.conditions
    if record.result is ActionResult.APPLIED and not pause:
        conds = set_condition(
            conds,
            ConditionType.CONTAINED,
            True,
            Reason.STEP_APPLIED,
            summary,
            now,
            status.observed_generation,
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
    return Decision(new, events=(Event(kind, step_reason(record.result), message),))


def _describe_change(record: ActionRecord) -> str:
    if not record.before and not record.after:
        return record.result.value.lower()
    return f"{record.before} -> {record.after}"
