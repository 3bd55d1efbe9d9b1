"""When someone undoes a step: find it, re-apply it a bounded number of times, give up.

A GitOps reconciler (Argo CD self-heal, Flux), a `kubectl apply` or a pipeline can put
back what a step changed seconds after it was applied. During an open incident every
evaluation checks that each Applied step still holds, on the objects the adapter read
this tick. A step that no longer holds is *reverted*:

- it is re-applied at most `spec.onRevert.reapply` times per incident, the n-th re-apply
  (id `<action id>-r<n>`, so exactly-once holds for it as for every action) waiting
  `intervalSeconds x 2^n` after the revert was found;
- past that limit it counts as failed for the incident and the planner escalates; the
  guard never fights a reconciler in a loop.

Known-bad releases: the pod template a Rollback replaced is kept in `status.knownBad`.
Re-applying it is not a new release (no re-arm); it is a revert of the Rollback, and a
guard never rolls the same template back more than `reapply + 1` times.

Pure: functions of the spec's steps, the objects as plain dicts, the status and the time.
No I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from releaseguard.domain import steps as kinds
from releaseguard.domain.models import (
    ActionRecord,
    ActionResult,
    GuardStatus,
    Incident,
    KnownBad,
    Revert,
    Step,
    StepReadiness,
    StepType,
)
from releaseguard.domain.plan import incident_actions
from releaseguard.domain.steps import Undone as Undone
from releaseguard.domain.steps.kind import MAX_VALUE_CHARS as MAX_VALUE_CHARS
from releaseguard.domain.steps.kind import text as _text

Obj = dict[str, Any]
OWN_MANAGER = "releaseguard"
MAX_KNOWN_BAD = 10
MAX_REVERTS_KEPT = 20
_REAPPLY = re.compile(r"^(?P<original>.+)-r(?P<n>[0-9]+)$")


# ---------------------------------------------------------------- ids


def reapply_id(action_id: str, n: int) -> str:
    """The stable id of the n-th (from 1) re-apply of the action `action_id`."""
    return f"{original_id(action_id)}-r{n}"


def original_id(action_id: str) -> str:
    """The action a re-apply id re-applies (an original id is its own)."""
    match = _REAPPLY.match(action_id)
    return match.group("original") if match else action_id


def reapply_number(action_id: str) -> int:
    """n for `<id>-r<n>`, 0 for an original action."""
    match = _REAPPLY.match(action_id)
    return int(match.group("n")) if match else 0


def reapply_delay(interval_seconds: int, n: int) -> timedelta:
    """How long after a revert was found the n-th re-apply waits: intervalSeconds x 2^n."""
    return timedelta(seconds=interval_seconds * 2**n)


# ---------------------------------------------------------------- does a step hold?


def step_undone(step: Step, record: ActionRecord, obj: Obj) -> Undone | None:
    """None while the effect of `step` (applied as `record`) is in place in `obj`; what
    "in place" means is the step kind's (domain/steps/)."""
    return kinds.undone(step, record.after, obj)


def field_manager(obj: Obj, path: Sequence[str]) -> str:
    """Who wrote the field at `path`, from managedFields: the manager owning the deepest
    part of the path, the newest on a tie; not us, who wrote something else there."""
    best: tuple[int, str, str] | None = None
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        manager = str(entry.get("manager") or "")
        if not manager or manager == OWN_MANAGER:
            continue
        node: Any = entry.get("fieldsV1") or {}
        depth = 0
        for key in path:
            if not isinstance(node, dict) or key not in node:
                break
            node, depth = node[key], depth + 1
        if depth == 0:
            continue
        candidate = (depth, str(entry.get("time") or ""), manager)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return _text(best[2]) if best else "unknown"


# ---------------------------------------------------------------- the incident's reverts


@dataclass(frozen=True)
class Reapply:
    index: int
    step: Step
    action_id: str
    n: int
    revert: Revert


@dataclass(frozen=True)
class RevertCheck:
    """What the reverts of an open incident call for this tick."""

    found: tuple[Revert, ...] = ()  # reverts seen for the first time this tick
    unheld: tuple[Revert, ...] = ()  # steps undone and not replaced by a later step
    reapply: Reapply | None = None  # the re-apply due now, if any
    waiting: tuple[tuple[Revert, datetime], ...] = ()  # re-applies not yet due
    given_up: dict[int, Revert] = field(default_factory=dict)  # step index: its last revert
    why_given_up: dict[int, str] = field(default_factory=dict)  # step index: why

    @property
    def reverted(self) -> bool:
        return bool(self.unheld)


def check_reverts(
    steps: Sequence[Step],
    actions: Sequence[ActionRecord],
    incident: Incident,
    objects: Mapping[int, Obj | None],
    reapply_limit: int,
    interval_seconds: int,
    now: datetime,
    blocked: Mapping[int, str] | None = None,
) -> RevertCheck:
    """Check every step Applied in `incident` against `objects` (step index: the object
    the step changes, as read this tick; None or absent: unknown, not judged).

    `actions`: this incident's actions. `blocked`: step indexes that must not be
    re-applied whatever the count, with why (a known-bad template rolled back too often).
    """
    found: list[Revert] = []
    unheld: list[Revert] = []
    waiting: list[tuple[Revert, datetime]] = []
    given_up: dict[int, Revert] = {}
    why_given_up: dict[int, str] = {}
    due: list[Reapply] = []
    blocked = blocked or {}
    known = {r.action: r for r in incident.reverted}
    pause = StepType.GITOPS_PAUSE
    applied = [a for a in actions if a.result is ActionResult.APPLIED and a.type is not pause]
    for index in sorted({a.step_index for a in applied}):
        obj = objects.get(index)
        if index >= len(steps) or obj is None:
            continue
        step = steps[index]
        if (hit := _latest_undone(step, index, applied, known, obj, now)) is None:
            continue
        latest, revert = hit
        if latest.id not in known:
            found.append(revert)
        done = sum(1 for a in actions if a.step_index == index and reapply_number(a.id) > 0)
        limit = f"re-applied {done} times (spec.onRevert.reapply is {reapply_limit})"
        why = blocked.get(index) or (limit if done >= reapply_limit else "")
        if why:
            given_up[index], why_given_up[index] = revert, why
            if not any(a.step_index != index and a.time > latest.time for a in applied):
                unheld.append(revert)  # no later step replaced it
            continue
        unheld.append(revert)
        n = done + 1
        if (at := revert.time + reapply_delay(interval_seconds, n)) <= now:
            due.append(Reapply(index, step, reapply_id(latest.id, n), n, revert))
        else:
            waiting.append((revert, at))
    return RevertCheck(
        found=tuple(found),
        unheld=tuple(unheld),
        reapply=due[0] if due else None,
        waiting=tuple(waiting),
        given_up=given_up,
        why_given_up=why_given_up,
    )


def _latest_undone(
    step: Step,
    index: int,
    applied: Sequence[ActionRecord],
    known: Mapping[str, Revert],
    obj: Obj,
    now: datetime,
) -> tuple[ActionRecord, Revert] | None:
    """The latest Applied action of step `index` and its revert (the one the incident
    already records, or a new one seen `now`), when `obj` no longer holds its change."""
    mine = [a for a in applied if a.step_index == index and a.type is step.type]
    if not mine:
        return None
    latest = max(mine, key=lambda a: (a.time, reapply_number(a.id)))
    undone = step_undone(step, latest, obj)
    if undone is None:
        return None
    revert = known.get(latest.id) or Revert(
        action=latest.id,
        object=latest.target,
        field=undone.field,
        value=undone.value,
        manager=field_manager(obj, undone.path),
        time=now,
    )
    return latest, revert


def with_reverts(incident: Incident, found: Sequence[Revert]) -> Incident:
    if not found:
        return incident
    kept = [*incident.reverted, *found][-MAX_REVERTS_KEPT:]
    return incident.model_copy(update={"reverts": incident.reverts + len(found), "reverted": kept})


def for_planning(
    actions: Sequence[ActionRecord], given_up: Mapping[int, Revert]
) -> list[ActionRecord]:
    """The actions as the planner must see them: a step undone past the re-apply limit
    changed nothing that lasts, so it counts as failed (taken, and not waited on)."""
    return [
        a.model_copy(update={"result": ActionResult.FAILED})
        if a.step_index in given_up and a.result is ActionResult.APPLIED
        else a
        for a in actions
    ]


def describe(revert: Revert) -> str:
    return f"{revert.object} {revert.field} is {revert.value!r} again, written by {revert.manager}"


def reverted_message(check: RevertCheck, limit: int) -> str:
    """Why the guard is not contained, naming who undid what."""
    parts = []
    for revert in check.unheld:
        why = describe(revert)
        if any(r is revert for r in check.given_up.values()):
            why += f" (re-applied {limit} times, the limit)"
        parts.append(why)
    return "; ".join(parts)


def exhausted_note(check: RevertCheck, steps: Sequence[Step]) -> str:
    """What to add to an Exhausted message: each step given up, its reverting manager and
    why it is not re-applied."""
    return "; ".join(
        f"{steps[i].type.value}[{i}] was undone by {r.manager}"
        f" ({r.object} {r.field}={r.value}), {check.why_given_up.get(i, 'given up')}"
        for i, r in sorted(check.given_up.items())
    )


# ---------------------------------------------------------------- known-bad releases


def note_rollback(
    known_bad: Sequence[KnownBad], record: ActionRecord, incident: int
) -> list[KnownBad]:
    """Remember the template an Applied Rollback replaced: newest first, at most 10."""
    if record.type is not StepType.ROLLBACK or record.result is not ActionResult.APPLIED:
        return list(known_bad)
    bad_hash = str(record.before.get("podTemplateHash") or "")
    if not bad_hash:
        return list(known_bad)
    old = next((k for k in known_bad if k.hash == bad_hash), None)
    images = [str(i) for i in record.before.get("images") or []]
    entry = (
        old.model_copy(update={"rollbacks": old.rollbacks + 1})
        if old is not None
        else KnownBad(hash=bad_hash, images=images, incident=incident, rollbacks=1)
    )
    rest = [k for k in known_bad if k.hash != bad_hash]
    return [entry, *rest][:MAX_KNOWN_BAD]


def is_known_bad(known_bad: Sequence[KnownBad], pod_template_hash: str) -> bool:
    return bool(pod_template_hash) and any(k.hash == pod_template_hash for k in known_bad)


def rollback_limit_reached(
    known_bad: Sequence[KnownBad], pod_template_hash: str, reapply_limit: int
) -> str:
    """Why the target's template must not be rolled back again, or ""."""
    entry = next((k for k in known_bad if k.hash == pod_template_hash), None)
    if entry is None or entry.rollbacks < reapply_limit + 1:
        return ""
    return (
        f"known-bad template {entry.hash} was rolled back {entry.rollbacks} times already "
        f"(the limit is onRevert.reapply + 1 = {reapply_limit + 1})"
    )


def rollbacks_blocked(
    steps: Sequence[Step], known_bad: Sequence[KnownBad], pod_template_hash: str, reapply_limit: int
) -> dict[int, str]:
    """Rollback steps that must not be re-applied: the target's template (known-bad, put
    back again) was rolled back reapply + 1 times already, over all incidents."""
    why = rollback_limit_reached(known_bad, pod_template_hash, reapply_limit)
    if not why:
        return {}
    return {i: why for i, step in enumerate(steps) if step.type is StepType.ROLLBACK}


def limit_rollbacks(
    readiness: Sequence[StepReadiness],
    known_bad: Sequence[KnownBad],
    pod_template_hash: str,
    reapply_limit: int,
) -> list[StepReadiness]:
    """Rollback steps are not ready once the current template hit the rollback limit."""
    why = rollback_limit_reached(known_bad, pod_template_hash, reapply_limit)
    if not why:
        return list(readiness)
    return [
        r.model_copy(update={"ready": False, "reason": why})
        if r.type is StepType.ROLLBACK and r.ready
        else r
        for r in readiness
    ]


def undone_without_managers(
    steps: Sequence[Step], status: GuardStatus, objects: Mapping[int, Obj | None]
) -> list[int]:
    """Step indexes of the open incident whose Applied step is undone in an object read
    without managedFields (the watch-fed copies drop them): the adapter reads these again,
    whole, so the revert can name its manager. Empty on every tick without a revert."""
    incident = status.incident
    if incident is None or incident.closed:
        return []
    wanted: list[int] = []
    for a in incident_actions(status.actions, incident.number):
        if a.result is not ActionResult.APPLIED:
            continue
        obj = objects.get(a.step_index)
        if obj is None or a.step_index >= len(steps) or a.step_index in wanted:
            continue
        if "managedFields" in (obj.get("metadata") or {}):
            continue
        if step_undone(steps[a.step_index], a, obj) is not None:
            wanted.append(a.step_index)
    return wanted
