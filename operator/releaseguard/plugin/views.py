"""What the plugin shows about guards, as plain data: list rows and the status view.

Pure: functions of the guard object as the API server returns it (a dict) and the
time, passed in. Status is read as data, not through `GuardStatus`: fields that newer
operators add (reverts, knownBad, notifications, new action types) are shown when
present and ignored when absent, and a status this version cannot parse still shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from releaseguard.domain.guard import CONTAIN_NOW
from releaseguard.domain.models import GuardSpec

# An on-call screen, not an archive: the newest actions, the rest is in -o json.
LAST_ACTIONS = 5
MAX_TEXT = 300  # characters of any one message shown in a table cell


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time from the API server (Z or an offset), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def short(text: object, limit: int = MAX_TEXT) -> str:
    value = "" if text is None else str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def duration(seconds: float) -> str:
    """kubectl-style: 42s, 3m12s, 2h5m, 3d4h."""
    sign = "-" if seconds < 0 else ""
    s = int(abs(seconds))
    if s < 60:
        return f"{sign}{s}s"
    if s < 3600:
        return f"{sign}{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{sign}{s // 3600}h{(s % 3600) // 60}m"
    return f"{sign}{s // 86400}d{(s % 86400) // 3600}h"


def offset(seconds: float) -> str:
    """A time relative to detection: +0.0s, +12.3s, +2m05s, -1.2s."""
    sign = "-" if seconds < 0 else "+"
    s = abs(seconds)
    if s < 60:
        return f"{sign}{s:.1f}s"
    return sign + duration(s)


def ago(then: object, now: datetime) -> str:
    at = then if isinstance(then, datetime) else parse_time(then)
    return "-" if at is None else duration((now - at).total_seconds())


def _value(v: object) -> str:
    if isinstance(v, list):
        return ", ".join(str(x) for x in v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_value(x)}" for k, x in v.items()) + "}"
    return "unset" if v is None else str(v)


def describe_change(before: object, after: object) -> str:
    """`replicas: 2 → 0`; each key of either side, in order, once."""
    b = before if isinstance(before, Mapping) else {}
    a = after if isinstance(after, Mapping) else {}
    keys = list(dict.fromkeys([*b, *a]))
    if not keys:
        return ""
    return "; ".join(f"{k}: {_value(b.get(k))} → {_value(a.get(k))}" for k in keys)


def _status(guard: Mapping[str, Any]) -> Mapping[str, Any]:
    status = guard.get("status")
    return status if isinstance(status, Mapping) else {}


def _list(value: object) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(item: Mapping[str, Any], key: str, missing: str = "") -> str:
    """A field of an API object as text: `missing` when absent, str() of anything."""
    return str(item.get(key, missing))


def open_incident(status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    incident = _map(status.get("incident"))
    return incident if incident and not incident.get("closed") else None


def in_incident(action: Mapping[str, Any], number: object) -> bool:
    """Whether the action (a status.actions[] item) belongs to incident `number`, by its
    `incident` field; a record written before that field existed: by its id, which
    starts with `<number>-` (as domain/identity.py's in_incident)."""
    recorded = action.get("incident")
    if recorded is not None:
        return str(recorded) == str(number)
    return str(action.get("id", "")).startswith(f"{number}-")


def incident_actions(status: Mapping[str, Any], number: object) -> list[Mapping[str, Any]]:
    """The actions of incident `number`, oldest first."""
    return [a for a in _list(status.get("actions")) if in_incident(a, number)]


# ---------------------------------------------------------------- list


@dataclass(frozen=True)
class ListRow:
    namespace: str
    name: str
    target: str
    phase: str
    verdict: str
    breaches: int | None
    last_action: str
    incident: str  # "#2 open 4m10s", "#2 closed", "-"


def _heading(guard: Mapping[str, Any]) -> dict[str, str]:
    """What a list row and the status view both start with: which guard, its target,
    its phase and the last verdict."""
    meta = _map(guard.get("metadata"))
    status = _status(guard)
    return {
        "namespace": _text(meta, "namespace"),
        "name": _text(meta, "name"),
        "target": str(_map(_map(guard.get("spec")).get("target")).get("deployment", "")),
        "phase": str(status.get("phase") or "Pending"),
        "verdict": str(_map(status.get("lastEvaluation")).get("verdict") or "-"),
    }


def list_row(guard: Mapping[str, Any], now: datetime) -> ListRow:
    status = _status(guard)
    last = _map(status.get("lastEvaluation"))
    incident = _map(status.get("incident"))
    if not incident:
        shown = "-"
    elif incident.get("closed"):
        shown = f"#{incident.get('number', '?')} closed"
    else:
        shown = f"#{incident.get('number', '?')} open {ago(incident.get('detectedAt'), now)}"
    breaches = last.get("consecutiveBreaches")
    return ListRow(
        **_heading(guard),
        breaches=breaches if isinstance(breaches, int) else None,
        last_action=short(status.get("lastAction") or "-", 80),
        incident=shown,
    )


# ---------------------------------------------------------------- status


@dataclass(frozen=True)
class ConditionLine:
    type: str
    status: str
    reason: str
    message: str
    since: str


@dataclass(frozen=True)
class MetricLine:
    name: str
    verdict: str
    value: str
    bound: str
    message: str


@dataclass(frozen=True)
class StepLine:
    index: int
    type: str
    ready: bool
    why: str


@dataclass(frozen=True)
class ActionLine:
    id: str
    type: str
    target: str
    result: str
    change: str
    ago: str
    reason: str


@dataclass(frozen=True)
class StatusView:
    namespace: str
    name: str
    target: str
    phase: str
    message: str
    verdict: str
    breaches: str
    evaluated: str
    conditions: list[ConditionLine]
    metrics: list[MetricLine]
    steps: list[StepLine]
    incident: dict[str, str]  # label -> text, in display order; empty when none
    actions: list[ActionLine]
    known_good: str
    known_bad: list[str] = field(default_factory=list)
    notifications: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bound_text(metric: Mapping[str, Any]) -> str:
    parts = []
    if metric.get("max") is not None:
        parts.append(f"≤ {_number(metric['max'])}")
    if metric.get("min") is not None:
        parts.append(f"≥ {_number(metric['min'])}")
    if metric.get("maxRatio") is not None:
        base = metric.get("baseline")
        of = f" (baseline {_number(base)})" if base is not None else ""
        parts.append(f"≤ {_number(metric['maxRatio'])} x baseline{of}")
    return ", ".join(parts) or "-"


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float | int) else "-"


def parse_spec(spec: Mapping[str, Any]) -> GuardSpec | None:
    """The spec through the operator's own model (its defaults), or None if it is invalid
    (the status then says why: phase Invalid)."""
    try:
        return GuardSpec.model_validate(dict(spec))
    except ValidationError:
        return None


def _step_lines(spec: GuardSpec | None, status: Mapping[str, Any]) -> list[StepLine]:
    readiness = {
        r.get("index"): r for r in _list(status.get("readiness")) if isinstance(r.get("index"), int)
    }
    lines = []
    for index, step in enumerate(spec.steps if spec is not None else []):
        r = readiness.get(index)
        if r is None:
            lines.append(StepLine(index, step.type.value, False, "not checked yet"))
            continue
        ready = bool(r.get("ready"))
        why = str(r.get("reason") or ("usable now" if ready else "not usable"))
        lines.append(StepLine(index, str(r.get("type") or step.type.value), ready, short(why)))
    # Readiness of steps the spec no longer has (a newer operator may add its own).
    for index, r in sorted(readiness.items()):
        if index >= len(lines):
            ready = bool(r.get("ready"))
            why = str(r.get("reason") or ("usable now" if ready else "not usable"))
            lines.append(StepLine(index, str(r.get("type", "?")), ready, short(why)))
    return lines


def action_line(action: Mapping[str, Any], now: datetime) -> ActionLine:
    return ActionLine(
        id=_text(action, "id", "?"),
        type=_text(action, "type", "?"),
        target=_text(action, "target"),
        result=_text(action, "result"),
        change=short(describe_change(action.get("before"), action.get("after")), 200),
        ago=ago(action.get("time"), now),
        reason=short(action.get("message") or action.get("reason") or ""),
    )


def _incident_lines(incident: Mapping[str, Any], now: datetime) -> dict[str, str]:
    if not incident:
        return {}
    lines = {"number": str(incident.get("number", "?"))}
    lines["state"] = "closed" if incident.get("closed") else "open"
    for key, label in (
        ("detectedAt", "detected"),
        ("confirmedAt", "confirmed"),
        ("containedAt", "contained"),
        ("recoveredAt", "recovered"),
    ):
        if incident.get(key):
            lines[label] = f"{incident[key]} ({ago(incident[key], now)} ago)"
    if incident.get("timeToContainSeconds") is not None:
        lines["time to contain"] = f"{_number(incident['timeToContainSeconds'])}s"
    if incident.get("reverts") is not None:
        lines["reverts"] = str(incident["reverts"])
    if incident.get("reason"):
        lines["reason"] = short(incident["reason"])
    return lines


def status_view(guard: Mapping[str, Any], now: datetime) -> StatusView:
    spec = _map(guard.get("spec"))
    status = _status(guard)
    last = _map(status.get("lastEvaluation"))
    actions = _list(status.get("actions"))[-LAST_ACTIONS:]
    model = parse_spec(spec)
    count = last.get("consecutiveBreaches")
    wanted = model.consecutive_breaches if model is not None else "?"
    return StatusView(
        **_heading(guard),
        message=short(status.get("message") or ""),
        breaches=f"{count} of {wanted}" if isinstance(count, int) else "-",
        evaluated=ago(last.get("time"), now) + " ago" if last.get("time") else "not yet",
        conditions=[_condition_line(c, now) for c in _list(status.get("conditions"))],
        metrics=[_metric_line(m) for m in _list(last.get("metrics"))],
        steps=_step_lines(model, status),
        incident=_incident_lines(_map(status.get("incident")), now),
        actions=[action_line(a, now) for a in reversed(actions)],
        known_good=_known_good_text(_map(status.get("lastKnownGood"))),
        known_bad=[_known_bad_text(b) for b in _list(status.get("knownBad"))],
        notifications=_notifications_text(_map(status.get("notifications"))),
    )


def _condition_line(condition: Mapping[str, Any], now: datetime) -> ConditionLine:
    return ConditionLine(
        type=_text(condition, "type"),
        status=_text(condition, "status"),
        reason=_text(condition, "reason"),
        message=short(condition.get("message", "")),
        since=ago(condition.get("lastTransitionTime"), now),
    )


def _metric_line(metric: Mapping[str, Any]) -> MetricLine:
    return MetricLine(
        name=_text(metric, "name"),
        verdict=_text(metric, "verdict"),
        value=_number(metric.get("value")),
        bound=bound_text(metric),
        message=short(metric.get("message", "")),
    )


def _known_good_text(good: Mapping[str, Any]) -> str:
    if not good:
        return "none recorded yet"
    return f"revision {good.get('revision', '?')} ({_value(good.get('images') or [])})"


def _known_bad_text(bad: Mapping[str, Any]) -> str:
    images = _value(bad.get("images") or [])
    return f"{bad.get('hash', '?')} ({images}, incident {bad.get('incident', '?')})"


def _notifications_text(notes: Mapping[str, Any]) -> str:
    if not notes:
        return ""
    text = ", ".join(
        f"{k} {notes[k]}" for k in ("sent", "failed", "pending") if notes.get(k) is not None
    )
    if notes.get("lastError"):
        text += f"; last error: {short(notes['lastError'], 200)}"
    return text


def list_rows(guards: Sequence[Mapping[str, Any]], now: datetime) -> list[ListRow]:
    rows = [list_row(g, now) for g in guards]
    return sorted(rows, key=lambda r: (r.namespace, r.name))


def annotation_settled(status: Mapping[str, Any], key: str, value: str, old_ids: set[Any]) -> bool:
    """Whether the operator has handled `key=value` and is done acting on it.

    The operator records an incident in status before its first step (so that a restart
    can tell its markers), so a contain-now is seen handled while the guard is still
    Breaching, a moment before the step's record: wait for the record, or for any phase
    but Breaching (Exhausted, Invalid, dry-run records, ...).
    """
    handled = status.get("handledAnnotations") or {}
    if not isinstance(handled, Mapping) or handled.get(key) != value:
        return False
    if key != CONTAIN_NOW or status.get("phase") != "Breaching":
        return True
    return any(
        isinstance(a, Mapping) and a.get("id") not in old_ids for a in status.get("actions") or []
    )
