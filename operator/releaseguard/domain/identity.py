"""Who an action belongs to: incident identity, action ids, and the markers on objects.

Pure: no I/O; the clock is passed in. The kube adapter reads and writes the marker
annotation text; every rule about what a marker means lives here.

Why an incident has a `uid` besides its `number`
-------------------------------------------------
Action ids keep the contract's visible shape `<incident number>-<type>-<step index>`
(e.g. `3-canaryweight-1`). A number alone repeats: a status that starts over (an
unreadable status, a restore from backup) restarts numbering, and the markers left on
objects by the real incident 1 then looked like "already applied" for the new incident 1
(zero writes, Exhausted, a negative time to contain). So each incident also gets a
`uid` that never repeats: its opening time in UTC to the microsecond, taken when the
incident opens. A guard's ticks are serial, so two of its incidents never open at the
same microsecond; a status restored from a backup brings back the uid of an incident
that really was that one. The uid is kept in `status.incident.uid` and in each marker
entry, and a marker counts as "this incident's action" only when both match.

The service writes the incident (with its uid) to status *before* it applies the first
step, so a process that dies after a step's write always finds the incident its marker
names. Markers from before this scheme carry no uid: they count only when their number
matches and they are not older than the incident's detection time.

Markers: one entry per guard
----------------------------
The annotation `releaseguard.io/action` on a changed object holds a JSON object keyed
by guard uid, one entry per guard, so two guards acting on one object never erase each
other's record. While only one guard has an entry, the single-entry form
`{"guard": uid, "id": ..., "incident": ...}` of earlier versions is written (and it is
always read).
At most MAX_MARKER_ENTRIES entries are kept (the oldest dropped), which bounds the
annotation's size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from releaseguard.domain.models import ActionRecord, Incident, Step

MARKER = "releaseguard.io/action"
MAX_MARKER_ENTRIES = 8
MAX_MARKER_BYTES = 16_384  # markers larger than this are not ours to parse

_ACTION_ID = re.compile(r"^(?P<number>[0-9]+)-(?P<type>[a-z]+)-(?P<index>[0-9]+)(?P<rest>-.*)?$")


# ---------------------------------------------------------------- incidents


def incident_uid(opened_at: datetime) -> str:
    """The identity of an incident opened at `opened_at`: never repeats for a guard."""
    return opened_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


# ---------------------------------------------------------------- action ids


def action_id(incident_number: int, step: Step, index: int) -> str:
    """The visible id `<incident>-<type>-<index>`: the same incident and step always give
    the same id (exactly once across restarts). Suffixes (e.g. re-applies) go after it."""
    return f"{incident_number}-{step.type.value.lower()}-{index}"


@dataclass(frozen=True)
class ActionId:
    number: int
    type: str  # the step type, lower case
    index: int
    rest: str = ""  # anything after `<number>-<type>-<index>`, with its leading "-"


def parse_action_id(text: str) -> ActionId | None:
    match = _ACTION_ID.match(text)
    if match is None:
        return None
    return ActionId(int(match["number"]), match["type"], int(match["index"]), match["rest"] or "")


def of_incident(text: str, incident_number: int) -> bool:
    parsed = parse_action_id(text)
    return parsed is not None and parsed.number == incident_number


def in_incident(record: ActionRecord, incident_number: int) -> bool:
    """Whether the action belongs to incident `incident_number`, by its `incident` field
    (a record written before that field existed: by its id, which starts with it)."""
    if record.incident is not None:
        return record.incident == incident_number
    return record.id.startswith(f"{incident_number}-")


# ---------------------------------------------------------------- markers


@dataclass(frozen=True)
class MarkerEntry:
    """One guard's record of the action it applied to an object."""

    id: str
    time: datetime
    incident: str = ""  # the incident's uid; "" for markers written before uids
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "incident": self.incident,
            "before": self.before,
            "after": self.after,
            "time": self.time.isoformat(),
        }


def _entry(value: Any) -> MarkerEntry | None:
    if not isinstance(value, Mapping) or not isinstance(value.get("id"), str):
        return None
    try:
        time = datetime.fromisoformat(str(value.get("time")))
    except ValueError:
        return None
    if time.tzinfo is None:
        time = time.replace(tzinfo=UTC)
    before, after = value.get("before"), value.get("after")
    return MarkerEntry(
        id=value["id"],
        time=time,
        incident=str(value.get("incident") or ""),
        before=dict(before) if isinstance(before, Mapping) else {},
        after=dict(after) if isinstance(after, Mapping) else {},
    )


def parse_markers(text: str | None) -> dict[str, MarkerEntry]:
    """The entries of a marker annotation, by guard uid; {} for anything unreadable."""
    if not text or len(text) > MAX_MARKER_BYTES:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    if isinstance(value.get("guard"), str):  # the single-entry form
        entry = _entry(value)
        return {value["guard"]: entry} if entry is not None else {}
    entries = {}
    for guard, raw in value.items():
        entry = _entry(raw)
        if isinstance(guard, str) and entry is not None:
            entries[guard] = entry
    return entries


def with_marker(text: str | None, guard_uid: str, entry: MarkerEntry) -> str:
    """The annotation text with this guard's entry set and every other guard's kept."""
    entries = parse_markers(text)
    entries[guard_uid] = entry
    if len(entries) > MAX_MARKER_ENTRIES:
        others = sorted(
            ((g, e) for g, e in entries.items() if g != guard_uid),
            key=lambda kv: kv[1].time,
            reverse=True,
        )
        keep = {g for g, _ in others[: MAX_MARKER_ENTRIES - 1]} | {guard_uid}
        entries = {g: e for g, e in entries.items() if g in keep}
    return _dump(entries)


def _dump(entries: dict[str, MarkerEntry]) -> str:
    if len(entries) == 1:  # one guard: the single-entry form older readers know
        ((uid, entry),) = entries.items()
        return json.dumps({"guard": uid, **entry.wire()}, sort_keys=True)
    return json.dumps({g: e.wire() for g, e in entries.items()}, sort_keys=True)


def without_marker(text: str | None, guard_uid: str) -> str | None:
    """The annotation text without this guard's entry (None: no entry is left), for
    undoing an action without erasing other guards' records."""
    entries = parse_markers(text)
    entries.pop(guard_uid, None)
    return _dump(entries) if entries else None


def belongs_to(entry: MarkerEntry, incident: Incident | None) -> bool:
    """Whether a marker entry records an action of `incident` (the guard's open one).

    A marker of another incident (a closed one, or one from before a status reset) is
    never adopted: adopting it would skip the real write.
    """
    if incident is None or incident.closed:
        return False
    if entry.incident:
        return bool(incident.uid) and entry.incident == incident.uid
    # A marker from before incident uids: its number must match and it must not be
    # older than the incident (an old incident's marker after a renumbering is).
    return of_incident(entry.id, incident.number) and entry.time >= incident.detected_at


def incident_recorded(stored: Incident | None, incident: Incident | None) -> bool:
    """Whether the stored status already holds `incident` (same uid, open), so a step of
    it may be applied: a marker written now will name an incident a restart can find."""
    if incident is None:
        return True
    return (
        stored is not None
        and stored.uid == incident.uid
        and stored.number == incident.number
        and not stored.closed
    )
