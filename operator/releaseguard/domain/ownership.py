"""Two guards over one object: who acts, decided by one documented rule.

Pure: functions of specs and guard identities; the service gathers the other guards'
claims (adapters/claims.py) and applies the result.

Two guards whose steps write the same field of the same object undo each other (a
Rollback each on one Deployment went bad -> good -> bad; two CanaryWeight steps on one
HTTPRoute went 90/10 -> 0/100 -> 100/0). So:

- A step *claims* an object and a field: FeatureFlag `data[<key>]` of its ConfigMap,
  CanaryWeight the backend weights of its HTTPRoute (moving one backend's weight moves
  all of them), Scale `spec.replicas` and Rollback `spec.template` of a Deployment,
  BlueGreen `spec.selector[<key>]` of a Service.
- Two guards overlap when a step of each claims the same object and field.
- The rule: the **older** guard acts (earlier creationTimestamp; the same second: the
  name that sorts first). The other guard's overlapping steps are not ready ("yields
  to ..."), so its planner skips them; its other steps stay usable.
- Both guards show the condition `Conflict=True` naming the other guard and who acts,
  and post a Warning Event `Conflict` when the overlap appears or changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from releaseguard.domain import steps
from releaseguard.domain.conditions import (
    ConditionType,
    Event,
    EventReason,
    EventType,
    Reason,
    set_condition,
)
from releaseguard.domain.models import (
    Blocker,
    GuardSpec,
    GuardStatus,
    Step,
    StepReadiness,
)
from releaseguard.domain.steps import Claim as Claim

CONFLICT = ConditionType.CONFLICT


@dataclass(frozen=True)
class GuardIdentity:
    name: str
    uid: str
    created: str  # creationTimestamp as the API server gives it (RFC 3339, UTC, "Z")

    @property
    def seniority(self) -> tuple[datetime | str, str]:
        """Smaller is older: sorts by creation time, then by name."""
        try:
            created: datetime | str = datetime.fromisoformat(self.created.replace("Z", "+00:00"))
        except ValueError:
            created = self.created
        return (created, self.name)


def claim_of(step: Step, spec: GuardSpec) -> Claim:
    """The object and field the step writes; which ones is the step kind's (domain/steps/)."""
    return steps.claim(step, spec.target.deployment)


def claims_of(spec: GuardSpec) -> dict[int, Claim]:
    """Each step's claim, by step index."""
    return {index: claim_of(step, spec) for index, step in enumerate(spec.steps)}


@dataclass(frozen=True)
class Overlap:
    index: int  # our step
    claim: Claim
    other: GuardIdentity
    we_act: bool


def _older(a: GuardIdentity, b: GuardIdentity) -> bool:
    try:
        return a.seniority < b.seniority
    except TypeError:  # an unparsable creationTimestamp: compare the text
        return (a.created, a.name) < (b.created, b.name)


def overlaps(
    me: GuardIdentity,
    mine: Mapping[int, Claim],
    others: Sequence[tuple[GuardIdentity, Mapping[int, Claim]]],
) -> list[Overlap]:
    found = []
    for other, theirs in sorted(others, key=lambda o: (o[0].name, o[0].uid)):
        if other.uid == me.uid:
            continue
        claimed = set(theirs.values())
        for index, claim in sorted(mine.items()):
            if claim in claimed:
                found.append(Overlap(index, claim, other, _older(me, other)))
    return found


def yielded(readiness: Sequence[StepReadiness], found: Sequence[Overlap]) -> list[StepReadiness]:
    """Readiness with the steps this guard yields to an older guard marked not ready."""
    yields = {o.index: o for o in found if not o.we_act}
    result = []
    for r in readiness:
        o = yields.get(r.index)
        if o is None:
            result.append(r)
        else:
            why = (
                f"yields to older guard {o.other.name}, which also writes "
                f"{o.claim.object} {o.claim.field}"
            )
            result.append(
                r.model_copy(update={"ready": False, "reason": why, "code": Blocker.YIELDED})
            )
    return result


def conflict_message(found: Sequence[Overlap]) -> str:
    """One sentence per overlap, for the Conflict condition and Event."""
    parts = []
    for o in found:
        who = "this guard acts (older)" if o.we_act else f"{o.other.name} acts (older)"
        parts.append(
            f"step {o.index} and guard {o.other.name} both write {o.claim.object} "
            f"{o.claim.field}: {who}"
        )
    return "; ".join(parts)


def with_conflict(
    status: GuardStatus, found: Sequence[Overlap], now: datetime, generation: int | None
) -> tuple[GuardStatus, list[Event]]:
    """The status with its Conflict condition, and a Warning Event when an overlap
    appears or changes. A guard that never overlapped gets no Conflict condition."""
    old = next((c for c in status.conditions if c.type == CONFLICT), None)
    if not found and old is None:
        return status, []
    message = conflict_message(found)
    if found:
        conds = set_condition(
            status.conditions, CONFLICT, True, Reason.OVERLAPPING_GUARDS, message, now, generation
        )
    else:
        conds = set_condition(
            status.conditions, CONFLICT, False, Reason.NO_OVERLAP, "", now, generation
        )
    events = []
    if found and (old is None or old.status != "True" or old.message != message):
        events.append(Event(EventType.WARNING, EventReason.CONFLICT, message))
    return status.model_copy(update={"conditions": conds}), events
