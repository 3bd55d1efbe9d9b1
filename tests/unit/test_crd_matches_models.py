"""The CRD (crds/releaseguard.yaml) and the pydantic models describe the same API.

The models in releaseguard.domain.models are the source of truth for field names, types,
defaults, required fields, enums and numeric/length bounds. These tests walk both trees side by
side so that neither can drift: a field added to a model but not to the CRD would be pruned by
the API server (Kopf silently loses undeclared status fields), and a default or bound that
differs would make `kubectl apply` and the operator disagree about what a guard means.

The CRD may be *stricter* than the models (DNS-name formats, maxLength, min <= max, ...): such
rules only move an error from run time to apply time. They are exercised against a real API
server in tests/e2e/test_crd_validation.py.
"""

from __future__ import annotations

import copy
import math
import types
import typing
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import annotated_types
import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from releaseguard.domain import models
from releaseguard.domain.models import GuardSpec, GuardStatus

CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / "releaseguard.yaml"

# Status sub-objects that exist only for machinery outside the API (never compared with models).
IGNORED_STATUS_FIELDS = {"kopf"}

# Enums the CRD declares on fields the models type as plain str. Each needs a reason.
CRD_ONLY_ENUMS = {
    # metav1.Condition.status is an enum in Kubernetes; models.Condition types it as str.
    "status.conditions[].status": ["True", "False", "Unknown"],
}

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

# The full example from docs/api.md (the user-facing contract), verbatim apart from comments.
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


def _same_value(a: Any, b: Any) -> bool:
    """Equal, and bool is not mistaken for 0/1."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


class Drift:
    """Collects every difference between a model tree and a CRD schema tree, with its path."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def report(self, path: str, problem: str) -> None:
        self.problems.append(f"{path}: {problem}")

    def model(
        self, path: str, model: type[BaseModel], node: dict[str, Any], ignore: set[str]
    ) -> None:
        if node.get("type") != "object":
            self.report(
                path, f"CRD type is {node.get('type')!r}, model {model.__name__} is an object"
            )
        props: dict[str, Any] = node.get("properties", {})
        fields = {(f.alias or name): f for name, f in model.model_fields.items()}
        for name in sorted(fields.keys() - props.keys()):
            self.report(f"{path}.{name}", f"in model {model.__name__}, missing in CRD")
        for name in sorted(props.keys() - fields.keys() - ignore):
            self.report(f"{path}.{name}", f"in CRD, missing in model {model.__name__}")

        crd_required = set(node.get("required", []))
        for name in sorted(fields.keys() & props.keys()):
            field, prop, where = fields[name], props[name], f"{path}.{name}"
            if field.is_required() and name not in crd_required:
                self.report(where, "required in model, optional in CRD")
            if not field.is_required() and name in crd_required:
                self.report(where, "optional in model (it has a default), required in CRD")
            self.default(where, field, prop)
            self.value(where, field.annotation, list(field.metadata), prop)
        for name in sorted(crd_required - props.keys()):
            self.report(f"{path}.{name}", "listed in CRD required but not a property")

    def default(self, path: str, field: FieldInfo, prop: dict[str, Any]) -> None:
        has_crd_default = "default" in prop
        crd_default = prop.get("default")
        if field.is_required():
            if has_crd_default:
                self.report(path, f"required in model, but CRD has default {crd_default!r}")
            return
        default = field.get_default(call_default_factory=True)
        if default is None:
            if has_crd_default:
                self.report(path, f"no default in model, default {crd_default!r} in CRD")
            return
        if isinstance(default, BaseModel):
            # An object default: the CRD defaults it to {} and its own fields' defaults fill it.
            if default != type(default)():
                self.report(
                    path, "model default is not the all-defaults object; CRD cannot express it"
                )
            expected: Any = {}
        elif isinstance(default, (list, dict)):
            # An empty collection is the same as an absent one; the CRD may leave it out.
            if has_crd_default and not _same_value(crd_default, default):
                self.report(path, f"default {default!r} in model, {crd_default!r} in CRD")
            return
        else:
            expected = default.value if isinstance(default, Enum) else default
        if not has_crd_default:
            self.report(path, f"default {expected!r} in model, missing in CRD")
        elif not _same_value(crd_default, expected):
            self.report(path, f"default {expected!r} in model, {crd_default!r} in CRD")

    def value(
        self, path: str, annotation: Any, constraints: list[Any], node: dict[str, Any]
    ) -> None:
        tp, more = _unwrap(annotation)
        constraints = constraints + more
        crd_type = node.get("type")
        origin = typing.get_origin(tp)

        def expect_type(expected: str, fmt: str | None = None) -> None:
            if crd_type != expected:
                self.report(path, f"type {expected!r} expected for {tp!r}, CRD has {crd_type!r}")
            if node.get("format") != fmt:
                self.report(path, f"format {fmt!r} expected, CRD has {node.get('format')!r}")

        if isinstance(tp, type) and issubclass(tp, Enum):
            expect_type("string")
            model_values = [m.value for m in tp]
            if node.get("enum") != model_values:
                self.report(path, f"enum {model_values} in model, {node.get('enum')} in CRD")
        elif "enum" in node and CRD_ONLY_ENUMS.get(path) != node["enum"]:
            self.report(path, f"CRD has enum {node['enum']} but the model type is {tp!r}")

        if _is_model(tp):
            self.model(path, tp, node, set())
        elif origin is list:
            expect_type("array")
            (item,) = typing.get_args(tp)
            self.value(f"{path}[]", item, [], node.get("items", {}))
        elif origin is dict:
            expect_type("object")
            _, item = typing.get_args(tp)
            if item is Any:
                if node.get("x-kubernetes-preserve-unknown-fields") is not True:
                    self.report(
                        path, "free-form in model, needs x-kubernetes-preserve-unknown-fields"
                    )
            elif node.get("additionalProperties", {}).get("type") != "string" or item is not str:
                self.report(path, f"dict of {item!r} in model, CRD additionalProperties differ")
        elif tp is bool:
            expect_type("boolean")
        elif tp is int:
            expect_type("integer")
        elif tp is float:
            expect_type("number")
        elif tp is datetime:
            expect_type("string", "date-time")
        elif tp is str or (isinstance(tp, type) and issubclass(tp, Enum)):
            expect_type("string")
        else:
            self.report(path, f"the drift check does not know the model type {tp!r}")
        self.bounds(path, constraints, node)

    def bounds(self, path: str, constraints: list[Any], node: dict[str, Any]) -> None:
        """Every model bound is enforced by the CRD with the same value (the CRD may add more)."""
        sized = "Items" if node.get("type") == "array" else "Length"
        for c in constraints:
            if isinstance(c, annotated_types.Ge):
                want = {"minimum": c.ge, "exclusiveMinimum": None}
            elif isinstance(c, annotated_types.Gt):
                want = {"minimum": c.gt, "exclusiveMinimum": True}
            elif isinstance(c, annotated_types.Le):
                want = {"maximum": c.le, "exclusiveMaximum": None}
            elif isinstance(c, annotated_types.Lt):
                want = {"maximum": c.lt, "exclusiveMaximum": True}
            elif isinstance(c, annotated_types.MinLen):
                want = {f"min{sized}": c.min_length}
            elif isinstance(c, annotated_types.MaxLen):
                want = {f"max{sized}": c.max_length}
            else:
                self.report(path, f"the drift check does not know the model constraint {c!r}")
                continue
            for key, value in want.items():
                got = (node.get(key) or None) if value is None else node.get(key)
                if got != value:
                    self.report(
                        path, f"model constraint {c!r} needs CRD {key}={value}, CRD has {got}"
                    )


def _drift(model: type[BaseModel], node: dict[str, Any], root: str) -> list[str]:
    drift = Drift()
    drift.model(root, model, node, IGNORED_STATUS_FIELDS if root == "status" else set())
    return drift.problems


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
            models.StepReadiness(type=models.StepType.ROLLBACK, index=4, ready=False, reason="x")
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
    ] == list(PRINTER_COLUMNS), "the default columns, in order, are those of docs/api.md"
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


@pytest.mark.parametrize(("root", "model"), [("spec", GuardSpec), ("status", GuardStatus)])
def test_crd_schema_matches_the_models(
    schema: dict[str, Any], root: str, model: type[BaseModel]
) -> None:
    problems = _drift(model, schema["properties"][root], root)
    assert not problems, f"the CRD and {model.__name__} differ:\n" + "\n".join(problems)


def test_status_kopf_is_free_form(schema: dict[str, Any]) -> None:
    status = schema["properties"]["status"]
    assert "x-kubernetes-preserve-unknown-fields" not in status
    assert status["properties"]["kopf"]["x-kubernetes-preserve-unknown-fields"] is True


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (
            lambda s: s["properties"]["steps"]["items"]["properties"]["canaryWeight"]["properties"][
                "weight"
            ].pop("default"),
            "spec.steps[].canaryWeight.weight: default 0 in model, missing in CRD",
        ),
        (
            lambda s: s["properties"].pop("knownGoodAfterSeconds"),
            "spec.knownGoodAfterSeconds: in model GuardSpec, missing in CRD",
        ),
        (
            lambda s: s["properties"]["target"]["properties"].update(
                namespace={"type": "string", "description": "x"}
            ),
            "spec.target.namespace: in CRD, missing in model Target",
        ),
        (
            lambda s: s["properties"]["noData"]["enum"].append("Ignore"),
            "spec.noData: enum ['Hold', 'Breach'] in model, ['Hold', 'Breach', 'Ignore'] in CRD",
        ),
        (
            lambda s: s["required"].remove("metrics"),
            "spec.metrics: required in model, optional in CRD",
        ),
        (
            lambda s: s["properties"]["intervalSeconds"].update(minimum=0),
            "spec.intervalSeconds: model constraint Ge(ge=1) needs CRD minimum=1, CRD has 0",
        ),
        (
            lambda s: s["properties"]["metrics"]["items"]["properties"]["max"].update(
                type="integer"
            ),
            "spec.metrics[].max: type 'number' expected",
        ),
    ],
    ids=["missing-default", "missing-field", "extra-field", "enum", "required", "bound", "type"],
)
def test_drift_check_names_the_path_of_a_difference(
    schema: dict[str, Any], mutation: Any, expected: str
) -> None:
    spec = copy.deepcopy(schema["properties"]["spec"])
    assert not _drift(GuardSpec, spec, "spec")
    mutation(spec)
    problems = _drift(GuardSpec, spec, "spec")
    assert any(p.startswith(expected) for p in problems), problems


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
