"""What undoing one recorded action writes: the action's `before`, back on its object.

Pure: a function of the action record (a dict from status) and the object as read now.
The command reads the object, calls `undo_change`, and PUTs the result as read (its
resourceVersion makes a concurrent writer's change a 409, as for the operator's own
steps); it never writes over a change someone made after the action (`Drifted`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from releaseguard.domain.changes import Obj
from releaseguard.domain.identity import MARKER, parse_markers, without_marker

_RULE_KEY = re.compile(r"^rules\[(\d+)\]\.(.+)$")

REFUSALS = {
    "Rollback": (
        "a Rollback put the known-good pod template back; undoing it would redeploy the "
        "release that breached. Go forward instead: deploy a fixed revision (kubectl set "
        "image / rollout, or your pipeline or GitOps tool); a new release re-arms the guard"
    ),
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
    kind = str(action.get("type"))
    new = copy.deepcopy(obj)
    if kind == "Scale":
        spec = new.setdefault("spec", {})
        found = {"replicas": spec.get("replicas", 1)}
        _set(spec, "replicas", before.get("replicas"))
    elif kind == "FeatureFlag":
        data = new.setdefault("data", {})
        found = {k: (obj.get("data") or {}).get(k) for k in before}
        for key, value in before.items():
            _set(data, key, value)
    elif kind == "BlueGreen":
        selector = new.setdefault("spec", {}).setdefault("selector", {})
        found = {k: ((obj.get("spec") or {}).get("selector") or {}).get(k) for k in before}
        for key, value in before.items():
            _set(selector, key, value)
    elif kind == "CanaryWeight":
        rules = (new.get("spec") or {}).get("rules") or []
        found = {}
        for key, weight in before.items():
            ref = _backend(rules, key, set(before))
            if ref is None:
                return Drifted(f"{action.get('target')} has no backendRef for {key!r} any more")
            found[key] = ref.get("weight", 1)
            ref["weight"] = weight
    else:
        return Refused(f"{action.get('id')}: undo does not know step type {kind!r}")
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


def _set(target: dict[str, Any], key: str, value: object) -> None:
    if value is None:  # the field did not exist before the action
        target.pop(key, None)
    else:
        target[key] = value


def _backend(rules: list[dict[str, Any]], key: str, keys: set[str]) -> dict[str, Any] | None:
    """The backendRef a before/after key names: `rules[i].name` when the canary backend
    was in several rules (domain/changes.py), else `name` in the one rule that holds every
    unprefixed name of the action."""
    match = _RULE_KEY.match(key)
    if match:
        index, name = int(match.group(1)), match.group(2)
        candidates = [rules[index]] if index < len(rules) else []
    else:
        name = key
        plain = {k for k in keys if not _RULE_KEY.match(k)}
        candidates = [
            r for r in rules if plain <= {ref.get("name") for ref in r.get("backendRefs") or []}
        ][:1]
    for rule in candidates:
        for ref in rule.get("backendRefs") or []:
            if ref.get("name") == name:
                return ref
    return None
