"""BlueGreen: point a Service's selector back at the stable colour, once that colour has
Ready pods."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Annotated, Any

from releaseguard.domain.apibase import ApiModel, Blocker, StepType, matching
from releaseguard.domain.changes import Change, NotApplicable, Obj
from releaseguard.domain.crdschema import DNS1035_LABEL, LABEL_KEY, LABEL_VALUE
from releaseguard.domain.steps.kind import Claim, Context, StepKind, Undone, put, text


class BlueGreenStep(ApiModel):
    service: Annotated[
        str,
        matching(
            DNS1035_LABEL,
            "must be a Service name (DNS-1035 label): lowercase letters, digits and '-', "
            "starting with a letter, at most 63 characters",
            63,
        ),
    ]
    """Name of the Service whose selector picks the colour, in the guard's namespace."""
    selector_key: Annotated[
        str, matching(LABEL_KEY, "must be a label key, like color or example.com/color", 317)
    ]
    """The selector label key that picks the colour, e.g. color."""
    stable_value: Annotated[
        str,
        matching(
            LABEL_VALUE,
            "must be a label value: letters, digits, '-', '_' and '.', starting and ending "
            "with a letter or digit, at most 63 characters",
            63,
        ),
    ]
    """The selector value of the stable colour, e.g. blue."""


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
    new = copy.deepcopy(service)
    new["spec"].setdefault("selector", {})[step.selector_key] = step.stable_value
    return Change(
        {step.selector_key: old},
        {step.selector_key: step.stable_value},
        new,
        {"spec": {"selector": {step.selector_key: step.stable_value}}},
    )


def stable_selector(step: BlueGreenStep, service: Obj) -> dict[str, str]:
    """The pods the Service would select once switched to the stable colour."""
    selector = dict((service.get("spec") or {}).get("selector") or {})
    selector[step.selector_key] = step.stable_value
    return selector


class BlueGreen(StepKind[BlueGreenStep]):
    type = StepType.BLUE_GREEN
    settings_model = BlueGreenStep
    field = "blue_green"
    default_cost = 40
    needs = "a BlueGreen step needs blueGreen: {service, selectorKey, stableValue}"

    def object_of(self, settings: BlueGreenStep, target: str) -> tuple[str, str]:
        return "Service", settings.service

    def change(self, settings: BlueGreenStep, obj: Obj, ctx: Context) -> Change | NotApplicable:
        return blue_green_change(settings, obj, ctx.around.ready_pods)

    def ready_pods_selector(self, settings: BlueGreenStep, obj: Obj) -> dict[str, str] | None:
        return stable_selector(settings, obj)

    def undone(self, settings: BlueGreenStep, after: Mapping[str, Any], obj: Obj) -> Undone | None:
        key, want = settings.selector_key, settings.stable_value
        found = ((obj.get("spec") or {}).get("selector") or {}).get(key)
        if found == want:
            return None
        return Undone(f"spec.selector.{key}", text(found), ("f:spec", "f:selector", f"f:{key}"))

    def claim(self, settings: BlueGreenStep, target: str) -> Claim:
        return Claim(f"Service/{settings.service}", f"spec.selector[{settings.selector_key}]")

    def write_back(self, before: Mapping[str, Any], obj: Obj, new: Obj) -> dict[str, Any] | str:
        selector = new.setdefault("spec", {}).setdefault("selector", {})
        found = {k: ((obj.get("spec") or {}).get("selector") or {}).get(k) for k in before}
        for key, value in before.items():
            put(selector, key, value)
        return found
