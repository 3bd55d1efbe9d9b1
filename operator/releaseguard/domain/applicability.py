"""Which object each step changes, whether it can be used now, and what one write of it
carries: pure functions of the objects the adapter read.

The adapter (adapters/cluster.py) reads, asks these functions, and writes what they
return. Exactly once: a write carries, in the same request, this guard's entry of the
`releaseguard.io/action` marker (domain/identity.py). Before writing, the adapter reads
the object again and `next_write` decides: our entry with this action's id in the open
incident means a previous process wrote it (adopted: recorded, not written again); a
step that no longer applies fails; dry run records what would have been written.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from releaseguard.domain import changes, steps
from releaseguard.domain.changes import NO_LONGER_APPLICABLE, Change, NotApplicable, Obj
from releaseguard.domain.gitops import with_flux_paused
from releaseguard.domain.identity import (
    MARKER,
    MarkerEntry,
    belongs_to,
    parse_markers,
    with_marker,
)
from releaseguard.domain.models import (
    ActionRecord,
    ActionResult,
    Blocker,
    GuardSpec,
    GuardStatus,
    Incident,
    Step,
    StepReadiness,
    StepType,
)
from releaseguard.domain.rollback_target import breached_templates
from releaseguard.domain.steps import Context
from releaseguard.domain.steps import Surroundings as Surroundings

ADOPTED = "recorded from the object's releaseguard.io/action marker"
DRY_RUN = "dry run: nothing was changed"


def object_of(step: Step, spec: GuardSpec) -> tuple[str, str]:
    """The kind and name of the object the step writes (in the guard's namespace)."""
    return steps.object_of(step, spec.target.deployment)


def object_ref(step: Step, spec: GuardSpec) -> str:
    """The object as Kind/name, as action records show it."""
    return "/".join(object_of(step, spec))


def rollout_started(target: Obj, replica_sets: Sequence[Obj]) -> str | None:
    """When the target's current revision was created: a Job that succeeded since then
    changed state under it (spec.irreversibleChanges.jobs)."""
    current = changes.current_replica_set(target, replica_sets)
    return current["metadata"].get("creationTimestamp") if current else None


def step_change(
    spec: GuardSpec,
    status: GuardStatus,
    step: Step,
    obj: Obj,
    around: Surroundings,
    pinned_hash: str | None = None,
) -> Change | NotApplicable:
    """What the step would write to `obj` now, or why it cannot.

    `pinned_hash`: for a Rollback being applied, the target fixed when it was planned
    (domain/rollback_target.py)."""
    ctx = Context(
        around=around,
        known_good=status.last_known_good,
        breached=lambda current_hash: breached_templates(status, current_hash),
        pinned_hash=pinned_hash,
    )
    return steps.change(step, obj, ctx)


@dataclass(frozen=True)
class StepView:
    """One step as seen now: whether it is usable, and what it would change."""

    index: int
    step: Step
    object_ref: str
    obj: Obj | None
    change: Change | NotApplicable
    markers: dict[str, MarkerEntry]  # the object's marker entries, by guard uid

    @property
    def readiness(self) -> StepReadiness:
        return readiness(self.step.type, self.index, self.change)


def readiness(kind: StepType, index: int, change: Change | NotApplicable) -> StepReadiness:
    if isinstance(change, NotApplicable):
        return StepReadiness(
            type=kind, index=index, ready=False, reason=change.reason, code=change.code
        )
    return StepReadiness(type=kind, index=index, ready=True)


def markers_of(obj: Obj) -> dict[str, MarkerEntry]:
    return parse_markers(((obj.get("metadata") or {}).get("annotations") or {}).get(MARKER))


def view(
    index: int,
    step: Step,
    spec: GuardSpec,
    status: GuardStatus,
    obj: Obj,
    around: Surroundings,
    pinned_hash: str | None = None,
) -> StepView:
    change = step_change(spec, status, step, obj, around, pinned_hash)
    return StepView(index, step, object_ref(step, spec), obj, change, markers_of(obj))


def missing_view(index: int, step: Step, spec: GuardSpec, problem: str) -> StepView:
    """A step whose object (or one it depends on) does not exist."""
    return StepView(
        index, step, object_ref(step, spec), None, NotApplicable(problem, Blocker.MISSING), {}
    )


@dataclass(frozen=True)
class Action:
    """What every record of one action carries, whatever its outcome."""

    id: str
    type: StepType
    step_index: int
    target: str
    reason: str
    incident: Incident | None

    def record(
        self,
        result: ActionResult,
        time: datetime,
        message: str = "",
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        patch: dict[str, Any] | None = None,
    ) -> ActionRecord:
        return ActionRecord(
            id=self.id,
            incident=self.incident.number if self.incident is not None else None,
            type=self.type,
            step_index=self.step_index,
            target=self.target,
            result=result,
            time=time,
            reason=self.reason,
            message=message,
            before=dict(before or {}),
            after=dict(after or {}),
            patch=patch,
        )

    def failed(self, time: datetime, message: str) -> ActionRecord:
        return self.record(ActionResult.FAILED, time, message)

    def applied(self, change: Change, time: datetime, message: str = "") -> ActionRecord:
        return self.record(
            ActionResult.APPLIED, time, message, change.before, change.after, change.patch
        )


def adopted(
    action: Action, markers: Mapping[str, MarkerEntry], guard_uid: str
) -> ActionRecord | None:
    """The record of this action when the object's marker says a process (possibly one
    that then died) already wrote it in the open incident; None otherwise."""
    mine = markers.get(guard_uid)
    if mine is None or mine.id != action.id or not belongs_to(mine, action.incident):
        return None
    return action.record(ActionResult.APPLIED, mine.time, ADOPTED, mine.before, mine.after)


def next_write(
    action: Action,
    guard_uid: str,
    markers: Mapping[str, MarkerEntry],
    change: Change | NotApplicable,
    spec: GuardSpec,
    now: datetime,
) -> ActionRecord | Change:
    """What to do with the object as just read: the record, when nothing is to be written
    (adopted, no longer applicable, dry run), else the change to write, its new object
    carrying this guard's marker entry."""
    done = adopted(action, markers, guard_uid)
    if done is not None:
        return done
    if isinstance(change, NotApplicable):
        return action.failed(now, f"{NO_LONGER_APPLICABLE}: {change.reason}")
    if spec.git_ops.flux and action.type is not StepType.GITOPS_PAUSE:
        change = with_flux_paused(change)
    if spec.dry_run:
        return action.record(
            ActionResult.DRY_RUN, now, DRY_RUN, change.before, change.after, change.patch
        )
    body = copy.deepcopy(change.new_object)
    annotations = body.setdefault("metadata", {}).setdefault("annotations", {})
    incident = action.incident
    entry = MarkerEntry(
        id=action.id,
        time=now,
        incident=(incident.uid or "") if incident is not None else "",
        before=change.before,
        after=change.after,
    )
    annotations[MARKER] = with_marker(annotations.get(MARKER), guard_uid, entry)
    return Change(change.before, change.after, body, change.patch)


def recovered_records(
    views: Collection[StepView], guard_uid: str, incident: Incident | None
) -> list[ActionRecord]:
    """The actions this guard's marker entries say it applied in `incident` (possibly by
    a process that then died). Only markers of the incident the status records count."""
    found = []
    for v in views:
        entry = v.markers.get(guard_uid)
        if entry is None or not belongs_to(entry, incident):
            continue
        action = Action(entry.id, v.step.type, v.index, v.object_ref, "", incident)
        found.append(
            action.record(ActionResult.APPLIED, entry.time, ADOPTED, entry.before, entry.after)
        )
    return found
