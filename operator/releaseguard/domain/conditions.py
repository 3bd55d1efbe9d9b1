"""The status conditions a guard reports and the Events it posts: their types, reasons and
constructors, in one place (the shape of Argo Rollouts' utils/conditions).

Every enum is a `str` enum: status and Events carry exactly the text written here, and a
new condition, reason or Event starts with a member below. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from releaseguard.domain.models import ActionResult, Condition, Phase


class ConditionType(StrEnum):
    """status.conditions[].type."""

    READY = "Ready"  # reason: the phase (Phase), or why the guard is inactive
    METRICS_AVAILABLE = "MetricsAvailable"
    BREACHED = "Breached"  # reason False: the last verdict (Verdict) or Counting
    CONTAINED = "Contained"
    ROLLBACK_READY = "RollbackReady"
    CONFLICT = "Conflict"  # only once two guards overlapped (domain/ownership.py)


class Reason(StrEnum):
    """status.conditions[].reason, besides the Phase and Verdict values used as reasons
    (Ready carries the phase, Breached False the last verdict)."""

    # Ready False: why the guard does not evaluate (phase Suspended or Invalid)
    SUSPENDED = "Suspended"
    MISSING_OBJECT = "MissingObject"
    NO_PROMETHEUS = "NoPrometheus"
    NO_ALERTMANAGER = "NoAlertmanager"
    URL_NOT_ALLOWED = "URLNotAllowed"
    INVALID_TOKEN = "InvalidToken"
    SECRET_NOT_LABELLED = "SecretNotLabelled"
    BAD_QUERY = "BadQuery"
    # MetricsAvailable
    QUERIES_ANSWERED = "QueriesAnswered"
    NO_DATA = "NoData"
    QUERY_BUDGET_EXHAUSTED = "QueryBudgetExhausted"
    # Breached
    BREACH_CONFIRMED = "BreachConfirmed"
    COUNTING = "Counting"
    # Contained
    STEP_APPLIED = "StepApplied"
    NOT_CONTAINED = "NotContained"
    REVERTED = "Reverted"
    # RollbackReady
    KNOWN_GOOD_REVISION = "KnownGoodRevision"
    NO_KNOWN_GOOD_REVISION = "NoKnownGoodRevision"
    READY = "Ready"
    STATE_CHANGED = "StateChanged"
    NOT_READY = "NotReady"
    # Conflict
    OVERLAPPING_GUARDS = "OverlappingGuards"
    NO_OVERLAP = "NoOverlap"


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class EventReason(StrEnum):
    """Every reason of an Event the operator (and its kubectl plugin) posts."""

    # phase changes: the new phase (phase_reason)
    PENDING = "Pending"
    WATCHING = "Watching"
    BREACHING = "Breaching"
    CONTAINED = "Contained"
    EXHAUSTED = "Exhausted"
    SUSPENDED = "Suspended"
    INVALID = "Invalid"
    # the lifecycle
    STALE_CONFIRMATION = "StaleConfirmation"
    BREACH_CONFIRMED = "BreachConfirmed"
    REARMED = "Rearmed"
    RECOVERED = "Recovered"
    ACTION_RECOVERED = "ActionRecovered"
    CONTAINMENT_REVERTED = "ContainmentReverted"
    ROLLBACK_REFUSED = "RollbackRefused"
    CONFLICT = "Conflict"
    # one per ActionResult (step_reason)
    STEP_APPLIED = "StepApplied"
    STEP_FAILED = "StepFailed"
    STEP_DRY_RUN = "StepDryRun"
    # the operator's own troubles
    STATUS_WRITE_FAILED = "StatusWriteFailed"
    STATUS_UNREADABLE = "StatusUnreadable"
    # kubectl releaseguard undo
    ACTION_UNDONE = "ActionUndone"


def phase_reason(phase: Phase) -> EventReason:
    """The reason of the Event posted when the guard enters `phase`."""
    return EventReason(phase.value)


def step_reason(result: ActionResult) -> EventReason:
    """The reason of the Event posted for one action's outcome: StepApplied, ..."""
    return EventReason(f"Step{result.value}")


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: EventReason
    message: str


def set_condition(
    conditions: Sequence[Condition],
    type_: ConditionType,
    status: bool,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    """Replace one condition, keeping lastTransitionTime when its status did not change.

    `reason`: a Reason, or a Phase or Verdict value where the condition carries one."""
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


def find_condition(conditions: Sequence[Condition], type_: ConditionType) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)
