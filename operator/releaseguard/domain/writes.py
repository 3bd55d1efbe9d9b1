"""When a guard's status is worth writing to the API server.

Every evaluation produces a new status, but most of them differ from the stored one only
in lastEvaluation's time and the measured values. Writing each costs a PATCH and, for
the operator, the watch event that PATCH echoes back: at 1,000 guards that was most of
the operator's CPU (tools/bench/scale.py). So a status is written when anything a
reader or a restarted operator acts on has changed (phase, verdicts, the breach count,
conditions, readiness, release, incident, actions), and otherwise once per heartbeat, to
refresh the time and values. A heartbeat of zero writes every evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from releaseguard.domain.models import GuardStatus

_MEASURED = ("value", "baseline", "message")


def _settled(status: GuardStatus) -> dict[str, Any]:
    """The status without what changes on every evaluation of a steady release."""
    data = status.model_dump(mode="json")
    last = data.get("last_evaluation")
    if last:
        last.pop("time", None)
        last.pop("traffic", None)
        for metric in last.get("metrics") or []:
            for key in _MEASURED:
                metric.pop(key, None)
    return data


@dataclass(frozen=True)
class Stored:
    """A status as the API server holds it, and when this process wrote it."""

    status: GuardStatus
    written_at: datetime | None = None  # None: found at start-up, not written by us

    @cached_property
    def settled(self) -> dict[str, Any]:
        return _settled(self.status)


def must_write(
    stored: Stored | None, status: GuardStatus, now: datetime, heartbeat: timedelta
) -> bool:
    """Whether `status` should replace `stored` (None: unknown, so write) at `now`."""
    if stored is None or stored.written_at is None or heartbeat <= timedelta(0):
        return True
    if stored.settled != _settled(status):
        return True
    return now - stored.written_at >= heartbeat


def actions_recorded(stored: Stored | None, status: GuardStatus) -> bool:
    """Whether the API server holds every action record `status` holds: until it does,
    no further step is applied, so no action can go unrecorded (a failed status write
    is retried first; see service.GuardService._write_incident_first)."""
    if not status.actions:
        return True
    if stored is None:
        return False
    held = {a.id: a for a in stored.status.actions}
    return all(held.get(a.id) == a for a in status.actions)
