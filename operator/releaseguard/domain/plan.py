"""Choose the next containment step: the cheapest applicable one, escalating with time.

Pure: a function of the spec's steps, their readiness, the incident's actions and the
time. No I/O.

Rules (README section: Steps, and what "applicable" means):
- Candidates are the steps whose readiness says ready and that were not taken in this
  incident (an Applied, DryRun or Failed record counts as taken: a step is never
  repeated within an incident).
- The first step of an incident is taken at once.
- Later steps wait until escalateAfterSeconds have passed since the last step that was
  applied (or recorded as DryRun) and the breach is still confirmed. A Failed step
  changed nothing, so the next step does not wait for it.
- The cheapest candidate wins; ties go to list order.
- No candidate when one is due: the ladder is exhausted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from releaseguard.domain.identity import in_incident
from releaseguard.domain.models import ActionRecord, ActionResult, Step, StepReadiness


def action_id(incident_number: int, step: Step, index: int) -> str:
    """Stable across restarts: the same incident and step always give the same id."""
    return f"{incident_number}-{step.type.value.lower()}-{index}"


@dataclass(frozen=True)
class Apply:
    """Take step `index` now, recorded as `action_id`."""

    index: int
    step: Step
    action_id: str


@dataclass(frozen=True)
class Wait:
    """A step is in effect: give it until `due_at` (escalateAfterSeconds) before the next."""

    due_at: datetime
    message: str = "waiting to see if it helps"


@dataclass(frozen=True)
class Exhausted:
    """A step is due and none is applicable: `message` says why, step by step."""

    message: str


# The planner's answer: tell them apart with isinstance (or match); each carries only what
# it needs, so no field is None and no assert is needed after planning.
StepPlan = Apply | Wait | Exhausted


def incident_actions(actions: Sequence[ActionRecord], incident_number: int) -> list[ActionRecord]:
    return [a for a in actions if in_incident(a, incident_number)]


def plan_next_step(
    steps: Sequence[Step],
    readiness: Sequence[StepReadiness],
    incident_number: int,
    actions: Sequence[ActionRecord],
    escalate_after_seconds: int,
    now: datetime,
) -> StepPlan:
    """The next step of the incident, or why none is taken now."""
    taken = incident_actions(actions, incident_number)
    taken_indexes = {a.step_index for a in taken}
    effective = [a for a in taken if a.result in (ActionResult.APPLIED, ActionResult.DRY_RUN)]
    if effective:
        due_at = max(a.time for a in effective) + timedelta(seconds=escalate_after_seconds)
        if now < due_at:
            return Wait(due_at)

    ready = {r.index: r for r in readiness}
    candidates = [
        (step.effective_cost, index)
        for index, step in enumerate(steps)
        if index not in taken_indexes and index in ready and ready[index].ready
    ]
    if not candidates:
        return Exhausted(_why_exhausted(steps, readiness, taken_indexes))
    _, index = min(candidates)
    step = steps[index]
    return Apply(index, step, action_id(incident_number, step, index))


def _why_exhausted(
    steps: Sequence[Step], readiness: Sequence[StepReadiness], taken: set[int]
) -> str:
    if not steps:
        return "no containment steps are configured"
    reasons = {r.index: r.reason for r in readiness}
    parts = []
    for index, step in enumerate(steps):
        why = "already taken in this incident" if index in taken else reasons.get(index, "")
        parts.append(f"{step.type.value}[{index}]: {why or 'not applicable'}")
    return "no applicable step left: " + "; ".join(parts)
