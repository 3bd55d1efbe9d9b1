"""The spec and status models: defaults, validation messages, camelCase on the wire."""

import pytest
from pydantic import ValidationError

from releaseguard.domain.models import (
    SPEC_STEP_TYPES,
    ActionRecord,
    ActionResult,
    GuardSpec,
    GuardStatus,
    Incident,
    Metric,
    Phase,
    RollbackTarget,
    Step,
    StepType,
)
from unit.builders import (
    T0,
    blue_green,
    canary_weight,
    feature_flag,
    guard_spec,
    metric,
    rollback,
    scale,
)

MINIMAL = {"target": {"deployment": "checkout"}, "metrics": [metric()]}


def test_minimal_spec_gets_the_documented_defaults():
    spec = GuardSpec.model_validate(MINIMAL)

    assert spec.interval_seconds == 15
    assert spec.consecutive_breaches == 2
    assert spec.no_data == "Hold"
    assert spec.escalate_after_seconds == 60
    assert spec.prometheus.timeout_seconds == 5
    assert spec.prometheus.url is None
    assert spec.min_traffic is None
    assert spec.steps == []
    assert spec.irreversible_changes.jobs == []
    assert spec.dry_run is False
    assert spec.suspend is False


def test_the_api_md_example_spec_parses():
    wire = {
        "target": {"deployment": "checkout"},
        "prometheus": {
            "url": "http://prometheus.monitoring.svc:9090",
            "timeoutSeconds": 5,
            "bearerTokenSecretRef": {"name": "prom-token", "key": "token"},
        },
        "intervalSeconds": 15,
        "consecutiveBreaches": 2,
        "noData": "Hold",
        "minTraffic": {"query": "sum(rate(x[1m]))", "min": 1},
        "metrics": [
            metric("error-rate", max=0.05),
            metric("p99-latency", maxRatio=1.5),
            metric("conversion", min=0.02),
        ],
        "steps": [
            feature_flag(),
            canary_weight(),
            scale(),
            blue_green(),
            rollback(cost=50),
        ],
        "escalateAfterSeconds": 60,
        "irreversibleChanges": {"jobs": ["checkout-migrate-v2"]},
        "dryRun": False,
        "suspend": False,
    }

    spec = GuardSpec.model_validate(wire)

    assert [s.type for s in spec.steps] == list(SPEC_STEP_TYPES)
    assert spec.prometheus.bearer_token_secret_ref.key == "token"
    assert spec.metrics[1].baseline_query == "baseline_p99_latency"
    assert spec.irreversible_changes.jobs == ["checkout-migrate-v2"]


@pytest.mark.parametrize(
    ("wire", "cost"),
    [
        pytest.param(feature_flag(), 10, id="feature-flag"),
        pytest.param(canary_weight(), 20, id="canary-weight"),
        pytest.param(scale(), 30, id="scale"),
        pytest.param(blue_green(), 40, id="blue-green"),
        pytest.param(rollback(), 50, id="rollback"),
        pytest.param(rollback(cost=5), 5, id="override"),
        pytest.param(feature_flag(cost=0), 0, id="override-zero"),
    ],
)
def test_step_effective_cost(wire, cost):
    assert Step.model_validate(wire).effective_cost == cost


def test_rollback_step_defaults_to_last_known_good():
    s = Step.model_validate({"type": "Rollback"})

    assert s.rollback is not None
    assert s.rollback.to_revision is RollbackTarget.LAST_KNOWN_GOOD


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        pytest.param(
            {"type": "FeatureFlag"},
            "step of type FeatureFlag needs its featureFlag object",
            id="missing-feature-flag",
        ),
        pytest.param(
            {"type": "CanaryWeight"},
            "step of type CanaryWeight needs its canaryWeight object",
            id="missing-canary-weight",
        ),
        pytest.param(
            {"type": "BlueGreen"},
            "step of type BlueGreen needs its blueGreen object",
            id="missing-blue-green",
        ),
        pytest.param({"type": "Scale"}, "step of type Scale needs its scale object", id="no-scale"),
        pytest.param(
            {**scale(), "featureFlag": feature_flag()["featureFlag"]},
            "step of type Scale must not carry FeatureFlag settings",
            id="extra-sub-object",
        ),
        pytest.param({**feature_flag(), "cost": -1}, "greater than or equal to 0", id="neg-cost"),
        pytest.param({"type": "Restart"}, "Input should be", id="unknown-type"),
        pytest.param(scale(replicas=-1), "greater than or equal to 0", id="negative-replicas"),
    ],
)
def test_invalid_step_is_rejected_with_a_clear_message(wire, error):
    with pytest.raises(ValidationError, match=error):
        Step.model_validate(wire)


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        pytest.param(
            {"name": "m", "query": "q"},
            "metric 'm' needs at least one of max, min, maxRatio",
            id="no-bound",
        ),
        pytest.param(
            {"name": "m", "query": "q", "maxRatio": 1.5},
            "metric 'm': maxRatio needs baselineQuery",
            id="ratio-without-baseline",
        ),
        pytest.param(
            {"name": "m", "query": "q", "maxRatio": 0, "baselineQuery": "b"},
            "greater than 0",
            id="zero-ratio",
        ),
    ],
)
def test_invalid_metric_is_rejected_with_a_clear_message(wire, error):
    with pytest.raises(ValidationError, match=error):
        Metric.model_validate(wire)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        pytest.param({"metrics": []}, "at least 1 item", id="no-metrics"),
        pytest.param(
            {"metrics": [metric(f"m{i}") for i in range(21)]}, "at most 20 items", id="too-many"
        ),
        pytest.param(
            {"metrics": [metric("a"), metric("b"), metric("a")]},
            "metric names must be unique; repeated: a",
            id="repeated-names",
        ),
        pytest.param({"consecutiveBreaches": 0}, "greater than or equal to 1", id="zero-breaches"),
        pytest.param({"intervalSeconds": 0}, "greater than or equal to 1", id="zero-interval"),
        pytest.param({"noData": "Ignore"}, "'Hold' or 'Breach'", id="unknown-no-data"),
        pytest.param(
            {"prometheus": {"timeoutSeconds": 0}}, "greater than or equal to 1", id="zero-timeout"
        ),
        pytest.param({"target": {}}, "Field required", id="no-target-deployment"),
    ],
)
def test_invalid_spec_is_rejected(fields, error):
    with pytest.raises(ValidationError, match=error):
        guard_spec(**fields)


def test_models_are_frozen_values():
    spec = guard_spec()

    with pytest.raises(ValidationError):
        spec.dry_run = True


def test_unknown_fields_are_ignored():
    spec = GuardSpec.model_validate({**MINIMAL, "futureField": 1})

    assert "futureField" not in spec.wire()


def test_spec_round_trips_through_the_wire_in_camel_case():
    spec = guard_spec(
        minTraffic={"query": "q", "min": 1}, steps=[canary_weight(), rollback("Previous")]
    )

    wire = spec.wire()

    assert GuardSpec.model_validate(wire) == spec
    assert wire["consecutiveBreaches"] == 2
    assert wire["steps"][0]["canaryWeight"] == {
        "httpRoute": "checkout",
        "canaryBackend": "checkout-v2",
        "weight": 0,
    }
    assert wire["steps"][1]["rollback"] == {"toRevision": "Previous"}


def test_status_wire_uses_camel_case_and_leaves_out_none():
    status = GuardStatus(
        phase=Phase.CONTAINED,
        incident=Incident(number=1, detected_at=T0, contained_at=T0, time_to_contain_seconds=4.2),
        actions=[
            ActionRecord(
                id="1-featureflag-0",
                type=StepType.FEATURE_FLAG,
                step_index=0,
                target="ConfigMap/checkout-flags",
                result=ActionResult.APPLIED,
                time=T0,
                before={"new-flow": "true"},
                after={"new-flow": "false"},
            )
        ],
        handled_annotations={"releaseguard.io/rearm": "1"},
    )

    wire = status.wire()

    assert wire["phase"] == "Contained"
    assert wire["incident"] == {
        "number": 1,
        "detectedAt": "2026-11-26T10:00:00Z",
        "containedAt": "2026-11-26T10:00:00Z",
        "timeToContainSeconds": 4.2,
        "reason": "",
        "closed": False,
        "reverts": 0,
        "reverted": [],
    }
    assert wire["actions"][0]["stepIndex"] == 0
    assert "patch" not in wire["actions"][0]
    assert wire["handledAnnotations"] == {"releaseguard.io/rearm": "1"}
    assert "lastEvaluation" not in wire
    assert GuardStatus.model_validate(wire) == status


def test_empty_status_is_pending():
    assert GuardStatus.model_validate({}).phase is Phase.PENDING


def test_merge_patch_sends_null_for_a_cleared_field_so_the_stored_value_is_removed():
    status = GuardStatus(incident=Incident(number=2, detected_at=T0))

    patch = status.merge_patch()

    assert patch["incident"]["containedAt"] is None
    assert patch["incident"]["recoveredAt"] is None
    assert patch["lastKnownGood"] is None
    assert "containedAt" not in status.wire()["incident"]


def test_merge_patch_leaves_none_out_inside_lists_which_are_replaced_whole():
    record = ActionRecord(
        id="1-scale-0",
        type=StepType.SCALE,
        step_index=0,
        target="Deployment/x",
        result=ActionResult.APPLIED,
        time=T0,
    )
    patch = GuardStatus(actions=[record]).merge_patch()

    assert "patch" not in patch["actions"][0]
