"""When the guarded release counts as available: a pure function of the Deployment and
its ReplicaSets, as the adapter read them."""

from __future__ import annotations

from collections.abc import Sequence

from releaseguard.domain import changes
from releaseguard.domain.changes import Obj
from releaseguard.domain.guard import TargetFacts


def rollout_complete(deployment: Obj) -> bool:
    """The rollout is complete, as `kubectl rollout status` judges it.

    Mid-rollout the Deployment is Available on the old pods, and healthy metrics then say
    nothing about the new release: it must not start counting towards lastKnownGood
    before it serves the traffic."""
    status = deployment.get("status") or {}
    wanted = (deployment.get("spec") or {}).get("replicas", 1)
    generation = (deployment.get("metadata") or {}).get("generation", 0)
    updated = status.get("updatedReplicas", 0)
    return (
        any(
            c.get("type") == "Available" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        and status.get("observedGeneration", 0) >= generation
        and updated >= wanted
        and status.get("replicas", 0) <= updated
        and status.get("availableReplicas", 0) >= updated
    )


def target_facts(deployment: Obj, replica_sets: Sequence[Obj]) -> TargetFacts:
    """What a guard needs to know of its target this tick."""
    current = changes.current_replica_set(deployment, replica_sets)
    return TargetFacts(
        revision=str(changes.revision_of(deployment)),
        pod_template_hash=changes.template_hash(current) if current else "",
        images=tuple(changes.images_of(deployment["spec"]["template"])),
        available=rollout_complete(deployment),
    )
