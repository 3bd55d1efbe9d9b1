"""What every part of the API builds on: the base model, the step types, the blockers,
and the CRD bounds of names and data keys.

A leaf module (it imports no other model module), so that the step kinds
(domain/steps/) and domain/models.py, which includes their settings, can both use it.
domain/models.py re-exports all of it: import from there.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from releaseguard.domain.bounds import bounded
from releaseguard.domain.crdschema import DATA_KEY, Kube, matches


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are kept out."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="ignore",
        # A field's docstring (the string on the line after it) is its description: the
        # CRD's, for kubectl explain (releaseguard/crd.py).
        use_attribute_docstrings=True,
    )

    def wire(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase, None left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def merge_patch(self) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386) that makes the stored object equal `wire()`.

        A merge patch leaves keys it does not mention alone, so a field that became None
        (a new incident's containedAt, a reset healthySince) is sent as null, which
        removes the stored value. Lists are replaced whole, so inside them None is left
        out as in `wire()`.
        Free-text fields are cut to the CRD's maxLength (domain/bounds.py): one long
        message must not make the API server reject the whole write.
        """
        return _nulls_kept(bounded(self.model_dump(mode="json", by_alias=True)))


def _nulls_kept(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _nulls_kept(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nones_dropped(v) for v in value]
    return value


def _nones_dropped(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _nones_dropped(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_nones_dropped(v) for v in value]
    return value


def matching(pattern: str, message: str, max_length: int) -> Kube:
    """The CRD's bounds of a non-empty name that must match `pattern` (crdschema)."""
    return Kube(min_length=1, max_length=max_length, rules=[matches(pattern, message)])


def data_key(kind: str) -> Kube:
    """The CRD's bounds of a key in the data of a Secret or ConfigMap (`kind`)."""
    message = f"must be a valid {kind} key: letters, digits, '-', '_' and '.'"
    return matching(DATA_KEY, message, 253)


class StepType(StrEnum):
    FEATURE_FLAG = "FeatureFlag"
    CANARY_WEIGHT = "CanaryWeight"
    SCALE = "Scale"
    BLUE_GREEN = "BlueGreen"
    ROLLBACK = "Rollback"
    # Not a step of spec.steps: the action that pauses Argo CD's automated sync with the
    # first Applied step of an incident (spec.gitOps.argoCD, domain/gitops.py).
    GITOPS_PAUSE = "GitOpsPause"


class Blocker(StrEnum):
    """Why a step cannot be used now, for programs (status.readiness[].code); the
    readiness `reason` says the same for people."""

    ALREADY_SET = "AlreadySet"  # the object already holds what the step would write
    NO_BACKEND = "NoBackend"  # the HTTPRoute has no backendRef of the canary's name
    NO_READY_PODS = "NoReadyPods"  # Blue/green: the stable colour has no Ready pods
    STATE_CHANGED = "StateChanged"  # rollback refused: a declared state change happened
    AT_KNOWN_GOOD = "AtKnownGood"  # the target already runs the known-good revision
    AT_PLANNED = "AtPlanned"  # the target already runs the template planned for it
    NO_KNOWN_GOOD = "NoKnownGood"  # no known-good revision recorded yet
    NO_PREVIOUS = "NoPreviousRevision"  # no earlier revision (that did not breach)
    BREACHED = "Breached"  # the rollback target is a template that breached
    REVISION_GONE = "RevisionGone"  # the ReplicaSet of the rollback target is gone
    MISSING = "Missing"  # the object the step names does not exist
    YIELDED = "Yielded"  # an older guard writes the same field
    NOTHING_TO_PAUSE = "NothingToPause"  # GitOpsPause: no automated sync to pause
    UNUSABLE = "Unusable"  # GitOpsPause: the Application cannot be read or used
