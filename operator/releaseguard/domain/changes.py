"""What each containment step would change in one Kubernetes object, or why it cannot.

Pure: functions of plain object dicts (as the API server returns them) and the step.
The kube adapter reads the objects, calls these, and writes the result with optimistic
concurrency. Keeping the "what" here makes the exact patch testable without a cluster
and lets dry run record precisely what would have been applied.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from releaseguard.domain.models import (
    Blocker,
    BlueGreenStep,
    CanaryWeightStep,
    FeatureFlagStep,
    KnownGood,
    RollbackStep,
    RollbackTarget,
    ScaleStep,
)

Obj = dict[str, Any]
REVISION = "deployment.kubernetes.io/revision"
POD_TEMPLATE_HASH = "pod-template-hash"
IRREVERSIBLE = "releaseguard.io/irreversible"
# The words of two reasons; programs read NotApplicable.code (Blocker) instead.
AT_KNOWN_GOOD = "already runs the known-good revision"
REFUSED = "rollback refused"


@dataclass(frozen=True)
class Change:
    """The object's new content, with a before/after summary for the action record."""

    before: dict[str, Any]
    after: dict[str, Any]
    new_object: Obj  # the whole object to PUT (carries resourceVersion)
    patch: dict[str, Any]  # the part that changes, for records and dry run


@dataclass(frozen=True)
class NotApplicable:
    """Why the step cannot be used now: `reason` for people, `code` for programs."""

    reason: str
    code: Blocker | None = None


def _with(obj: Obj) -> Obj:
    return copy.deepcopy(obj)


def feature_flag_change(step: FeatureFlagStep, cm: Obj) -> Change | NotApplicable:
    data = cm.get("data") or {}
    old = data.get(step.key)
    if old == step.value:
        return NotApplicable(f"flag {step.key} is already {step.value!r}", Blocker.ALREADY_SET)
    new = _with(cm)
    new.setdefault("data", {})[step.key] = step.value
    return Change({step.key: old}, {step.key: step.value}, new, {"data": {step.key: step.value}})


def scale_change(step: ScaleStep, deployment: Obj) -> Change | NotApplicable:
    old = (deployment.get("spec") or {}).get("replicas", 1)
    if old == step.replicas:
        return NotApplicable(
            f"Deployment {step.deployment} already has {old} replicas", Blocker.ALREADY_SET
        )
    new = _with(deployment)
    new["spec"]["replicas"] = step.replicas
    return Change(
        {"replicas": old}, {"replicas": step.replicas}, new, {"spec": {"replicas": step.replicas}}
    )


def blue_green_change(
    step: BlueGreenStep, service: Obj, stable_ready_pods: int
) -> Change | NotApplicable:
    selector = (service.get("spec") or {}).get("selector") or {}
    old = selector.get(step.selector_key)
    if old == step.stable_value:
        return NotApplicable(
            f"Service {step.service} already selects {step.selector_key}={step.stable_value}",
            Blocker.ALREADY_SET,
        )
    if stable_ready_pods == 0:
        return NotApplicable(
            f"the stable colour {step.selector_key}={step.stable_value} has no Ready pods",
            Blocker.NO_READY_PODS,
        )
    new = _with(service)
    new["spec"].setdefault("selector", {})[step.selector_key] = step.stable_value
    return Change(
        {step.selector_key: old},
        {step.selector_key: step.stable_value},
        new,
        {"spec": {"selector": {step.selector_key: step.stable_value}}},
    )


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
    new = _with(route)
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


def revision_of(obj: Obj) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def template_hash(rs: Obj) -> str:
    return str(((rs.get("metadata") or {}).get("labels") or {}).get(POD_TEMPLATE_HASH, ""))


def images_of(template: Obj) -> list[str]:
    return [c.get("image", "") for c in (template.get("spec") or {}).get("containers") or []]


def current_replica_set(deployment: Obj, replica_sets: Sequence[Obj]) -> Obj | None:
    """The ReplicaSet of the Deployment's current revision (the controller keeps them equal)."""
    revision = revision_of(deployment)
    return next((rs for rs in replica_sets if revision_of(rs) == revision), None)


def rollback_change(
    step: RollbackStep,
    deployment: Obj,
    replica_sets: Sequence[Obj],
    known_good: KnownGood | None,
    irreversible: str | None,
    avoid: Collection[str] = (),
    pinned_hash: str | None = None,
) -> Change | NotApplicable:
    """`kubectl rollout undo`: put the target ReplicaSet's pod template back on the
    Deployment (without pod-template-hash), so the controller reuses that ReplicaSet.

    `avoid`: pod-template hashes that breached; never a target (domain/rollback_target.py).
    `pinned_hash`: the target chosen when the step was planned; the write (and each 409
    redo) restores exactly it instead of recomputing "Previous" from a fresh read."""
    if irreversible:
        return NotApplicable(f"{REFUSED}: {irreversible}", Blocker.STATE_CHANGED)
    current = current_replica_set(deployment, replica_sets)
    current_hash = template_hash(current) if current else ""
    if pinned_hash is not None:
        target = _pinned(deployment, replica_sets, avoid, current_hash, pinned_hash)
    elif step.to_revision is RollbackTarget.LAST_KNOWN_GOOD:
        target = _known_good(deployment, replica_sets, avoid, current_hash, known_good)
    else:
        target = _previous(deployment, replica_sets, avoid)
    if isinstance(target, NotApplicable):
        return target
    template = copy.deepcopy(target["spec"]["template"])
    labels = template.get("metadata", {}).get("labels") or {}
    labels.pop(POD_TEMPLATE_HASH, None)
    new = _with(deployment)
    new["spec"]["template"] = template
    before = {
        "revision": str(revision_of(deployment)),
        "images": images_of(deployment["spec"]["template"]),
        "podTemplateHash": current_hash,
    }
    after = {
        "revision": str(revision_of(target)),
        "images": images_of(template),
        "podTemplateHash": template_hash(target),
    }
    return Change(before, after, new, {"spec": {"template": template}})


def _pinned(
    deployment: Obj,
    replica_sets: Sequence[Obj],
    avoid: Collection[str],
    current_hash: str,
    pinned_hash: str,
) -> Obj | NotApplicable:
    """The ReplicaSet of the template planned for this Rollback."""
    name = deployment["metadata"]["name"]
    if pinned_hash in avoid:
        return NotApplicable(
            f"the planned template {pinned_hash} is one that breached", Blocker.BREACHED
        )
    if pinned_hash == current_hash:
        return NotApplicable(
            f"{name} already runs the planned template {pinned_hash}", Blocker.AT_PLANNED
        )
    target = next((rs for rs in replica_sets if template_hash(rs) == pinned_hash), None)
    if target is None:
        return NotApplicable(
            f"the ReplicaSet of the planned template {pinned_hash} is gone",
            Blocker.REVISION_GONE,
        )
    return target


def _known_good(
    deployment: Obj,
    replica_sets: Sequence[Obj],
    avoid: Collection[str],
    current_hash: str,
    known_good: KnownGood | None,
) -> Obj | NotApplicable:
    """The ReplicaSet of the last known-good revision."""
    name = deployment["metadata"]["name"]
    if known_good is None:
        return NotApplicable("no known-good revision recorded yet", Blocker.NO_KNOWN_GOOD)
    if known_good.pod_template_hash == current_hash:
        return NotApplicable(f"{name} {AT_KNOWN_GOOD} {known_good.revision}", Blocker.AT_KNOWN_GOOD)
    target = next(
        (rs for rs in replica_sets if template_hash(rs) == known_good.pod_template_hash), None
    )
    if target is None:
        return NotApplicable(
            f"the ReplicaSet of known-good revision {known_good.revision} is gone "
            "(check the Deployment's revisionHistoryLimit)",
            Blocker.REVISION_GONE,
        )
    if known_good.pod_template_hash in avoid:
        return NotApplicable(
            f"known-good revision {known_good.revision} is a template that breached",
            Blocker.BREACHED,
        )
    return target


def _previous(
    deployment: Obj, replica_sets: Sequence[Obj], avoid: Collection[str]
) -> Obj | NotApplicable:
    """The ReplicaSet of the newest earlier revision that did not breach."""
    name = deployment["metadata"]["name"]
    older = [rs for rs in replica_sets if 0 < revision_of(rs) < revision_of(deployment)]
    if not older:
        return NotApplicable(
            f"{name} has no previous revision (revisionHistoryLimit may be 0)",
            Blocker.NO_PREVIOUS,
        )
    older = [rs for rs in older if template_hash(rs) not in avoid]
    if not older:
        return NotApplicable(
            f"{name} has no previous revision that did not breach", Blocker.NO_PREVIOUS
        )
    return max(older, key=revision_of)


def irreversible_reason(deployment: Obj, succeeded_jobs: Sequence[str]) -> str | None:
    """Why rollback would not restore state: a declared state change has happened."""
    annotations = (deployment.get("metadata") or {}).get("annotations") or {}
    if annotations.get(IRREVERSIBLE) == "true":
        return f"the Deployment carries {IRREVERSIBLE}=true: state changed"
    if succeeded_jobs:
        return f"Job {', '.join(succeeded_jobs)} succeeded: state changed"
    return None
