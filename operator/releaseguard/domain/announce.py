"""Kubernetes Events for what the status records: an incident's opening and each action.

Pure: functions of the status. The service posts what `pending_announcements` returns,
after the status that records it was written, and then notes the keys with
`mark_announced` (kept in `status.announced`).

Why from the status: Events used to be posted after the tick, from what the tick
decided. A process killed between its status write and its Events lost them (20 of 21
action Events across a SIGKILL loop), and an action adopted from its marker after a
crash had no Event at all. Now an Event is owed by the record itself: whatever is
recorded and not listed in `status.announced` is posted, by this process or the next.

Exactly once: each Event's name is derived from the guard's uid and the moment's key,
so posting it again (a process that died after posting and before writing
`announced`) is answered 409 by the API server and changes nothing.

This is for Kubernetes Events only; notifications to people (webhooks, Alertmanager)
keep their own outbox.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from releaseguard.domain.conditions import EventReason, EventType, step_reason
from releaseguard.domain.identity import of_incident
from releaseguard.domain.models import ActionRecord, ActionResult, GuardStatus, Incident

MAX_ANNOUNCED = 100
# The Event reasons posted from the status; the service drops them from a tick's own
# Events so that each is posted once, from here.
ANNOUNCED_REASONS = frozenset(
    {EventReason.BREACH_CONFIRMED, *(step_reason(result) for result in ActionResult)}
)


@dataclass(frozen=True)
class Announcement:
    key: str  # unique per guard: names the Event
    type: EventType
    reason: EventReason
    message: str


def incident_key(incident: Incident) -> str:
    return incident.uid or f"incident-{incident.number}"


def action_message(record: ActionRecord) -> str:
    """The Event text for one action (the same as the tick's StepApplied Event was)."""
    if not record.before and not record.after:
        change = record.result.value.lower()
    else:
        change = f"{record.before} -> {record.after}"
    message = f"{record.id} {record.type.value} {record.target}: {change} ({record.reason})"
    if record.message:
        message += f": {record.message}"
    return message


def pending_announcements(status: GuardStatus) -> list[Announcement]:
    """What the status records about its incident and not yet announced, oldest first.

    Only the current incident's moments are owed, and only for an incident opened by an
    operator that keeps `announced` (it has a uid) or one still open: an operator
    upgraded in place does not repeat the Events of incidents long over.
    """
    incident = status.incident
    if incident is None or (incident.closed and not incident.uid):
        return []
    done = set(status.announced)
    prefix = incident_key(incident)
    owed: list[Announcement] = []
    opened = f"{prefix}/opened"
    if opened not in done:
        opened_event = Announcement(
            opened, EventType.WARNING, EventReason.BREACH_CONFIRMED, incident.reason
        )
        owed.append(opened_event)
    for record in status.actions:
        if not of_incident(record.id, incident.number):
            continue
        key = f"{prefix}/action/{record.id}"
        if key in done:
            continue
        kind = EventType.WARNING if record.result is ActionResult.FAILED else EventType.NORMAL
        reason = step_reason(record.result)
        owed.append(Announcement(key, kind, reason, action_message(record)))
    return owed


def mark_announced(status: GuardStatus, keys: Iterable[str]) -> GuardStatus:
    new = [k for k in keys if k not in status.announced]
    if not new:
        return status
    return status.model_copy(update={"announced": [*status.announced, *new][-MAX_ANNOUNCED:]})
