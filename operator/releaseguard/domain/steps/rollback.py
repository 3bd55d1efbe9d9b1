"""Rollback: like `kubectl rollout undo` on the guard's target Deployment, to its last
known-good revision or the previous one; refused once a declared state change happened
(spec.irreversibleChanges), and never to a template that breached."""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from releaseguard.domain.apibase import ApiModel, Blocker, StepType
from releaseguard.domain.changes import (
    AT_KNOWN_GOOD,
    POD_TEMPLATE_HASH,
    REFUSED,
    Change,
    NotApplicable,
    Obj,
    current_replica_set,
    images_of,
    irreversible_reason,
    revision_of,
    template_hash,
)
from releaseguard.domain.steps.kind import Claim, Context, StepKind, Undone, text

if TYPE_CHECKING:
    from releaseguard.domain.models import KnownGood


class RollbackTarget(StrEnum):
    LAST_KNOWN_GOOD = "LastKnownGood"
    PREVIOUS = "Previous"


class RollbackStep(ApiModel):
    to_revision: RollbackTarget = RollbackTarget.LAST_KNOWN_GOOD
    """Which revision to restore. LastKnownGood (default): the newest revision that stayed
    healthy for knownGoodAfterSeconds. Previous: the revision before the current one."""


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
    new = copy.deepcopy(deployment)
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


class Rollback(StepKind[RollbackStep]):
    type = StepType.ROLLBACK
    settings_model = RollbackStep
    field = "rollback"
    default_cost = 50
    needs = None  # optional: a Rollback step without settings restores LastKnownGood
    on_target = True
    undo_refused = (
        "a Rollback put the known-good pod template back; undoing it would redeploy the "
        "release that breached. Go forward instead: deploy a fixed revision (kubectl set "
        "image / rollout, or your pipeline or GitOps tool); a new release re-arms the guard"
    )

    def object_of(self, settings: RollbackStep, target: str) -> tuple[str, str]:
        return "Deployment", target

    def change(self, settings: RollbackStep, obj: Obj, ctx: Context) -> Change | NotApplicable:
        sets = ctx.around.replica_sets
        current = current_replica_set(obj, sets)
        current_hash = template_hash(current) if current else ""
        return rollback_change(
            settings,
            obj,
            sets,
            ctx.known_good,
            irreversible_reason(obj, ctx.around.succeeded_jobs),
            avoid=ctx.breached(current_hash),
            pinned_hash=ctx.pinned_hash,
        )

    def undone(self, settings: RollbackStep, after: Mapping[str, Any], obj: Obj) -> Undone | None:
        # The images, not the pod-template-hash: right after our write the Deployment
        # still names the bad ReplicaSet as current until its controller catches up.
        want = after.get("images")
        found_images = images_of((obj.get("spec") or {}).get("template") or {})
        if not want or found_images == list(want):
            return None
        path = ("f:spec", "f:template", "f:spec", "f:containers")
        return Undone("spec.template.spec.containers[*].image", text(", ".join(found_images)), path)

    def claim(self, settings: RollbackStep, target: str) -> Claim:
        return Claim(f"Deployment/{target}", "spec.template")

    def write_back(self, before: Mapping[str, Any], obj: Obj, new: Obj) -> dict[str, Any] | str:
        return "a Rollback is not undone by writing its before back"  # see undo_refused

    def pinned(self, change: Change) -> str | None:
        return planned_target(change.after)


def planned_target(after: Mapping[str, object]) -> str | None:
    """The pod-template hash a planned Rollback restores, from its change's `after`
    (domain/rollback_target.py)."""
    value = after.get("podTemplateHash")
    return value if isinstance(value, str) and value else None
