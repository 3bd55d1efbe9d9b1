"""FeatureFlag: set a key of a ConfigMap to a value (e.g. turn the new code path off)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Annotated, Any

from releaseguard.domain.apibase import ApiModel, Blocker, StepType, data_key
from releaseguard.domain.changes import Change, NotApplicable, Obj
from releaseguard.domain.crdschema import Kube, dns1123_name
from releaseguard.domain.steps.kind import Claim, Context, StepKind, Undone, put, text


class FeatureFlagStep(ApiModel):
    config_map: Annotated[
        str, Kube(min_length=1, max_length=253, rules=[dns1123_name("a ConfigMap's")])
    ]
    """Name of the ConfigMap holding the flag, in the guard's namespace."""
    key: Annotated[str, data_key("ConfigMap")]
    """The data key of the flag in the ConfigMap (letters, digits, '-', '_', '.')."""
    value: Annotated[str, Kube(max_length=4096)]
    """The value that turns the feature off, e.g. "false". Quote it in YAML."""


def feature_flag_change(step: FeatureFlagStep, cm: Obj) -> Change | NotApplicable:
    data = cm.get("data") or {}
    old = data.get(step.key)
    if old == step.value:
        return NotApplicable(f"flag {step.key} is already {step.value!r}", Blocker.ALREADY_SET)
    new = copy.deepcopy(cm)
    new.setdefault("data", {})[step.key] = step.value
    return Change({step.key: old}, {step.key: step.value}, new, {"data": {step.key: step.value}})


class FeatureFlag(StepKind[FeatureFlagStep]):
    type = StepType.FEATURE_FLAG
    settings_model = FeatureFlagStep
    field = "feature_flag"
    default_cost = 10
    needs = "a FeatureFlag step needs featureFlag: {configMap, key, value}"

    def object_of(self, settings: FeatureFlagStep, target: str) -> tuple[str, str]:
        return "ConfigMap", settings.config_map

    def change(self, settings: FeatureFlagStep, obj: Obj, ctx: Context) -> Change | NotApplicable:
        return feature_flag_change(settings, obj)

    def undone(
        self, settings: FeatureFlagStep, after: Mapping[str, Any], obj: Obj
    ) -> Undone | None:
        found = (obj.get("data") or {}).get(settings.key)
        if found == settings.value:
            return None
        return Undone(f"data.{settings.key}", text(found), ("f:data", f"f:{settings.key}"))

    def claim(self, settings: FeatureFlagStep, target: str) -> Claim:
        return Claim(f"ConfigMap/{settings.config_map}", f"data[{settings.key}]")

    def write_back(self, before: Mapping[str, Any], obj: Obj, new: Obj) -> dict[str, Any] | str:
        data = new.setdefault("data", {})
        found = {k: (obj.get("data") or {}).get(k) for k in before}
        for key, value in before.items():
            put(data, key, value)
        return found
