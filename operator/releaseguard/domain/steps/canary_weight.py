"""CanaryWeight: set the weight of the canary backend in a Gateway API HTTPRoute; the
weight taken off goes to the other backends of the same rule."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from releaseguard.domain.apibase import ApiModel, Blocker, StepType
from releaseguard.domain.changes import Change, NotApplicable, Obj
from releaseguard.domain.crdschema import Kube, dns1123_name
from releaseguard.domain.steps.kind import Claim, Context, StepKind, Undone, text


class CanaryWeightStep(ApiModel):
    http_route: Annotated[
        str, Kube(min_length=1, max_length=253, rules=[dns1123_name("an HTTPRoute's")])
    ]
    """Name of the HTTPRoute, in the guard's namespace."""
    canary_backend: Annotated[
        str, Kube(min_length=1, max_length=253, rules=[dns1123_name("a Service's")])
    ]
    """The backendRef name (a Service) of the canary in the HTTPRoute's rules."""
    weight: Annotated[int, Field(ge=0), Kube(extra={"maximum": 1000000})] = 0
    """The canary's weight after the step. Default 0 (no traffic to the canary); 0-1000000."""


_RULE_KEY = re.compile(r"^rules\[(\d+)\]\.(.+)$")


def _weight(ref: Obj) -> int:
    return int(ref.get("weight", 1))  # Gateway API: an unset weight is 1


def redistribute(weights: dict[str, int], canary: str, target: int) -> dict[str, int]:
    """Set the canary's weight; the others share the rest in proportion, keeping the total.

    Largest-remainder rounding, so the result is whole numbers that add up exactly.
    """
    total = sum(weights.values())
    rest = max(total - target, 0)
    others = {name: w for name, w in weights.items() if name != canary}
    base = sum(others.values())
    if not others:
        return {canary: target}
    shares = {n: (rest * w / base if base else rest / len(others)) for n, w in others.items()}
    result = {n: int(s) for n, s in shares.items()}
    left = rest - sum(result.values())
    for name in sorted(shares, key=lambda n: (shares[n] - result[n], n), reverse=True)[:left]:
        result[name] += 1
    result[canary] = target
    return {name: result[name] for name in weights}


def canary_weight_change(step: CanaryWeightStep, route: Obj) -> Change | NotApplicable:
    new = copy.deepcopy(route)
    rules = new.get("spec", {}).get("rules") or []
    hits = [
        i
        for i, rule in enumerate(rules)
        if any(ref.get("name") == step.canary_backend for ref in rule.get("backendRefs") or [])
    ]
    if not hits:
        return NotApplicable(
            f"HTTPRoute {step.http_route} has no backendRef named {step.canary_backend}",
            Blocker.NO_BACKEND,
        )
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for i in hits:
        refs = rules[i]["backendRefs"]
        weights = {ref["name"]: _weight(ref) for ref in refs}
        if weights[step.canary_backend] == step.weight:
            continue
        moved = redistribute(weights, step.canary_backend, step.weight)
        for ref in refs:
            ref["weight"] = moved[ref["name"]]
        prefix = f"rules[{i}]." if len(hits) > 1 else ""
        before.update({f"{prefix}{n}": w for n, w in weights.items()})
        after.update({f"{prefix}{n}": w for n, w in moved.items()})
    if not after:
        return NotApplicable(
            f"backend {step.canary_backend} already has weight {step.weight}", Blocker.ALREADY_SET
        )
    return Change(before, after, new, {"spec": {"rules": new["spec"]["rules"]}})


class CanaryWeight(StepKind[CanaryWeightStep]):
    type = StepType.CANARY_WEIGHT
    settings_model = CanaryWeightStep
    field = "canary_weight"
    default_cost = 20
    needs = "a CanaryWeight step needs canaryWeight: {httpRoute, canaryBackend, weight}"

    def object_of(self, settings: CanaryWeightStep, target: str) -> tuple[str, str]:
        return "HTTPRoute", settings.http_route

    def change(self, settings: CanaryWeightStep, obj: Obj, ctx: Context) -> Change | NotApplicable:
        return canary_weight_change(settings, obj)

    def undone(
        self, settings: CanaryWeightStep, after: Mapping[str, Any], obj: Obj
    ) -> Undone | None:
        canary, want = settings.canary_backend, settings.weight
        for i, rule in enumerate((obj.get("spec") or {}).get("rules") or []):
            for ref in rule.get("backendRefs") or []:
                if ref.get("name") != canary:
                    continue
                found = _weight(ref)
                if found != want:
                    where = f"spec.rules[{i}].backendRefs[{canary}].weight"
                    return Undone(where, text(found), ("f:spec", "f:rules"))
        return None

    def claim(self, settings: CanaryWeightStep, target: str) -> Claim:
        # Moving one backend's weight moves all of them.
        return Claim(f"HTTPRoute/{settings.http_route}", "backendRefs[].weight")

    def write_back(self, before: Mapping[str, Any], obj: Obj, new: Obj) -> dict[str, Any] | str:
        rules = (new.get("spec") or {}).get("rules") or []
        found = {}
        for key, weight in before.items():
            ref = _backend(rules, key, set(before))
            if ref is None:
                return f"has no backendRef for {key!r} any more"
            found[key] = ref.get("weight", 1)
            ref["weight"] = weight
        return found


def _backend(rules: list[dict[str, Any]], key: str, keys: set[str]) -> dict[str, Any] | None:
    """The backendRef a before/after key names: `rules[i].name` when the canary backend
    was in several rules (canary_weight_change), else `name` in the one rule that holds
    every unprefixed name of the action."""
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
