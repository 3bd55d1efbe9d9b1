"""An incident as one ordered list: status and Events merged, times relative to detection.

Pure: a function of the guard's status (a dict, read as data), its Events (dicts as the
API server returns them) and the incident number. Status is the record (times to the
millisecond, every action with before and after); Events add what status does not keep
(refusals, reverts, re-arm, undo, notifications of newer operators). An Event that
repeats a status entry (the action it reports, the confirmation, the recovery) is left
out so each moment appears once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from releaseguard.domain.conditions import EventReason, EventType, step_reason
from releaseguard.domain.models import ActionResult
from releaseguard.plugin.views import (
    describe_change,
    incident_actions,
    offset,
    parse_time,
    short,
)

# Events carry whole seconds (lastTimestamp) when eventTime is missing: an Event can
# show a time up to a second before the moment status recorded to the millisecond.
EVENT_SLACK = timedelta(seconds=1)
# Event reasons whose moment status records itself; kept only when status lacks it.
_ACTION_EVENTS = tuple(step_reason(result) for result in ActionResult)
# Phase-change Events ("phase A -> B") that repeat a status entry.
_PHASE_COVERED = {EventReason.BREACHING: "confirmed", EventReason.CONTAINED: "contained"}
# Events that end an incident's window: the guard watches again after them.
_CLOSING = (EventReason.REARMED, EventReason.WATCHING)
_NEVER = datetime.min.replace(tzinfo=UTC)
_WORD = re.compile(r"[\w.-]+")
_REAPPLY = re.compile(r"-r\d+$")
MAX_ENTRIES = 500


@dataclass(frozen=True)
class Entry:
    time: datetime
    what: str  # detected, confirmed, action, re-apply, contained, recovered, or an Event reason
    text: str
    source: str  # "status" or "event"
    warning: bool = False
    subject: str = ""  # the action an entry is about, when it names one

    def to_dict(self, origin: datetime | None) -> dict[str, Any]:
        data = asdict(self)
        data["time"] = self.time.isoformat()
        data["offsetSeconds"] = (
            round((self.time - origin).total_seconds(), 3) if origin is not None else None
        )
        return data


@dataclass(frozen=True)
class Timeline:
    incident: int | None
    origin: datetime | None  # detection, or the first entry when detection is unknown
    origin_label: str
    entries: tuple[Entry, ...]
    note: str = ""

    def offset_of(self, entry: Entry) -> str:
        return "" if self.origin is None else offset((entry.time - self.origin).total_seconds())

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident": self.incident,
            "origin": self.origin.isoformat() if self.origin else None,
            "originLabel": self.origin_label,
            "note": self.note,
            "entries": [e.to_dict(self.origin) for e in self.entries],
        }


def event_time(event: Mapping[str, Any]) -> datetime | None:
    for key in ("eventTime", "lastTimestamp", "firstTimestamp"):
        if at := parse_time(event.get(key)):
            return at
    return parse_time((event.get("metadata") or {}).get("creationTimestamp"))


def _action_entry(action: Mapping[str, Any]) -> Entry | None:
    at = parse_time(action.get("time"))
    if at is None:
        return None
    action_id = str(action.get("id", "?"))
    result = str(action.get("result", ""))
    change = describe_change(action.get("before"), action.get("after"))
    text = f"{action_id} {action.get('type', '?')} {action.get('target', '')}"
    text += f": {change}" if change else ""
    text += f" [{result}]"
    detail = action.get("message") or ""
    if detail:
        text += f" {detail}"
    what = "re-apply" if _REAPPLY.search(action_id) else "action"
    return Entry(at, what, short(text, 400), "status", warning=result == "Failed")


def _event_entry(event: Mapping[str, Any]) -> Entry | None:
    at = event_time(event)
    if at is None:
        return None
    count = event.get("count")
    text = short(event.get("message", ""), 400)
    if isinstance(count, int) and count > 1:
        text += f" (x{count})"
    return Entry(
        at,
        str(event.get("reason", "")),
        text,
        "event",
        warning=event.get("type") == EventType.WARNING,
    )


def _covered(event: Mapping[str, Any], kinds: set[str], action_ids: set[str]) -> bool:
    reason = str(event.get("reason", ""))
    message = str(event.get("message", ""))
    if reason in _ACTION_EVENTS:
        return message.split(" ", 1)[0] in action_ids
    if reason == EventReason.BREACH_CONFIRMED:
        return "confirmed" in kinds
    if reason == EventReason.RECOVERED:
        return "recovered" in kinds
    if reason in _PHASE_COVERED:
        return _PHASE_COVERED[reason] in kinds
    return False


def _names_any(event: Mapping[str, Any], action_ids: set[str]) -> bool:
    return bool(set(_WORD.findall(str(event.get("message", "")))) & action_ids)


def _revert_entries(incident: Mapping[str, Any]) -> list[Entry]:
    """`incident.reverted` (operators with revert detection): who undid which step."""
    entries = []
    reverted = incident.get("reverted")
    for r in reverted if isinstance(reverted, list) else []:
        if not isinstance(r, Mapping) or (at := parse_time(r.get("time"))) is None:
            continue
        text = (
            f"{r.get('object', '?')} {r.get('field', '?')} is {r.get('value', '?')} again, "
            f"written by {r.get('manager') or 'an unknown manager'} (undoing {r.get('action')})"
        )
        entries.append(
            Entry(at, "reverted", short(text, 400), "status", True, str(r.get("action")))
        )
    return entries


def _repeats_a_revert(event: Mapping[str, Any], reverts: Sequence[Entry]) -> bool:
    """A ContainmentReverted Event about a revert status records (same step, same moment)."""
    if event.get("reason") != "ContainmentReverted":
        return False
    at = event_time(event)
    message = str(event.get("message", ""))
    return at is not None and any(
        abs((r.time - at).total_seconds()) <= 2 * EVENT_SLACK.total_seconds()
        and f"(undoing {r.subject})" in message
        for r in reverts
    )


def _status_entries(
    incident: Mapping[str, Any], actions: Sequence[Mapping[str, Any]]
) -> list[Entry]:
    entries = []
    if at := parse_time(incident.get("detectedAt")):
        entries.append(Entry(at, "detected", "first breaching evaluation", "status", True))
    if at := parse_time(incident.get("confirmedAt")):
        reason = short(incident.get("reason") or "", 300)
        entries.append(Entry(at, "confirmed", f"breach confirmed: {reason}", "status", True))
    entries += [e for a in actions if (e := _action_entry(a)) is not None]
    if at := parse_time(incident.get("containedAt")):
        ttc = incident.get("timeToContainSeconds")
        took = f": time to contain {ttc:g}s" if isinstance(ttc, int | float) else ""
        entries.append(Entry(at, "contained", f"contained{took}", "status"))
    if at := parse_time(incident.get("recoveredAt")):
        entries.append(Entry(at, "recovered", "metrics healthy again", "status"))
    return entries


def assemble(
    status: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    number: int | None = None,
) -> Timeline:
    """The timeline of incident `number` (default: the guard's latest incident)."""
    incident = status.get("incident") if isinstance(status.get("incident"), Mapping) else {}
    assert isinstance(incident, Mapping)
    latest = incident.get("number") if isinstance(incident.get("number"), int) else None
    if number is None:
        number = latest
    if number is None:
        return Timeline(None, None, "", (), note="no incident yet: the guard has never breached")
    events = sorted(
        (e for e in events if event_time(e) is not None),
        key=lambda e: event_time(e) or _NEVER,
    )
    if number == latest:
        return _latest(incident, status, events, number)
    return _older(status, events, number, incident if latest is not None else {})


def _latest(
    incident: Mapping[str, Any],
    status: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    number: int,
) -> Timeline:
    actions = incident_actions(status, number)
    reverts = _revert_entries(incident)
    entries = _status_entries(incident, actions) + reverts
    kinds = {e.what for e in entries}
    ids = {str(a.get("id")) for a in actions}
    detected = parse_time(incident.get("detectedAt"))
    first = detected or min((e.time for e in entries), default=None)
    start = first - EVENT_SLACK if first is not None else None
    watching_again = False
    for event in events:
        at = event_time(event)
        assert at is not None
        if (start is not None and at < start) or _covered(event, kinds, ids):
            continue
        if _repeats_a_revert(event, reverts):
            continue
        # Once the guard watches again, only Events about this incident's actions (an
        # undo, a late revert) still belong to it.
        if watching_again and not _names_any(event, ids):
            continue
        entry = _event_entry(event)
        if entry is not None:
            entries.append(entry)
        if incident.get("closed") and event.get("reason") in _CLOSING:
            watching_again = True
    ordered = tuple(sorted(entries, key=lambda e: e.time)[:MAX_ENTRIES])
    note = "" if not incident.get("closed") else "closed"
    return Timeline(number, detected, "detection", ordered, note=note)


def _older(
    status: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    number: int,
    latest: Mapping[str, Any],
) -> Timeline:
    """Status keeps only the latest incident; an older one is told by its actions (while
    among the last 50) and the Events that name them or fall between them and the next
    incident's detection."""
    actions = incident_actions(status, number)
    entries = [e for a in actions if (e := _action_entry(a)) is not None]
    if not entries:
        return Timeline(
            number,
            None,
            "",
            (),
            note=f"incident {number} is not in the guard's status any more (status keeps the "
            "latest incident, and the actions of older ones while among the last 50)",
        )
    first = min(e.time for e in entries) - EVENT_SLACK
    end = parse_time(latest.get("detectedAt"))
    ids = {str(a.get("id")) for a in actions}
    for event in events:
        at = event_time(event)
        assert at is not None
        # Up to a second before the next detection: Events may carry whole seconds.
        inside = first <= at and (end is None or at < end - EVENT_SLACK)
        if (inside or _names_any(event, ids)) and not _covered(event, set(), ids):
            entry = _event_entry(event)
            if entry is not None:
                entries.append(entry)
    ordered = tuple(sorted(entries, key=lambda e: e.time)[:MAX_ENTRIES])
    return Timeline(
        number,
        ordered[0].time,
        "first recorded entry",
        ordered,
        note=f"incident {number} is older than the latest: its detection time is no longer "
        "kept, so times are relative to its first recorded entry",
    )
