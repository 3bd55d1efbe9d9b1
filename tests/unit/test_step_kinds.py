"""The step kinds' registry (domain/steps/): every spec step type has one definition, and
the parts of it the rest of the operator asks for agree with each other."""

import copy
from typing import Any, get_args

import pytest

from releaseguard.domain import steps
from releaseguard.domain.changes import Change
from releaseguard.domain.models import DEFAULT_COSTS, SPEC_STEP_TYPES, KnownGood, Step, StepType
from releaseguard.domain.steps import Context, Surroundings
from releaseguard.plugin.undo import REFUSALS
from unit.builders import (
    T0,
    backend,
    blue_green,
    canary_weight,
    config_map,
    deployment,
    feature_flag,
    http_route,
    replica_set,
    rollback,
    scale,
    service,
    step,
)

TARGET = "checkout"
KNOWN_GOOD = KnownGood(revision="1", images=["checkout:1.40"], since=T0, pod_template_hash="good")
SETS = [replica_set(1, "good", "checkout:1.40"), replica_set(3, "bad", "checkout:1.42")]

# One step of each kind, the object it names as the API server would return it, and
# what decides whether it applies.
CASES: dict[StepType, tuple[dict[str, Any], dict[str, Any], Surroundings]] = {
    StepType.FEATURE_FLAG: (feature_flag(), config_map({"new-flow": "true"}), Surroundings()),
    StepType.CANARY_WEIGHT: (
        canary_weight(),
        http_route([backend("checkout-v1", 90), backend("checkout-v2", 10)]),
        Surroundings(),
    ),
    StepType.SCALE: (scale(), deployment(name="checkout-v2"), Surroundings()),
    StepType.BLUE_GREEN: (blue_green(), service({"color": "green"}), Surroundings(ready_pods=2)),
    StepType.ROLLBACK: (rollback(), deployment(), Surroundings(replica_sets=SETS)),
}


def test_every_spec_step_type_has_one_kind_and_nothing_else_does():
    record_only = {StepType.GITOPS_PAUSE}
    assert set(steps.KINDS) == set(StepType) - record_only == set(SPEC_STEP_TYPES) == set(CASES)


@pytest.mark.parametrize("step_type", SPEC_STEP_TYPES)
def test_the_kind_declares_the_settings_field_of_step_and_its_cost(step_type):
    kind = steps.KINDS[step_type]
    field = Step.model_fields[kind.field]
    assert kind.settings_model in get_args(field.annotation)
    assert field.alias == kind.spec_field
    assert DEFAULT_COSTS[step_type] == kind.default_cost
    assert step(CASES[step_type][0]).effective_cost == kind.default_cost


@pytest.mark.parametrize("step_type", SPEC_STEP_TYPES)
def test_the_generated_step_schema_carries_the_kinds_cel_rules(step_type):
    kind = steps.KINDS[step_type]
    rules = {r["rule"] for r in Step.model_json_schema()["x-kubernetes-validations"]}
    assert f"!has(self.{kind.spec_field}) || self.type == '{step_type.value}'" in rules
    needs = f"self.type != '{step_type.value}' || has(self.{kind.spec_field})"
    assert (needs in rules) is (kind.needs is not None)


def _ctx(around: Surroundings) -> Context:
    return Context(around=around, known_good=KNOWN_GOOD, breached=lambda current: [current])


@pytest.mark.parametrize("step_type", SPEC_STEP_TYPES)
def test_a_change_holds_once_written_and_the_claim_names_the_written_object(step_type):
    wire, obj, around = CASES[step_type]
    s = step(wire)
    change = steps.change(s, obj, _ctx(around))
    assert isinstance(change, Change), change
    assert steps.undone(s, change.after, obj) is not None  # not yet written
    assert steps.undone(s, change.after, change.new_object) is None  # written: holds
    kind, name = steps.object_of(s, TARGET)
    assert kind == obj["kind"] and name == obj["metadata"]["name"]
    assert steps.claim(s, TARGET).object == f"{kind}/{name}"


@pytest.mark.parametrize("step_type", [t for t in SPEC_STEP_TYPES if t is not StepType.ROLLBACK])
def test_writing_back_before_restores_the_object_the_change_was_made_on(step_type):
    wire, obj, around = CASES[step_type]
    s = step(wire)
    change = steps.change(s, obj, _ctx(around))
    assert isinstance(change, Change)
    restored = copy.deepcopy(change.new_object)
    found = steps.kind_of(s).write_back(change.before, change.new_object, restored)
    assert found == change.after
    assert restored == obj


def test_a_rollback_is_refused_by_undo_and_only_it_is_pinned():
    assert REFUSALS["Rollback"] == steps.KINDS[StepType.ROLLBACK].undo_refused
    for step_type, (wire, obj, around) in CASES.items():
        s = step(wire)
        change = steps.change(s, obj, _ctx(around))
        assert isinstance(change, Change)
        pinned = steps.kind_of(s).pinned(change)
        assert pinned == ("good" if step_type is StepType.ROLLBACK else None)


def test_only_blue_green_waits_on_ready_pods_and_only_rollback_acts_on_the_target():
    selectors = {t: steps.ready_pods_selector(step(w), o) for t, (w, o, _) in CASES.items()}
    assert selectors == {t: None for t in CASES} | {StepType.BLUE_GREEN: {"color": "blue"}}
    assert [t for t, k in steps.KINDS.items() if k.on_target] == [StepType.ROLLBACK]
