"""The step kinds, one module each, and the registry the rest of the operator asks.

To add a step kind: write its module (a settings model and a StepKind subclass, see
kind.py), list it in KINDS below, add its StepType member and its settings field on
models.Step, and its rule in charts/releaseguard/files/admission-policy.yaml (a unit test
fails while a step type has none). README "How it is built" counts the places.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from releaseguard.domain.apibase import ApiModel, StepType
from releaseguard.domain.changes import Change, NotApplicable, Obj
from releaseguard.domain.crdschema import rule
from releaseguard.domain.steps.blue_green import BlueGreen
from releaseguard.domain.steps.canary_weight import CanaryWeight
from releaseguard.domain.steps.feature_flag import FeatureFlag
from releaseguard.domain.steps.kind import Claim, Context, StepKind, Surroundings, Undone
from releaseguard.domain.steps.rollback import Rollback
from releaseguard.domain.steps.scale import Scale

if TYPE_CHECKING:
    from releaseguard.domain.models import Step

__all__ = [
    "KINDS",
    "Claim",
    "Context",
    "StepKind",
    "Surroundings",
    "Undone",
    "cel_rules",
    "kind_of",
]

# The order is the CRD's order of the per-kind CEL rules.
KINDS: Mapping[StepType, StepKind[Any]] = {
    k.type: k for k in (FeatureFlag(), CanaryWeight(), Scale(), BlueGreen(), Rollback())
}


def kind_of(step: Step) -> StepKind[Any]:
    return KINDS[step.type]


def settings_of(step: Step) -> Any:
    """The step's settings object (e.g. its FeatureFlagStep)."""
    return getattr(step, kind_of(step).field)


def object_of(step: Step, target: str) -> tuple[str, str]:
    """The kind and name of the object the step writes; `target`: spec.target.deployment."""
    return kind_of(step).object_of(settings_of(step), target)


def change(step: Step, obj: Obj, ctx: Context) -> Change | NotApplicable:
    return kind_of(step).change(settings_of(step), obj, ctx)


def undone(step: Step, after: Mapping[str, Any], obj: Obj) -> Undone | None:
    return kind_of(step).undone(settings_of(step), after, obj)


def claim(step: Step, target: str) -> Claim:
    return kind_of(step).claim(settings_of(step), target)


def ready_pods_selector(step: Step, obj: Obj) -> dict[str, str] | None:
    return kind_of(step).ready_pods_selector(settings_of(step), obj)


def cel_rules() -> Iterator[dict[str, Any]]:
    """The CEL rules of spec.steps[] that tie each kind's type to its settings: first
    "a step of this type needs its settings" (kinds whose settings are required), then
    "these settings only on a step of this type"."""
    for k in KINDS.values():
        if k.needs is not None:
            yield rule(f"self.type != '{k.type.value}' || has(self.{k.spec_field})", k.needs)
    for k in KINDS.values():
        yield rule(
            f"!has(self.{k.spec_field}) || self.type == '{k.type.value}'",
            f"{k.spec_field} settings are only allowed on a step of type {k.type.value}",
        )


def settings_models() -> dict[StepType, type[ApiModel]]:
    return {t: k.settings_model for t, k in KINDS.items()}
