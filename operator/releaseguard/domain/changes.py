"""A step's change to one Kubernetes object, or why it cannot be made; and what the
changes read off Deployments and ReplicaSets.

Each step kind computes its change in its own module (domain/steps/); this module holds
the types they return and the Deployment helpers several of them use.
Pure: functions of plain object dicts (as the API server returns them). The adapter
reads the objects, asks the kinds, and writes the result with optimistic concurrency.
Keeping the "what" in the domain makes the exact patch testable without a cluster and
lets dry run record precisely what would have been applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from releaseguard.domain.apibase import Blocker

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


# A Failed action's message starts with this when the object, read fresh, had nothing to
# write (as opposed to a write the API server refused, or an object it could not read).
NO_LONGER_APPLICABLE = "no longer applicable"


@dataclass(frozen=True)
class NotApplicable:
    """Why the step cannot be used now: `reason` for people, `code` for programs."""

    reason: str
    code: Blocker | None = None


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


def irreversible_reason(deployment: Obj, succeeded_jobs: Sequence[str]) -> str | None:
    """Why rollback would not restore state: a declared state change has happened."""
    annotations = (deployment.get("metadata") or {}).get("annotations") or {}
    if annotations.get(IRREVERSIBLE) == "true":
        return f"the Deployment carries {IRREVERSIBLE}=true: state changed"
    if succeeded_jobs:
        return f"Job {', '.join(succeeded_jobs)} succeeded: state changed"
    return None
