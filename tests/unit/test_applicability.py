"""domain/applicability.py and domain/availability.py: what one write of an action
carries, or the record instead of a write; when a rollout is complete."""

from __future__ import annotations

from typing import Any

from builders import T0, at, config_map, feature_flag, guard_spec

from releaseguard.domain.applicability import (
    ADOPTED,
    DRY_RUN,
    Action,
    markers_of,
    missing_view,
    next_write,
    object_ref,
)
from releaseguard.domain.availability import rollout_complete
from releaseguard.domain.changes import Change, NotApplicable
from releaseguard.domain.identity import MARKER, MarkerEntry, with_marker
from releaseguard.domain.models import ActionResult, Blocker, Incident, StepType
from releaseguard.domain.steps.feature_flag import feature_flag_change

INCIDENT = Incident(number=2, detected_at=T0, uid="inc-2")
ACTION = Action(
    "2-featureflag-0", StepType.FEATURE_FLAG, 0, "ConfigMap/checkout-flags", "r", INCIDENT
)
SPEC = guard_spec(steps=[feature_flag()])


def change() -> Change | NotApplicable:
    return feature_flag_change(SPEC.steps[0].feature_flag, config_map({"new-flow": "true"}))  # type: ignore[arg-type]


def marked(entry_id: str, incident: str = "inc-2") -> dict[str, Any]:
    entry = MarkerEntry(id=entry_id, time=at(5), incident=incident, before={}, after={})
    cm = config_map({"new-flow": "false"})
    cm["metadata"]["annotations"] = {MARKER: with_marker(None, "me", entry)}
    return cm


def test_the_write_carries_this_guards_marker_entry_of_the_incident() -> None:
    write = next_write(ACTION, "me", {}, change(), SPEC, at(10))
    assert isinstance(write, Change)
    entry = markers_of(write.new_object)["me"]
    assert (entry.id, entry.incident, entry.time) == ("2-featureflag-0", "inc-2", at(10))
    assert write.new_object["data"] == {"new-flow": "false"}


def test_our_marker_of_the_open_incident_is_adopted_not_written_again() -> None:
    record = next_write(ACTION, "me", markers_of(marked("2-featureflag-0")), change(), SPEC, at(10))
    assert not isinstance(record, Change)
    assert (record.result, record.message, record.time) == (ActionResult.APPLIED, ADOPTED, at(5))
    assert record.incident == 2


def test_a_marker_of_another_incident_or_action_is_not_adopted() -> None:
    for obj in (marked("2-featureflag-0", incident="inc-1"), marked("2-scale-1")):
        assert isinstance(next_write(ACTION, "me", markers_of(obj), change(), SPEC, at(10)), Change)


def test_a_step_that_no_longer_applies_fails_and_dry_run_writes_nothing() -> None:
    done = NotApplicable("flag new-flow is already 'false'", Blocker.ALREADY_SET)
    failed = next_write(ACTION, "me", {}, done, SPEC, at(10))
    assert not isinstance(failed, Change) and failed.result is ActionResult.FAILED
    assert failed.message == "no longer applicable: flag new-flow is already 'false'"
    dry = next_write(ACTION, "me", {}, change(), SPEC.model_copy(update={"dry_run": True}), at(10))
    assert not isinstance(dry, Change)
    assert (dry.result, dry.message, dry.patch) == (
        ActionResult.DRY_RUN,
        DRY_RUN,
        {"data": {"new-flow": "false"}},
    )


def test_a_missing_object_is_not_ready_with_code_missing() -> None:
    view = missing_view(0, SPEC.steps[0], SPEC, "ConfigMap checkout-flags not found")
    assert view.object_ref == object_ref(SPEC.steps[0], SPEC) == "ConfigMap/checkout-flags"
    readiness = view.readiness
    assert (readiness.ready, readiness.code) == (False, Blocker.MISSING)


def deployment(**status: Any) -> dict[str, Any]:
    full = {
        "observedGeneration": 2,
        "replicas": 2,
        "updatedReplicas": 2,
        "availableReplicas": 2,
        "conditions": [{"type": "Available", "status": "True"}],
    }
    return {"metadata": {"generation": 2}, "spec": {"replicas": 2}, "status": full | status}


def test_a_rollout_is_complete_only_when_every_new_pod_is_available() -> None:
    assert rollout_complete(deployment())
    assert not rollout_complete(deployment(observedGeneration=1))  # not yet seen
    assert not rollout_complete(deployment(updatedReplicas=1))  # mid-rollout
    assert not rollout_complete(deployment(replicas=3))  # old pods still there
    assert not rollout_complete(deployment(availableReplicas=1))
    assert not rollout_complete(deployment(conditions=[]))
