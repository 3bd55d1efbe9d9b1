"""The CRD (crds/releaseguard.yaml) as the API server uses it, against the models.

The CRD is generated from the models (`make crd`, releaseguard/crd.py) and
tests/unit/test_crd_generated.py fails when the committed file is not what the generator
writes. The tests here check what the generated CRD must hold whatever the generator does:
names and printer columns, a description and a type on every field (kubectl explain, a
structural schema), bounded spec strings and lists (CEL cost), and that what the operator
writes (a full status, the wire form of defaults) conforms, so the API server prunes none
of it. Apply-time validation (OpenAPI bounds and CEL rules) is exercised against a real API
server in tests/e2e/test_crd_validation.py.
"""

from __future__ import annotations

import copy
import math
import types
import typing
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from releaseguard.domain import models
from releaseguard.domain.models import GuardSpec, GuardStatus

CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / "releaseguard.yaml"

# The only places where unknown fields are kept (everything else is pruned by the API server).
PRESERVE_UNKNOWN_FIELDS = {
    "status.kopf",
    "status.actions[].before",
    "status.actions[].after",
    "status.actions[].patch",
}

PRINTER_COLUMNS = {
    "Target": ".spec.target.deployment",
    "Phase": ".status.phase",
    "Verdict": ".status.lastEvaluation.verdict",
    "Last Action": ".status.lastAction",
    "Age": ".metadata.creationTimestamp",
}

# The full example guard of the API contract (every step type), verbatim apart from comments.
API_MD_EXAMPLE = """
target:
  deployment: checkout
prometheus:
  url: http://prometheus.monitoring.svc:9090
  timeoutSeconds: 5
  bearerTokenSecretRef: {name: prom-token, key: token}
intervalSeconds: 15
consecutiveBreaches: 2
noData: Hold
minTraffic:
  query: sum(rate(http_requests_total{app="checkout",version="v2"}[1m]))
  min: 1
metrics:
  - name: error-rate
    query: sum(rate(http_requests_total{app="checkout",version="v2",code=~"5.."}[1m])) / sum(rate(http_requests_total{app="checkout",version="v2"}[1m]))
    max: 0.05
  - name: p99-latency
    query: histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{app="checkout",version="v2"}[1m])))
    baselineQuery: histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{app="checkout",version="v1"}[1m])))
    maxRatio: 1.5
  - name: conversion
    query: sum(rate(checkout_completed_total{version="v2"}[5m])) / sum(rate(checkout_started_total{version="v2"}[5m]))
    min: 0.02
steps:
  - type: FeatureFlag
    featureFlag: {configMap: checkout-flags, key: new-checkout-flow, value: "false"}
  - type: CanaryWeight
    canaryWeight: {httpRoute: checkout, canaryBackend: checkout-v2, weight: 0}
  - type: Scale
    scale: {deployment: checkout-v2, replicas: 0}
  - type: BlueGreen
    blueGreen: {service: checkout, selectorKey: color, stableValue: blue}
  - type: Rollback
    rollback: {toRevision: LastKnownGood}
    cost: 50
escalateAfterSeconds: 60
irreversibleChanges:
  jobs: [checkout-migrate-v2]
dryRun: false
suspend: false
"""  # noqa: E501

MINIMAL_EXAMPLE = """
target: {deployment: checkout}
metrics:
  - {name: error-rate, query: "sum(rate(errors[1m]))", max: 0.05}
steps:
  - type: FeatureFlag
    featureFlag: {configMap: flags, key: new-flow, value: "false"}
  - type: CanaryWeight
    canaryWeight: {httpRoute: checkout, canaryBackend: checkout-v2}
  - type: Scale
    scale: {deployment: checkout-v2}
  - type: Rollback
"""


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    with CRD_PATH.open() as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def version(crd: dict[str, Any]) -> dict[str, Any]:
    (v1alpha1,) = crd["spec"]["versions"]
    return v1alpha1


@pytest.fixture(scope="module")
def schema(version: dict[str, Any]) -> dict[str, Any]:
    return version["schema"]["openAPIV3Schema"]


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """Strip Optional[...] and Annotated[...]: the inner type and the constraints met on the way."""
    constraints: list[Any] = []
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation, *extra = typing.get_args(annotation)
            for item in extra:
                constraints.extend(item.metadata if isinstance(item, FieldInfo) else [item])
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            assert len(members) == 1, f"unsupported union {annotation!r}"
            annotation = members[0]
        else:
            return annotation, constraints


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _walk(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node below node, with its path (items as [], map values as {})."""
    yield path, node
    for name, prop in node.get("properties", {}).items():
        yield from _walk(prop, f"{path}.{name}" if path else name)
    if "items" in node:
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


def _schema_at(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = schema
    for part in json_path.strip(".").split("."):
        node = (node or {}).get("properties", {}).get(part)
    return node


def _conform(path: str, value: Any, node: dict[str, Any], problems: list[str]) -> None:
    """A small OpenAPI checker: what the API server enforces apart from CEL rules.

    Unknown fields are reported, since the API server would prune them silently.
    """
    kinds = {
        "object": dict,
        "array": list,
        "string": str,
        "boolean": bool,
        "integer": int,
        "number": (int, float),
    }
    crd_type = node.get("type")
    if crd_type not in kinds:
        problems.append(f"{path}: no type in the CRD schema")
        return
    if not isinstance(value, kinds[crd_type]) or (
        isinstance(value, bool) and crd_type in ("integer", "number")
    ):
        problems.append(f"{path}: {value!r} is not of type {crd_type}")
        return
    if isinstance(value, float) and not math.isfinite(value):
        problems.append(f"{path}: {value!r} cannot be sent as JSON")
    if "enum" in node and value not in node["enum"]:
        problems.append(f"{path}: {value!r} not in {node['enum']}")
    if "minimum" in node and (
        value < node["minimum"] or (node.get("exclusiveMinimum") and value == node["minimum"])
    ):
        problems.append(f"{path}: {value!r} below minimum {node['minimum']}")
    if "maximum" in node and value > node["maximum"]:
        problems.append(f"{path}: {value!r} above maximum {node['maximum']}")
    if crd_type == "string":
        if not node.get("minLength", 0) <= len(value) <= node.get("maxLength", len(value)):
            problems.append(f"{path}: length {len(value)} out of bounds")
        if node.get("format") == "date-time":
            # The API server wants RFC 3339 with a zone ("Z" or "+hh:mm"); naive times fail.
            try:
                aware = datetime.fromisoformat(value).tzinfo is not None
            except ValueError:
                aware = False
            if not aware:
                problems.append(f"{path}: {value!r} is not an RFC 3339 date-time with a zone")
    if crd_type == "array":
        if not node.get("minItems", 0) <= len(value) <= node.get("maxItems", len(value)):
            problems.append(f"{path}: {len(value)} items, out of bounds")
        for i, item in enumerate(value):
            _conform(f"{path}[{i}]", item, node["items"], problems)
    if crd_type == "object":
        for name in node.get("required", []):
            if name not in value:
                problems.append(f"{path}.{name}: required")
        props = node.get("properties", {})
        extra = node.get("additionalProperties")
        for name, item in value.items():
            if name in props:
                _conform(f"{path}.{name}", item, props[name], problems)
            elif isinstance(extra, dict):
                _conform(f"{path}.{name}", item, extra, problems)
            elif not node.get("x-kubernetes-preserve-unknown-fields"):
                problems.append(f"{path}.{name}: unknown field, the API server would prune it")


def _apply_crd_defaults(value: Any, node: dict[str, Any]) -> Any:
    """Structural defaulting as the API server does it (defaults, then recurse into them)."""
    value = copy.deepcopy(value)
    if isinstance(value, dict):
        props = node.get("properties", {})
        for name, prop in props.items():
            if name not in value and "default" in prop:
                value[name] = copy.deepcopy(prop["default"])
        return {k: _apply_crd_defaults(v, props[k]) if k in props else v for k, v in value.items()}
    if isinstance(value, list) and "items" in node:
        return [_apply_crd_defaults(v, node["items"]) for v in value]
    return value


def _full_status() -> GuardStatus:
    """A status with every field the models know of set, as the operator might write it."""
    now = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
    return GuardStatus(
        observed_generation=3,
        phase=models.Phase.CONTAINED,
        message="contained by step 1",
        conditions=[
            models.Condition(
                type="Ready",
                status="True",
                reason="Watching",
                message="",
                last_transition_time=now,
                observed_generation=3,
            )
        ],
        last_evaluation=models.LastEvaluation(
            time=now,
            verdict=models.Verdict.BREACH,
            consecutive_breaches=2,
            breaching_since=now,
            traffic=12.5,
            metrics=[
                models.MetricEvaluation(
                    name="error-rate",
                    verdict=models.MetricVerdict.BREACH,
                    value=0.31,
                    baseline=0.01,
                    max=0.05,
                    min=0.0,
                    max_ratio=1.5,
                    message="0.31 > 0.05",
                )
            ],
        ),
        last_action="CanaryWeight HTTPRoute/checkout: Applied",
        readiness=[
            models.StepReadiness(
                type=models.StepType.ROLLBACK,
                index=4,
                ready=False,
                reason="x",
                code=models.Blocker.STATE_CHANGED,
            )
        ],
        release=models.ReleaseObservation(
            revision="8", images=["checkout:1.42"], pod_template_hash="7d9f8b", healthy_since=now
        ),
        last_known_good=models.KnownGood(
            revision="7", images=["checkout:1.41"], pod_template_hash="5c6d7e", since=now
        ),
        incident=models.Incident(
            number=1,
            detected_at=now,
            confirmed_at=now,
            contained_at=now,
            recovered_at=now,
            time_to_contain_seconds=4.2,
            reason="error-rate 0.31 > 0.05 for 2 evaluations",
            closed=False,
            uid="20261126T100000.000000Z",
            breached_templates=["5d8f7c9b4"],
            reverts=1,
            reverted=[
                models.Revert(
                    action="1-canaryweight-1",
                    object="HTTPRoute/checkout",
                    field="spec.rules[0].backendRefs[checkout-v2].weight",
                    value="10",
                    manager="argocd-controller",
                    time=now,
                )
            ],
        ),
        actions=[
            models.ActionRecord(
                id="1-canaryweight-1",
                incident=1,
                type=models.StepType.CANARY_WEIGHT,
                step_index=1,
                target="HTTPRoute/checkout",
                result=models.ActionResult.APPLIED,
                time=now,
                reason="error-rate 0.31 > 0.05 for 2 evaluations",
                message="",
                before={"checkout-v2": 10, "checkout-v1": 90},
                after={"checkout-v2": 0, "checkout-v1": 100},
                patch={"spec": {"rules": []}},
            )
        ],
        handled_annotations={"releaseguard.io/rearm": "1"},
        notifications=models.NotificationCounts(sent=2, failed=1, pending=1, last_error="x"),
        outbox=[
            models.OwedNotification(
                key="1/ActionApplied/1-canaryweight-1",
                moment=models.Moment.ACTION_APPLIED,
                incident=1,
                action_id="1-canaryweight-1",
                time=now,
                phase=models.Phase.CONTAINED,
                message="CanaryWeight HTTPRoute/checkout applied",
                evidence=[
                    models.Evidence(
                        name="error-rate",
                        value=0.31,
                        bound="max 0.05",
                        verdict=models.MetricVerdict.BREACH,
                    )
                ],
                sinks=[0],
            )
        ],
        known_bad=[
            models.KnownBad(hash="7f8e9d", images=["checkout:1.42"], incident=1, rollbacks=1)
        ],
    )


# ----------------------------------------------------------------------------- the CRD itself


def test_crd_names_group_version_and_scope(crd: dict[str, Any], version: dict[str, Any]) -> None:
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{models.PLURAL}.{models.GROUP}"
    spec = crd["spec"]
    assert spec["group"] == models.GROUP
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == models.KIND
    assert spec["names"]["plural"] == models.PLURAL
    assert spec["names"]["singular"] == "releaseguard"
    assert spec["names"]["shortNames"] == ["rg"]
    assert version["name"] == models.VERSION
    assert version["served"] is True
    assert version["storage"] is True
    assert version["subresources"] == {"status": {}}


def test_printer_columns_show_target_phase_verdict_last_action_and_age(
    version: dict[str, Any], schema: dict[str, Any]
) -> None:
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    for name, json_path in PRINTER_COLUMNS.items():
        assert name in columns, f"printer column {name!r} missing"
        assert columns[name]["jsonPath"] == json_path, f"printer column {name!r}"
    assert [
        c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")
    ] == list(PRINTER_COLUMNS), "default columns: Target, Phase, Verdict, Last Action, Age"
    for column in version["additionalPrinterColumns"]:
        if column["jsonPath"].startswith(".metadata."):
            continue
        node = _schema_at(schema, column["jsonPath"])
        assert node is not None, (
            f"printer column {column['name']!r}: {column['jsonPath']} not declared"
        )
        assert node["type"] == column["type"], f"printer column {column['name']!r}: type differs"


def test_every_schema_field_has_a_description(schema: dict[str, Any]) -> None:
    missing = [
        path or "<root>"
        for path, node in _walk(schema, "")
        if path != "metadata" and not str(node.get("description", "")).strip()
    ]
    assert not missing, "schema fields without a description (kubectl explain shows nothing):\n" + (
        "\n".join(missing)
    )


def test_every_schema_field_has_a_type(schema: dict[str, Any]) -> None:
    untyped = [path for path, node in _walk(schema, "") if "type" not in node]
    assert not untyped, f"a structural schema needs a type everywhere: {untyped}"


def test_unknown_fields_are_kept_only_where_free_form(schema: dict[str, Any]) -> None:
    preserving = {
        path for path, node in _walk(schema, "") if node.get("x-kubernetes-preserve-unknown-fields")
    }
    assert preserving == PRESERVE_UNKNOWN_FIELDS


def test_spec_strings_and_lists_are_bounded_so_cel_cost_is_estimable(
    schema: dict[str, Any],
) -> None:
    unbounded = [
        f"{path} ({'maxLength' if node['type'] == 'string' else 'maxItems'})"
        for path, node in _walk(schema["properties"]["spec"], "spec")
        if (node.get("type") == "string" and "maxLength" not in node and "enum" not in node)
        or (node.get("type") == "array" and "maxItems" not in node)
    ]
    assert not unbounded, f"unbounded spec fields: {unbounded}"


def test_every_cel_rule_has_a_message(schema: dict[str, Any]) -> None:
    for path, node in _walk(schema, ""):
        for rule in node.get("x-kubernetes-validations", []):
            assert rule.get("rule"), f"{path}: empty CEL rule"
            assert str(rule.get("message", "")).strip(), f"{path}: CEL rule {rule['rule']!r}"


def test_status_keeps_at_most_max_actions(schema: dict[str, Any]) -> None:
    actions = schema["properties"]["status"]["properties"]["actions"]
    assert actions["maxItems"] == models.MAX_ACTIONS


def test_conditions_are_a_map_keyed_by_type(schema: dict[str, Any]) -> None:
    conditions = schema["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert "type" in conditions["items"]["required"]


# ----------------------------------------------------------------------------- CRD vs models


def test_status_kopf_is_free_form(schema: dict[str, Any]) -> None:
    status = schema["properties"]["status"]
    assert "x-kubernetes-preserve-unknown-fields" not in status
    assert status["properties"]["kopf"]["x-kubernetes-preserve-unknown-fields"] is True


# ----------------------------------------------------------------------------- examples


@pytest.mark.parametrize("example", [API_MD_EXAMPLE, MINIMAL_EXAMPLE], ids=["api-md", "minimal"])
def test_example_guard_is_valid_for_the_model_and_the_crd_schema(
    schema: dict[str, Any], example: str
) -> None:
    raw = yaml.safe_load(example)
    spec = GuardSpec.model_validate(raw)
    assert spec.target.deployment == "checkout"
    problems: list[str] = []
    _conform("spec", raw, schema["properties"]["spec"], problems)
    assert not problems, "\n".join(problems)


def test_api_md_example_parses_to_the_documented_values() -> None:
    spec = GuardSpec.model_validate(yaml.safe_load(API_MD_EXAMPLE))
    assert [m.name for m in spec.metrics] == ["error-rate", "p99-latency", "conversion"]
    assert spec.metrics[1].max_ratio == 1.5
    assert [s.type for s in spec.steps] == list(models.SPEC_STEP_TYPES)
    assert [s.effective_cost for s in spec.steps] == [10, 20, 30, 40, 50]
    assert spec.prometheus.bearer_token_secret_ref == models.SecretKeyRef(
        name="prom-token", key="token"
    )
    assert spec.irreversible_changes.jobs == ["checkout-migrate-v2"]


def test_crd_defaults_give_the_same_guard_as_model_defaults(schema: dict[str, Any]) -> None:
    raw = yaml.safe_load(MINIMAL_EXAMPLE)
    defaulted = _apply_crd_defaults(raw, schema["properties"]["spec"])
    assert defaulted["intervalSeconds"] == 15
    assert defaulted["prometheus"] == {"timeoutSeconds": 5}
    assert defaulted["steps"][1]["canaryWeight"]["weight"] == 0
    assert GuardSpec.model_validate(defaulted) == GuardSpec.model_validate(raw)


def test_the_wire_form_of_the_model_defaults_conforms_to_the_crd(schema: dict[str, Any]) -> None:
    wire = GuardSpec.model_validate(yaml.safe_load(MINIMAL_EXAMPLE)).wire()
    problems: list[str] = []
    _conform("spec", wire, schema["properties"]["spec"], problems)
    assert not problems, "\n".join(problems)


def test_a_full_status_written_by_the_operator_is_kept_whole_by_the_crd(
    schema: dict[str, Any],
) -> None:
    """Every status field the operator can write is declared, so none is pruned."""
    wire = _full_status().wire()
    problems: list[str] = []
    _conform("status", wire, schema["properties"]["status"], problems)
    assert not problems, "\n".join(problems)
    assert GuardStatus.model_validate(wire) == _full_status()


def _model_paths(model: type[BaseModel], path: str) -> Iterator[str]:
    for name, field in model.model_fields.items():
        where = f"{path}.{field.alias or name}"
        yield where
        tp, _ = _unwrap(field.annotation)
        if typing.get_origin(tp) is list:
            tp, where = typing.get_args(tp)[0], f"{where}[]"
        if _is_model(tp):
            yield from _model_paths(tp, where)


def _value_paths(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, dict):
        for name, item in value.items():
            yield f"{path}.{name}"
            yield from _value_paths(item, f"{path}.{name}")
    elif isinstance(value, list):
        for item in value:
            yield from _value_paths(item, f"{path}[]")


def test_the_full_status_example_sets_every_status_field() -> None:
    """Keeps the conformance test above meaningful when the models grow."""
    unset = set(_model_paths(GuardStatus, "status")) - set(
        _value_paths(_full_status().wire(), "status")
    )
    assert not unset, f"extend _full_status() with: {sorted(unset)}"


def test_an_empty_status_written_by_the_operator_conforms_to_the_crd(
    schema: dict[str, Any],
) -> None:
    problems: list[str] = []
    _conform("status", GuardStatus().wire(), schema["properties"]["status"], problems)
    assert not problems, "\n".join(problems)
