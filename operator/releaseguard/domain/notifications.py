"""What a guard owes its spec.notify sinks, and what each sink is sent.

Pure: no I/O, time is passed in. The moments owed are derived from two statuses (the one
before an evaluation and the one after it), never from what the process did in between,
so that the outbox entry is written in the same status write as the transition that owes
it: a crash or a failover between the two cannot lose a notification. A restarted or
newly active replica sends what the stored outbox still holds; a receiver may therefore
see a notification twice, never zero times, and dedupes by the idempotency key.

The adapter (adapters/notify.py) delivers, with retries, off the evaluation path; what it
reports back is folded into the status by `settle` on the guard's next evaluation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from releaseguard.domain.identity import in_incident
from releaseguard.domain.models import (
    MAX_OUTBOX,
    ActionRecord,
    ActionResult,
    Blocker,
    Evidence,
    GuardSpec,
    GuardStatus,
    Incident,
    MetricEvaluation,
    Moment,
    NotificationCounts,
    OwedNotification,
    Phase,
    StepReadiness,
    StepType,
    WebhookFormat,
)

# Delivery is retried for this long after the moment; then the notification has failed.
DELIVERY_WINDOW = timedelta(minutes=10)
# lastError and message texts stay one line and small: they live in the guard's status.
MAX_TEXT = 500
ALERT_NAME = "ReleaseGuardIncident"
# Moments that end the Alertmanager alert of an incident.
RESOLVING = frozenset({Moment.RECOVERED, Moment.REARMED})


@dataclass(frozen=True)
class Outcome:
    """The end of one notification's delivery to one sink."""

    key: str
    sink: int
    delivered: bool
    error: str = ""


@dataclass(frozen=True)
class GuardId:
    namespace: str
    name: str
    uid: str
    target: str


def idempotency_key(uid: str, entry: OwedNotification) -> str:
    return f"{uid}/{entry.key}"


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_TEXT else line[: MAX_TEXT - 1] + "…"


def _bound(m: MetricEvaluation) -> str:
    parts = []
    if m.max is not None:
        parts.append(f"max {m.max:g}")
    if m.min is not None:
        parts.append(f"min {m.min:g}")
    if m.max_ratio is not None:
        baseline = "" if m.baseline is None else f" of baseline {m.baseline:g}"
        parts.append(f"maxRatio {m.max_ratio:g}{baseline}")
    return ", ".join(parts)


def _evidence(status: GuardStatus) -> list[Evidence]:
    last = status.last_evaluation
    if last is None:
        return []
    return [
        Evidence(name=m.name, value=m.value, bound=_bound(m), verdict=m.verdict)
        for m in last.metrics
    ]


def _open(incident: Incident | None) -> bool:
    return incident is not None and not incident.closed


def _refusal(readiness: Sequence[StepReadiness]) -> str:
    for r in readiness:
        if r.type is StepType.ROLLBACK and not r.ready and r.code is Blocker.STATE_CHANGED:
            return r.reason
    return ""


def _reverts(incident: Incident | None) -> int:
    return incident.reverts if incident is not None else 0


def _revert_line(incident: Incident, count: int) -> tuple[str, str]:
    """The action id and one line for the `count`-th revert of the incident (from 1)."""
    # status.incident.reverted keeps the newest reverts; reverts counts them all.
    back = incident.reverts - count
    kept = incident.reverted
    if back < len(kept):
        r = kept[len(kept) - 1 - back]
        return r.action, (
            f"{r.object} {r.field} was set back to {r.value!r} by {r.manager or 'unknown'}, "
            f"undoing {r.action}"
        )
    return f"revert-{count}", "a containment step was undone"


def moments(old: GuardStatus, new: GuardStatus) -> list[tuple[Moment, int, str, str]]:
    """The moments between two statuses: (moment, incident number, action id, message)."""
    found: list[tuple[Moment, int, str, str]] = []
    before, after = old.incident, new.incident
    if _open(before) and before is not None:
        ended = after is None or after.number != before.number or after.closed
        quietly_over = (
            after is not None
            and after.number == before.number
            and before.recovered_at is None
            and after.recovered_at is not None
        )
        if ended and not quietly_over:
            found.append((Moment.REARMED, before.number, "", "re-armed: watching again"))
    if after is None:
        return found
    n = after.number
    is_new = before is None or before.number != n
    if is_new:
        found.append((Moment.INCIDENT_OPENED, n, "", after.reason or "breach confirmed"))
    known = {a.id for a in old.actions}
    for a in new.actions:
        if a.id in known or not in_incident(a, n):
            continue
        if a.result is ActionResult.APPLIED:
            found.append((Moment.ACTION_APPLIED, n, a.id, _action_line(a)))
        elif a.result is ActionResult.FAILED:
            found.append((Moment.ACTION_FAILED, n, a.id, _action_line(a)))
    refusal = _refusal(new.readiness)
    if refusal and _open(after) and refusal != _refusal(old.readiness):
        found.append((Moment.ROLLBACK_REFUSED, n, "", refusal))
    reverts = _reverts(after) - (_reverts(before) if not is_new else 0)
    for count in range(_reverts(after) - max(0, reverts) + 1, _reverts(after) + 1):
        action_id, line = _revert_line(after, count)
        # The key needs the count: the same step can be undone again after a re-apply.
        found.append((Moment.CONTAINMENT_REVERTED, n, f"{action_id}#{count}", line))
    if new.phase is Phase.EXHAUSTED and old.phase is not Phase.EXHAUSTED:
        found.append((Moment.EXHAUSTED, n, "", new.message or "no applicable step left"))
    recovered_now = after.recovered_at is not None and (
        is_new or before is None or before.recovered_at is None
    )
    if recovered_now:
        found.append((Moment.RECOVERED, n, "", "metrics are healthy again"))
    return found


def _action_line(a: ActionRecord) -> str:
    line = f"{a.type.value} {a.target} {a.result.value.lower()}"
    if a.before or a.after:
        line += f": {json.dumps(a.before, sort_keys=True)} -> {json.dumps(a.after, sort_keys=True)}"
    if a.message:
        line += f" ({a.message})"
    return line


def record_owed(old: GuardStatus, new: GuardStatus, sinks: int, now: datetime) -> GuardStatus:
    """`new` with the notifications owed since `old` added to its outbox (one entry per
    moment, owed to every sink). The outbox is bounded: beyond MAX_OUTBOX the oldest
    entries are dropped and counted as failed, never silently."""
    if sinks <= 0:
        return new
    # The key names the incident by its uid, which never repeats (domain/identity.py):
    # after a status reset numbers start at 1 again, and a receiver deduplicating by key
    # would drop the new incident's notifications as repeats of the old one's.
    uids = {i.number: i.uid for i in (old.incident, new.incident) if i is not None and i.uid}
    owed = [
        OwedNotification(
            key=f"{uids.get(number, number)}/{moment.value}/{action_id}",
            moment=moment,
            incident=number,
            action_id=action_id,
            time=now,
            phase=new.phase,
            message=_short(message),
            evidence=_evidence(new),
            sinks=list(range(sinks)),
        )
        for moment, number, action_id, message in moments(old, new)
    ]
    keys = {e.key for e in new.outbox}
    owed = [e for e in owed if e.key not in keys]
    if not owed and new.notifications is not None:
        return new
    outbox = [*new.outbox, *owed]
    counts = new.notifications or NotificationCounts()
    if len(outbox) > MAX_OUTBOX:
        dropped = outbox[:-MAX_OUTBOX]
        outbox = outbox[-MAX_OUTBOX:]
        counts = counts.model_copy(
            update={
                "failed": counts.failed + sum(len(e.sinks) for e in dropped),
                "last_error": f"outbox full: dropped {len(dropped)} oldest notifications",
            }
        )
    counts = counts.model_copy(update={"pending": sum(len(e.sinks) for e in outbox)})
    return new.model_copy(update={"outbox": outbox, "notifications": counts})


def settle(status: GuardStatus, outcomes: Sequence[Outcome], sinks: int) -> GuardStatus:
    """Fold delivery outcomes into the status: each ends one (notification, sink) pair.
    Sinks no longer in spec.notify (`sinks` entries) are owed nothing more."""
    if not outcomes and all(s < sinks for e in status.outbox for s in e.sinks):
        return status
    counts = status.notifications or NotificationCounts()
    sent, failed, last_error = counts.sent, counts.failed, counts.last_error
    done = {(o.key, o.sink): o for o in outcomes}
    outbox = []
    for entry in status.outbox:
        left = []
        for sink in entry.sinks:
            outcome = done.get((entry.key, sink))
            if outcome is None:
                if sink < sinks:
                    left.append(sink)
                continue
            if outcome.delivered:
                sent += 1
            else:
                failed += 1
                last_error = _short(f"{entry.moment.value} to notify[{sink}]: {outcome.error}")
        if left:
            outbox.append(entry.model_copy(update={"sinks": left}))
    counts = NotificationCounts(
        sent=sent,
        failed=failed,
        pending=sum(len(e.sinks) for e in outbox),
        last_error=last_error,
    )
    return status.model_copy(update={"outbox": outbox, "notifications": counts})


# ---------------------------------------------------------------- what each sink is sent


def _action(status: GuardStatus, action_id: str) -> ActionRecord | None:
    return next((a for a in status.actions if a.id == action_id), None) if action_id else None


def message_document(
    guard: GuardId, entry: OwedNotification, status: GuardStatus
) -> dict[str, Any]:
    """The notification as one JSON document (the JSON webhook body)."""
    doc: dict[str, Any] = {
        "idempotencyKey": idempotency_key(guard.uid, entry),
        "moment": entry.moment.value,
        "time": entry.time.isoformat().replace("+00:00", "Z"),
        "guard": {"namespace": guard.namespace, "name": guard.name, "uid": guard.uid},
        "target": guard.target,
        "incident": entry.incident,
        "phase": entry.phase.value,
        "message": entry.message,
        "evidence": [e.wire() for e in entry.evidence],
    }
    action = _action(status, entry.action_id.split("#")[0])
    if entry.action_id:
        doc["action"] = {"id": entry.action_id}
    if action is not None:
        doc["action"] = {
            "id": action.id,
            "type": action.type.value,
            "target": action.target,
            "result": action.result.value,
            "before": action.before,
            "after": action.after,
            "reason": action.reason,
            "message": action.message,
        }
    return doc


def slack_document(guard: GuardId, entry: OwedNotification) -> dict[str, Any]:
    """A Slack incoming-webhook message: one mrkdwn text."""
    evidence = "; ".join(
        f"{e.name} {'no data' if e.value is None else f'{e.value:g}'} "
        f"({e.bound}, {e.verdict.value})"
        for e in entry.evidence
    )
    text = (
        f"*{entry.moment.value}* {guard.namespace}/{guard.name} "
        f"(target {guard.target}, incident {entry.incident}, phase {entry.phase.value}): "
        f"{entry.message}"
    )
    if evidence:
        text += f"\nevidence: {evidence}"
    return {"text": text}


def body_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def signature(key: str, body: bytes) -> str:
    """The X-ReleaseGuard-Signature header value: sha256=<hex HMAC-SHA256 of the body>."""
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def webhook_request(
    guard: GuardId,
    entry: OwedNotification,
    status: GuardStatus,
    fmt: WebhookFormat,
    hmac_key: str | None,
) -> tuple[bytes, dict[str, str]]:
    """Body and headers of one webhook POST."""
    headers = {"Content-Type": "application/json"}
    if fmt is WebhookFormat.SLACK:
        return body_bytes(slack_document(guard, entry)), headers
    body = body_bytes(message_document(guard, entry, status))
    headers["Idempotency-Key"] = idempotency_key(guard.uid, entry)
    if hmac_key:
        headers["X-ReleaseGuard-Signature"] = signature(hmac_key, body)
    return body, headers


ALERT_PHASES = (Phase.BREACHING, Phase.CONTAINED, Phase.EXHAUSTED)


def _stamp(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def alerts(
    guard: GuardId,
    incident: int,
    phase: Phase,
    firing: bool,
    message: str,
    now: datetime,
    resend_within: timedelta,
) -> list[dict[str, Any]]:
    """The Alertmanager alerts (POST /api/v2/alerts) for a guard's incident.

    The alert's labels carry the phase, so a phase change is a different alert to
    Alertmanager: the other phases' alerts are sent resolved with it. A firing alert ends
    by itself `resend_within` from now unless it is posted again (the operator re-posts
    while the incident is open), so an operator that died does not leave it firing forever.
    """
    severity = "critical" if phase is Phase.EXHAUSTED else "warning"
    out = []
    for p in ALERT_PHASES:
        live = firing and p is phase
        out.append(
            {
                "labels": {
                    "alertname": ALERT_NAME,
                    "namespace": guard.namespace,
                    "guard": guard.name,
                    "target": guard.target,
                    "severity": "critical" if p is Phase.EXHAUSTED else "warning",
                    "phase": p.value,
                },
                "annotations": {
                    "summary": f"ReleaseGuard {guard.namespace}/{guard.name}: incident "
                    f"{incident} {phase.value}",
                    "description": _short(message),
                    "incident": str(incident),
                    "severity_now": severity,
                },
                "startsAt": _stamp(now) if live else None,
                "endsAt": _stamp(now + resend_within if live else now),
            }
        )
    for a in out:
        if a["startsAt"] is None:
            del a["startsAt"]
    return out


def alert_state(entry: OwedNotification) -> bool:
    """Whether the moment leaves the incident's alert firing."""
    return entry.moment not in RESOLVING


def wants_alert_repost(spec: GuardSpec, status: GuardStatus) -> bool:
    """An open incident that has not recovered keeps its alert firing."""
    has_alertmanager = any(s.alertmanager is not None for s in spec.notify)
    incident = status.incident
    return (
        has_alertmanager
        and _open(incident)
        and incident is not None
        and (incident.recovered_at is None)
    )
