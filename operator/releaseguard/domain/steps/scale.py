"""Scale: scale a Deployment (a canary without a mesh, or a secondary integration or
queue consumer) to a replica count."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from releaseguard.domain.apibase import ApiModel, Blocker, StepType
from releaseguard.domain.changes import Change, NotApplicable, Obj
from releaseguard.domain.crdschema import Kube, dns1123_name
from releaseguard.domain.steps.kind import Claim, Context, StepKind, Undone, put, text


class ScaleStep(ApiModel):
    deployment: Annotated[
        str, Kube(min_length=1, max_length=253, rules=[dns1123_name("a Deployment's")])
    ]
    """Name of the Deployment to scale, in the guard's namespace."""
    replicas: Annotated[int, Field(ge=0)] = 0
    """Replicas after the step. Default 0 (stop it); minimum 0."""


def scale_change(step: ScaleStep, deployment: Obj) -> Change | NotApplicable:
    old = (deployment.get("spec") or {}).get("replicas", 1)
    if old == step.replicas:
        return NotApplicable(
            f"Deployment {step.deployment} already has {old} replicas", Blocker.ALREADY_SET
        )
    new = copy.deepcopy(deployment)
    new["spec"]["replicas"] = step.replicas
    return Change(
        {"replicas": old}, {"replicas": step.replicas}, new, {"spec": {"replicas": step.replicas}}
    )


class Scale(StepKind[ScaleStep]):
    type = StepType.SCALE
    settings_model = ScaleStep
    field = "scale"
    default_cost = 30
    needs = "a Scale step needs scale: {deployment, replicas}"

    def object_of(self, settings: ScaleStep, target: str) -> tuple[str, str]:
        return "Deployment", settings.deployment

    def change(self, settings: ScaleStep, obj: Obj, ctx: Context) -> Change | NotApplicable:
        return scale_change(settings, obj)

    def undone(self, settings: ScaleStep, after: Mapping[str, Any], obj: Obj) -> Undone | None:
        found = (obj.get("spec") or {}).get("replicas", 1)
        if found == settings.replicas:
            return None
        return Undone("spec.replicas", text(found), ("f:spec", "f:replicas"))

    def claim(self, settings: ScaleStep, target: str) -> Claim:
        return Claim(f"Deployment/{settings.deployment}", "spec.replicas")

    def write_back(self, before: Mapping[str, Any], obj: Obj, new: Obj) -> dict[str, Any] | str:
        spec = new.setdefault("spec", {})
        found = {"replicas": spec.get("replicas", 1)}
        put(spec, "replicas", before.get("replicas"))
        return found
