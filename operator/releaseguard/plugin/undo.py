"""What undoing one recorded action writes: the action's `before`, back on its object.

Pure: a function of the action record (a dict from status) and the object as read now.
The command reads the object, calls `undo_change`, and PUTs the result as read (its
resourceVersion makes a concurrent writer's change a 409, as for the operator's own
steps); it never writes over a change someone made after the action (`Drifted`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from releaseguard.domain import steps
from releaseguard.domain.changes import Obj
from releaseguard.domain.identity import MARKER, parse_markers, without_marker

# Why an action type is never undone: the step kinds' own (domain/steps/), and the
# record-only GitOpsPause.
REFUSALS = {
    **{t.value: k.undo_refused for t, k in steps.KINDS.items() if k.undo_refused},
    "GitOpsPause": (
        "a GitOpsPause turned off automated sync of an Argo CD Application so that it would "
        "not re-apply the bad release; turning it back on is a decision for Argo CD once Git "
        "holds a fix: restore spec.syncPolicy.automated (the action's `before`) in Argo CD "
        "(argocd app set APP --sync-policy automated, or the Application manifest in Git)"
    ),
}


@dataclass(frozen=True)
class Undo:
    new_object: Obj  # the object to PUT (carries the resourceVersion it was read with)
    restored: dict[str, Any]  # what is written back (the action's before)
    replaced: dict[str, Any]  # what it replaces (the action's after, as found now)


@dataclass(frozen=True)
class Refused:
    reason: str


@dataclass(frozen=True)
class Drifted:
    """The object no longer holds what the action wrote: someone changed it since."""

    reason: str


def refusal(action: Mapping[str, Any]) -> str | None:
    """Why this action must not be undone by writing `before` back, or None."""
    kind = str(action.get("type", ""))
    if kind in REFUSALS:
        return f"{action.get('id')} is a {kind}: {REFUSALS[kind]}"
    result = action.get("result")
    if result != "Applied":
        return f"{action.get('id')} was not applied (result {result}): nothing to undo"
    if not isinstance(action.get("before"), Mapping) or not action.get("before"):
        return f"{action.get('id')} records no `before` value to write back"
    return None


def object_ref(action: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, name) from the action's target, e.g. ("Deployment", "consumer")."""
    kind, _, name = str(action.get("target", "")).partition("/")
    return kind, name


def undo_change(
    action: Mapping[str, Any], obj: Obj, force: bool = False
) -> Undo | Refused | Drifted:
    """The object with the action's `before` written back. Unless `force`, the object
    must still hold the action's `after`, so nobody's later change is overwritten."""
    if why := refusal(action):
        return Refused(why)
    before: Mapping[str, Any] = action["before"]
    after: Mapping[str, Any] = action.get("after") or {}
    kind = next((k for k in steps.KINDS.values() if k.type.value == action.get("type")), None)
    if kind is None:
        return Refused(f"{action.get('id')}: undo does not know step type {action.get('type')!r}")
    new = copy.deepcopy(obj)
    found = kind.write_back(before, obj, new)
    if isinstance(found, str):
        return Drifted(f"{action.get('target')} {found}")
    if not force and any(found.get(k) != v for k, v in after.items()):
        return Drifted(
            f"{action.get('target')} no longer holds what {action.get('id')} wrote "
            f"(now {found}, the action wrote {dict(after)}): someone changed it since, and "
            "undo would overwrite their change; pass --force to write the action's `before` anyway"
        )
    annotations = (new.get("metadata") or {}).get("annotations") or {}
    # The operator's marker says this action holds on the object; after an undo it no
    # longer does, so its entry goes. Other guards' entries on the object stay.
    entries = parse_markers(annotations.get(MARKER))
    for guard_uid, entry in entries.items():
        if entry.id == action.get("id"):
            remaining = without_marker(annotations[MARKER], guard_uid)
            if remaining is None:
                del annotations[MARKER]
            else:
                annotations[MARKER] = remaining
            break
    return Undo(new, dict(before), found)
