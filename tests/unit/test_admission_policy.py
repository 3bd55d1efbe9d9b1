"""The admission policy (charts/releaseguard/files/admission-policy.yaml) has a rule for
everything a guard can make the operator write or read, so a new step type or a new
Secret reference cannot skip it. What the rules decide is tested on the API server, where
the CEL runs (tests/e2e/test_security.py)."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from releaseguard.domain.models import SPEC_STEP_TYPES, GuardSpec, SecretKeyRef, StepType

CHART = Path(__file__).resolve().parents[2] / "charts" / "releaseguard"
POLICY_PATH = CHART / "files" / "admission-policy.yaml"


def policy() -> dict[str, Any]:
    return yaml.safe_load(POLICY_PATH.read_text())


def variables() -> dict[str, str]:
    return {v["name"]: v["expression"] for v in policy()["spec"]["variables"]}


def needed() -> set[str]:
    return set(re.findall(r"variables\.(\w+)", variables()["needed"]))


def spec_field(step_type: StepType) -> str:
    return step_type.value[0].lower() + step_type.value[1:]


@pytest.mark.parametrize("step_type", SPEC_STEP_TYPES)
def test_every_step_type_has_a_rule_that_the_policy_checks(step_type: StepType) -> None:
    rules = variables()
    name = spec_field(step_type)
    assert name in rules, f"files/admission-policy.yaml has no variable {name!r}"
    assert f"s.type == '{step_type.value}'" in rules[name]
    assert "'verb': 'patch'" in rules[name], "a step's objects are patched"
    assert name in needed(), f"variable {name!r} is not part of `needed`"


def test_the_argo_cd_application_a_guard_pauses_needs_patch_in_its_namespace() -> None:
    # GitOpsPause is an action type, not a step of spec.steps: its object is named by
    # spec.gitOps.argoCD, in another namespace.
    rule = variables()[spec_field(StepType.GITOPS_PAUSE)]
    assert "object.spec.gitOps.argoCD.application" in rule
    assert "'namespace': string(object.spec.gitOps.argoCD.namespace)" in rule
    assert "'verb': 'patch'" in rule and "'group': 'argoproj.io'" in rule
    assert spec_field(StepType.GITOPS_PAUSE) in needed()
    (per_item,) = [v for v in policy()["spec"]["validations"] if "$i" in v["expression"]]
    assert "variables.needed[$i].namespace" in per_item["expression"]


def secret_refs(model: type[BaseModel], path: str = "object.spec") -> list[str]:
    """Where in a guard a SecretKeyRef can be, as the CEL path to it."""
    found = []
    for field_name, field in model.model_fields.items():
        alias = field.alias or field_name
        for kind in _types(field.annotation):
            if kind is SecretKeyRef:
                found.append(f"{path}.{alias}")
            elif isinstance(kind, type) and issubclass(kind, BaseModel):
                # A list's items are bound to a CEL variable: `spec.notify[]` then `n.webhook`.
                each = "[]" if typing.get_origin(_unannotated(field.annotation)) is list else ""
                found += secret_refs(kind, f"{path}.{alias}{each}")
    return found


def _unannotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _types(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, typing.Annotated):
        return [t for arg in typing.get_args(annotation) for t in _types(arg)]
    return [annotation]


def test_every_secret_a_guard_can_reference_needs_get_on_it() -> None:
    refs = secret_refs(GuardSpec)
    assert refs, "GuardSpec references no Secret: update this test"
    rules = {name: rules for name, rules in variables().items() if name in needed()}
    for ref in refs:
        *lists, item = ref.split("[]")
        matching = [
            name
            for name, expr in rules.items()
            if f"{item}.name" in expr and all(f"{part}" in expr for part in lists)
        ]
        assert matching, f"no rule in `needed` grants reading {ref}"
        assert all("'verb': 'get'" in rules[m] for m in matching)


def test_every_validation_is_denying_and_has_a_message() -> None:
    validations = policy()["spec"]["validations"]
    assert policy()["spec"]["failurePolicy"] == "Fail"
    assert all(v.get("messageExpression") for v in validations)
    per_item = [v for v in validations if "$i" in v["expression"]]
    assert len(per_item) == 1, "one validation is repeated for each needed permission"
    assert "authorizer" in per_item[0]["expression"]
