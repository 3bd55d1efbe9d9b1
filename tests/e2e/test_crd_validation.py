"""The CRD rejects malformed guards at apply time, with messages a service team understands.

Every case is one mutation of a valid guard (the API contract's full example), sent to a real API
server with `kubectl apply --dry-run=server`, which runs the full OpenAPI and CEL validation
without creating anything. The case's expected substrings must all appear in kubectl's error.

The same table is also run through the pydantic models (no cluster needed), so the CRD and the
operator agree on what is invalid; bounds that only the CRD checks are marked "crd-only".
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from releaseguard.domain.models import GROUP, KIND, PLURAL, VERSION, GuardSpec, GuardStatus

CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / "releaseguard.yaml"
CRD_NAME = f"{PLURAL}.{GROUP}"

# The API contract's full example: valid, and it uses every step type.
BASE_SPEC = """
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
    query: sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))
    max: 0.05
  - name: p99-latency
    query: histogram_quantile(0.99, sum by (le) (rate(latency_bucket{version="v2"}[1m])))
    baselineQuery: histogram_quantile(0.99, sum by (le) (rate(latency_bucket{version="v1"}[1m])))
    maxRatio: 1.5
  - name: conversion
    query: sum(rate(checkout_completed_total[5m])) / sum(rate(checkout_started_total[5m]))
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
"""

# Only what is required: the API server fills in the rest.
MINIMAL_SPEC = """
target: {deployment: checkout}
metrics:
  - {name: error-rate, query: "sum(rate(errors[1m]))", max: 0.05}
steps:
  - {type: CanaryWeight, canaryWeight: {httpRoute: checkout, canaryBackend: checkout-v2}}
  - {type: Scale, scale: {deployment: checkout-v2}}
  - {type: Rollback, rollback: {}}
"""

# A status with every field set, in wire form, as the operator writes it.
FULL_STATUS = """
observedGeneration: 1
phase: Contained
message: contained by step 1
conditions:
  - {type: Ready, status: "True", reason: Contained, message: "", lastTransitionTime: "2026-11-26T10:00:00Z", observedGeneration: 1}
  - {type: RollbackReady, status: "False", reason: StateChanged, message: "Job checkout-migrate-v2 succeeded", lastTransitionTime: "2026-11-26T10:00:00Z"}
lastEvaluation:
  time: "2026-11-26T10:00:05Z"
  verdict: Breach
  consecutiveBreaches: 2
  breachingSince: "2026-11-26T10:00:00Z"
  traffic: 12.5
  metrics:
    - {name: error-rate, verdict: Breach, value: 0.31, max: 0.05, message: "0.31 > 0.05"}
    - {name: p99-latency, verdict: Pass, value: 0.2, baseline: 0.18, maxRatio: 1.5, message: ""}
    - {name: conversion, verdict: NoData, min: 0.02, message: empty result}
lastAction: CanaryWeight HTTPRoute/checkout Applied
readiness:
  - {type: Rollback, index: 4, ready: false, reason: "Job checkout-migrate-v2 succeeded: state changed"}
release: {revision: "8", images: ["checkout:1.42"], podTemplateHash: 7d9f8b, healthySince: "2026-11-26T09:00:00Z"}
lastKnownGood: {revision: "7", images: ["checkout:1.41"], podTemplateHash: 5c6d7e, since: "2026-11-25T08:00:00Z"}
incident:
  number: 1
  detectedAt: "2026-11-26T10:00:00Z"
  confirmedAt: "2026-11-26T10:00:05Z"
  containedAt: "2026-11-26T10:00:06Z"
  recoveredAt: "2026-11-26T10:01:00Z"
  timeToContainSeconds: 4.2
  reason: error-rate 0.31 > 0.05 for 2 evaluations
  closed: false
  uid: 20261126T100000.000000Z
  breachedTemplates: [7f8e9d]
  reverts: 1
  reverted:
    - {action: 1-canaryweight-1, object: HTTPRoute/checkout, field: "spec.rules[0].backendRefs[checkout-v2].weight", value: "10", manager: argocd-controller, time: "2026-11-26T10:00:30Z"}
knownBad:
  - {hash: 7f8e9d, images: ["checkout:1.42"], incident: 1, rollbacks: 1}
actions:
  - id: 1-canaryweight-1
    type: CanaryWeight
    stepIndex: 1
    target: HTTPRoute/checkout
    result: Applied
    time: "2026-11-26T10:00:06Z"
    reason: error-rate 0.31 > 0.05 for 2 evaluations
    message: ""
    before: {checkout-v2: 10, checkout-v1: 90}
    after: {checkout-v2: 0, checkout-v1: 100}
    patch: {spec: {rules: [{backendRefs: [{name: checkout-v2, weight: 0}]}]}}
handledAnnotations: {releaseguard.io/contain-now: "1"}
"""  # noqa: E501


# ----------------------------------------------------------------------------- the table

Spec = dict[str, Any]
Mutation = Callable[[Spec], None]


def _walk_to(spec: Spec, path: str) -> tuple[Any, str | int]:
    """The container of the last element of a dotted path ("metrics.0.max") and its key."""
    *parents, last = (int(p) if p.isdigit() else p for p in path.split("."))
    node: Any = spec
    for part in parents:
        node = node[part]
    return node, last


def put(path: str, value: Any) -> Mutation:
    def mutate(spec: Spec) -> None:
        node, key = _walk_to(spec, path)
        node[key] = copy.deepcopy(value)

    return mutate


def drop(path: str) -> Mutation:
    def mutate(spec: Spec) -> None:
        node, key = _walk_to(spec, path)
        del node[key]

    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(spec: Spec) -> None:
        for m in mutations:
            m(spec)

    return mutate


def _metrics(n: int) -> list[dict[str, Any]]:
    return [{"name": f"m{i}", "query": f"up{{i='{i}'}}", "max": 1} for i in range(n)]


@dataclass(frozen=True)
class Case:
    id: str
    mutate: Mutation
    # Every one of these must appear in kubectl's error output (path first, then the message).
    expect: tuple[str, ...]
    # "rejects": the models reject it too. "crd-only": a bound only the CRD checks (it moves a
    # run-time failure to apply time). "model-gap": the models should reject it but do not yet.
    model: str = "rejects"


CASES: list[Case] = [
    # target
    Case("missing-target", drop("target"), ("spec.target", "Required value")),
    Case(
        "missing-target-deployment",
        put("target", {}),
        ("spec.target.deployment", "Required value"),
    ),
    Case(
        "target-deployment-not-dns-name",
        put("target.deployment", "Checkout_V2"),
        ("spec.target.deployment", "must be a DNS-1123 name like a Deployment's"),
        model="crd-only",
    ),
    Case(
        "target-deployment-empty",
        put("target.deployment", ""),
        ("spec.target.deployment", "should be at least 1 chars long"),
        model="crd-only",
    ),
    # prometheus
    Case(
        "prometheus-timeout-zero",
        put("prometheus.timeoutSeconds", 0),
        ("spec.prometheus.timeoutSeconds", "should be greater than or equal to 1"),
    ),
    Case(
        "prometheus-timeout-above-60",
        put("prometheus.timeoutSeconds", 61),
        ("spec.prometheus.timeoutSeconds", "should be less than or equal to 60"),
    ),
    Case(
        "prometheus-url-not-http",
        put("prometheus.url", "ftp://prometheus.monitoring.svc:9090"),
        ("spec.prometheus.url", "must be an absolute http or https URL"),
        model="crd-only",
    ),
    Case(
        "prometheus-url-without-scheme",
        put("prometheus.url", "prometheus.monitoring.svc:9090"),
        ("spec.prometheus.url", "must be an absolute http or https URL"),
        model="crd-only",
    ),
    Case(
        "bearer-token-ref-without-key",
        drop("prometheus.bearerTokenSecretRef.key"),
        ("spec.prometheus.bearerTokenSecretRef.key", "Required value"),
    ),
    # evaluation settings
    Case(
        "interval-zero",
        put("intervalSeconds", 0),
        ("spec.intervalSeconds", "should be greater than or equal to 1"),
    ),
    Case(
        "interval-not-a-number",
        put("intervalSeconds", "15s"),
        ("spec.intervalSeconds", "must be of type integer"),
    ),
    Case(
        "confirm-interval-zero",
        put("confirmIntervalSeconds", 0),
        ("spec.confirmIntervalSeconds", "should be greater than or equal to 1"),
    ),
    Case(
        "confirm-interval-not-a-number",
        put("confirmIntervalSeconds", "2s"),
        ("spec.confirmIntervalSeconds", "must be of type integer"),
    ),
    Case(
        "consecutive-breaches-zero",
        put("consecutiveBreaches", 0),
        ("spec.consecutiveBreaches", "should be greater than or equal to 1"),
    ),
    Case(
        "unknown-no-data-policy",
        put("noData", "Ignore"),
        ("spec.noData", 'Unsupported value: "Ignore"', '"Hold", "Breach"'),
    ),
    Case(
        "escalate-after-negative",
        put("escalateAfterSeconds", -1),
        ("spec.escalateAfterSeconds", "should be greater than or equal to 0"),
    ),
    Case(
        "known-good-after-negative",
        put("knownGoodAfterSeconds", -5),
        ("spec.knownGoodAfterSeconds", "should be greater than or equal to 0"),
    ),
    Case(
        "min-traffic-without-query",
        drop("minTraffic.query"),
        ("spec.minTraffic.query", "Required value"),
    ),
    # metrics
    Case("missing-metrics", drop("metrics"), ("spec.metrics", "Required value")),
    Case(
        "empty-metrics",
        put("metrics", []),
        ("spec.metrics", "should have at least 1 items"),
    ),
    Case(
        "more-than-20-metrics",
        put("metrics", _metrics(21)),
        ("spec.metrics", "must have at most 20 items"),
    ),
    Case(
        "duplicate-metric-names",
        put("metrics.1.name", "error-rate"),
        ("spec.metrics", "metric names must be unique"),
    ),
    Case(
        "metric-without-bound",
        drop("metrics.0.max"),
        ("spec.metrics[0]", "metric needs at least one bound: set max, min or maxRatio"),
    ),
    Case(
        "max-ratio-without-baseline-query",
        drop("metrics.1.baselineQuery"),
        ("spec.metrics[1]", "maxRatio needs baselineQuery"),
    ),
    Case(
        "max-ratio-zero",
        put("metrics.1.maxRatio", 0),
        ("spec.metrics[1].maxRatio", "should be greater than 0"),
    ),
    Case(
        "max-ratio-negative",
        put("metrics.1.maxRatio", -1.5),
        ("spec.metrics[1].maxRatio", "should be greater than 0"),
    ),
    Case(
        "min-greater-than-max",
        both(put("metrics.0.min", 0.5), put("metrics.0.max", 0.1)),
        ("spec.metrics[0]", "min must not be greater than max"),
    ),
    Case(
        "min-greater-than-max-integer-values",
        both(put("metrics.0.min", 2), put("metrics.0.max", 1)),
        ("spec.metrics[0]", "min must not be greater than max"),
    ),
    Case(
        "empty-query",
        put("metrics.0.query", ""),
        ("spec.metrics[0].query", "should be at least 1 chars long"),
    ),
    Case(
        "empty-baseline-query",
        put("metrics.1.baselineQuery", ""),
        ("spec.metrics[1].baselineQuery", "should be at least 1 chars long"),
    ),
    Case(
        "metric-without-query",
        drop("metrics.2.query"),
        ("spec.metrics[2].query", "Required value"),
    ),
    Case(
        "metric-name-with-spaces",
        put("metrics.0.name", "error rate"),
        ("spec.metrics[0].name", "metric name must be letters, digits"),
        model="crd-only",
    ),
    Case(
        "metric-name-too-long",
        put("metrics.0.name", "m" * 64),
        ("spec.metrics[0].name", "Too long"),
        model="crd-only",
    ),
    Case(
        "metric-field-typo",
        both(drop("metrics.0.max"), put("metrics.0.maximum", 0.05)),
        ('unknown field "spec.metrics[0].maximum"',),
        model="crd-only",  # the models ignore unknown fields (and then miss the bound)
    ),
    # steps
    Case(
        "unknown-step-type",
        put("steps.0.type", "Pause"),
        ("spec.steps[0].type", 'Unsupported value: "Pause"'),
    ),
    Case(
        "step-without-type",
        drop("steps.2.type"),
        ("spec.steps[2].type", "Required value"),
    ),
    Case(
        "feature-flag-step-without-settings",
        drop("steps.0.featureFlag"),
        ("spec.steps[0]", "a FeatureFlag step needs featureFlag"),
    ),
    Case(
        "canary-weight-step-without-settings",
        drop("steps.1.canaryWeight"),
        ("spec.steps[1]", "a CanaryWeight step needs canaryWeight"),
    ),
    Case(
        "scale-step-without-settings",
        drop("steps.2.scale"),
        ("spec.steps[2]", "a Scale step needs scale"),
    ),
    Case(
        "blue-green-step-without-settings",
        drop("steps.3.blueGreen"),
        ("spec.steps[3]", "a BlueGreen step needs blueGreen"),
    ),
    Case(
        "feature-flag-step-carrying-canary-weight",
        put("steps.0.canaryWeight", {"httpRoute": "checkout", "canaryBackend": "checkout-v2"}),
        ("spec.steps[0]", "canaryWeight settings are only allowed on a step of type CanaryWeight"),
    ),
    Case(
        "scale-step-carrying-rollback",
        put("steps.2.rollback", {"toRevision": "Previous"}),
        ("spec.steps[2]", "rollback settings are only allowed on a step of type Rollback"),
    ),
    Case(
        "rollback-step-carrying-scale",
        put("steps.4.scale", {"deployment": "checkout-v2"}),
        ("spec.steps[4]", "scale settings are only allowed on a step of type Scale"),
    ),
    Case(
        "step-type-changed-without-settings",
        put("steps.3.type", "FeatureFlag"),
        ("spec.steps[3]", "a FeatureFlag step needs featureFlag", "blueGreen settings are only"),
    ),
    Case(
        "negative-step-cost",
        put("steps.4.cost", -1),
        ("spec.steps[4].cost", "should be greater than or equal to 0"),
    ),
    Case(
        "negative-canary-weight",
        put("steps.1.canaryWeight.weight", -10),
        ("spec.steps[1].canaryWeight.weight", "should be greater than or equal to 0"),
    ),
    Case(
        "canary-weight-above-gateway-api-limit",
        put("steps.1.canaryWeight.weight", 1_000_001),
        ("spec.steps[1].canaryWeight.weight", "should be less than or equal to 1000000"),
        model="crd-only",
    ),
    Case(
        "negative-replicas",
        put("steps.2.scale.replicas", -1),
        ("spec.steps[2].scale.replicas", "should be greater than or equal to 0"),
    ),
    Case(
        "unknown-rollback-revision",
        put("steps.4.rollback.toRevision", "Oldest"),
        ("spec.steps[4].rollback.toRevision", 'Unsupported value: "Oldest"'),
    ),
    Case(
        "feature-flag-without-value",
        drop("steps.0.featureFlag.value"),
        ("spec.steps[0].featureFlag.value", "Required value"),
    ),
    Case(
        "feature-flag-config-map-not-dns-name",
        put("steps.0.featureFlag.configMap", "Checkout Flags"),
        ("spec.steps[0].featureFlag.configMap", "must be a DNS-1123 name like a ConfigMap's"),
        model="crd-only",
    ),
    Case(
        "canary-http-route-not-dns-name",
        put("steps.1.canaryWeight.httpRoute", "-checkout"),
        ("spec.steps[1].canaryWeight.httpRoute", "must be a DNS-1123 name like an HTTPRoute's"),
        model="crd-only",
    ),
    Case(
        "scale-deployment-not-dns-name",
        put("steps.2.scale.deployment", "checkout.v2."),
        ("spec.steps[2].scale.deployment", "must be a DNS-1123 name like a Deployment's"),
        model="crd-only",
    ),
    Case(
        "blue-green-service-not-dns-label",
        put("steps.3.blueGreen.service", "1checkout"),
        ("spec.steps[3].blueGreen.service", "must be a Service name (DNS-1035 label)"),
        model="crd-only",
    ),
    Case(
        "blue-green-selector-key-not-label-key",
        put("steps.3.blueGreen.selectorKey", "colour!"),
        ("spec.steps[3].blueGreen.selectorKey", "must be a label key"),
        model="crd-only",
    ),
    Case(
        "blue-green-stable-value-empty",
        put("steps.3.blueGreen.stableValue", ""),
        ("spec.steps[3].blueGreen.stableValue", "should be at least 1 chars long"),
        model="crd-only",
    ),
    Case(
        "more-than-20-steps",
        put("steps", [{"type": "Rollback"}] * 21),
        ("spec.steps", "must have at most 20 items"),
        model="crd-only",
    ),
    # irreversible changes
    Case(
        "job-name-not-dns-name",
        put("irreversibleChanges.jobs", ["Checkout_Migrate"]),
        ("spec.irreversibleChanges.jobs[0]", "must be a DNS-1123 name like a Job's"),
        model="crd-only",
    ),
    Case(
        "duplicate-job-names",
        put("irreversibleChanges.jobs", ["migrate", "migrate"]),
        ("spec.irreversibleChanges.jobs[1]", 'Duplicate value: "migrate"'),
        model="crd-only",
    ),
]


def _guard(spec: Spec, name: str = "checkout") -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name},
        "spec": spec,
    }


def _mutated_spec(case: Case) -> Spec:
    spec = yaml.safe_load(BASE_SPEC)
    case.mutate(spec)
    return spec


def _model_param(case: Case) -> Any:
    if case.model == "model-gap":
        reason = "models.py does not check this yet (reported); make it reject, then mark it"
        return pytest.param(case, id=case.id, marks=pytest.mark.xfail(strict=True, reason=reason))
    return pytest.param(case, id=case.id)


# ----------------------------------------------------------------------------- no cluster


def test_the_table_has_distinct_ids_and_at_least_30_cases() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 30


def test_the_base_guards_are_valid_for_the_models() -> None:
    GuardSpec.model_validate(yaml.safe_load(BASE_SPEC))
    GuardSpec.model_validate(yaml.safe_load(MINIMAL_SPEC))
    GuardStatus.model_validate(yaml.safe_load(FULL_STATUS))


@pytest.mark.parametrize("case", [_model_param(c) for c in CASES if c.model != "crd-only"])
def test_the_models_reject_what_the_crd_rejects(case: Case) -> None:
    with pytest.raises(ValidationError):
        GuardSpec.model_validate(_mutated_spec(case))


# ----------------------------------------------------------------------------- on a cluster
# (tests/e2e/conftest.py marks every test here e2e; the ones above need no cluster)


@pytest.fixture(scope="module")
def crd_installed(cluster: Any) -> Iterator[Any]:
    """The CRD from this checkout, established (idempotent; safe with parallel workers)."""
    cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=releaseguard-crd-tests",
        "-f",
        str(CRD_PATH),
    )
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{CRD_NAME}")
    yield cluster


def _apply(cluster: Any, namespace: str, guard: dict[str, Any], *extra: str) -> Any:
    return cluster.kubectl(
        "apply", "-n", namespace, *extra, "-f", "-", input=json.dumps(guard), check=False
    )


def _get(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    out = cluster.kubectl("get", f"{PLURAL}.{GROUP}", name, "-n", namespace, "-o", "json")
    return json.loads(out.stdout)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_the_api_server_rejects_a_malformed_guard(crd_installed: Any, case: Case) -> None:
    # --dry-run=server runs decoding, defaulting, OpenAPI and CEL validation and stores nothing,
    # so every case can use the default namespace.
    result = _apply(crd_installed, "default", _guard(_mutated_spec(case)), "--dry-run=server")
    assert result.returncode != 0, f"{case.id}: accepted, but should be rejected"
    for expected in case.expect:
        assert expected in result.stderr, f"{case.id}: {expected!r} not in:\n{result.stderr}"


def test_the_api_md_example_guard_is_accepted_unchanged(crd_installed: Any, namespace: str) -> None:
    spec = yaml.safe_load(BASE_SPEC)
    result = _apply(crd_installed, namespace, _guard(spec))
    assert result.returncode == 0, result.stderr
    stored = _get(crd_installed, namespace, "checkout")
    # The contract's example predates knownGoodAfterSeconds, onRevert and gitOps, the fields the
    # server has to default here
    expected = {
        **spec,
        "knownGoodAfterSeconds": 60,
        "onRevert": {"reapply": 3},
        "gitOps": {"flux": False},
    }
    assert stored["spec"] == expected, "the API server pruned or changed part of a valid spec"


def test_the_api_server_fills_in_the_documented_defaults(
    crd_installed: Any, namespace: str
) -> None:
    spec = yaml.safe_load(MINIMAL_SPEC)
    result = _apply(crd_installed, namespace, _guard(spec, "minimal"))
    assert result.returncode == 0, result.stderr
    stored = _get(crd_installed, namespace, "minimal")["spec"]
    assert stored["prometheus"] == {"timeoutSeconds": 5}
    assert stored["intervalSeconds"] == 15
    assert stored["consecutiveBreaches"] == 2
    assert "confirmIntervalSeconds" not in stored  # absent: intervalSeconds
    assert stored["noData"] == "Hold"
    assert stored["escalateAfterSeconds"] == 60
    assert stored["knownGoodAfterSeconds"] == 60
    assert stored["irreversibleChanges"] == {}
    assert stored["dryRun"] is False
    assert stored["onRevert"] == {"reapply": 3}
    assert stored["gitOps"] == {"flux": False}  # no argoCD: no reconciler is paused
    assert stored["suspend"] is False
    assert stored["steps"][0]["canaryWeight"]["weight"] == 0
    assert stored["steps"][1]["scale"]["replicas"] == 0
    assert stored["steps"][2]["rollback"]["toRevision"] == "LastKnownGood"
    # and the operator reads the stored guard exactly as it reads the one the user wrote
    assert GuardSpec.model_validate(stored) == GuardSpec.model_validate(spec)


def test_a_full_status_is_stored_without_pruning(crd_installed: Any, namespace: str) -> None:
    """Every status field the operator writes is declared, so the API server keeps it."""
    assert _apply(crd_installed, namespace, _guard(yaml.safe_load(MINIMAL_SPEC))).returncode == 0
    status = yaml.safe_load(FULL_STATUS)
    crd_installed.kubectl(
        "patch",
        f"{PLURAL}.{GROUP}",
        "checkout",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {**status, "kopf": {"progress": {"h": {"retries": 1}}}}}),
    )
    stored = _get(crd_installed, namespace, "checkout")["status"]
    assert stored.pop("kopf") == {"progress": {"h": {"retries": 1}}}
    assert stored == status
    assert GuardStatus.model_validate(stored) == GuardStatus.model_validate(status)

    columns = crd_installed.kubectl("get", "rg", "checkout", "-n", namespace).stdout
    header, row = columns.splitlines()[:2]
    assert header.split() == ["NAME", "TARGET", "PHASE", "VERDICT", "LAST", "ACTION", "AGE"]
    assert row.split()[:4] == ["checkout", "checkout", "Contained", "Breach"]


def test_kubectl_explain_describes_the_spec(crd_installed: Any) -> None:
    out = crd_installed.kubectl("explain", "releaseguard.spec.metrics").stdout
    assert "at least one of max, min and" in " ".join(out.split())
    out = crd_installed.kubectl("explain", "releaseguard.spec.steps.canaryWeight.weight").stdout
    assert "Default 0" in out
