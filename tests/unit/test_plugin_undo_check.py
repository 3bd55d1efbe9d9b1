"""The plugin's pure undo and check rules: what `undo` writes back or refuses, and when
`check` says a guard would not work (exit 1)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from releaseguard.domain.identity import MarkerEntry, parse_markers, with_marker
from releaseguard.domain.models import Blocker, GuardSpec, StepReadiness, StepType
from releaseguard.domain.observations import Observations, Outcome, QueryResult
from releaseguard.plugin.checking import CheckReport, query_checks, step_checks
from releaseguard.plugin.undo import MARKER, Drifted, Refused, Undo, refusal, undo_change


def action(type_: str, before: dict, after: dict, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"1-{type_.lower()}-0",
        "type": type_,
        "target": "X/y",
        "result": "Applied",
        "before": before,
        "after": after,
    } | extra


def obj(**body: Any) -> dict[str, Any]:
    return {"metadata": {"name": "y", "resourceVersion": "7", "annotations": {}}} | body


# ---------------------------------------------------------------- undo


def test_undo_scale_writes_the_replicas_back_on_the_object_as_read():
    deployment = obj(spec={"replicas": 0, "template": {}})
    done = undo_change(action("Scale", {"replicas": 3}, {"replicas": 0}), deployment)
    assert isinstance(done, Undo)
    assert done.new_object["spec"]["replicas"] == 3
    assert done.new_object["metadata"]["resourceVersion"] == "7"  # optimistic concurrency
    assert (done.restored, done.replaced) == ({"replicas": 3}, {"replicas": 0})
    assert deployment["spec"]["replicas"] == 0  # the input is not mutated


def test_undo_removes_the_operators_marker_for_that_action_only():
    at = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    ours = MarkerEntry(id="1-scale-0", time=at, incident="20261126T100000.000000Z")
    theirs = MarkerEntry(id="4-scale-0", time=at, incident="20261126T090000.000000Z")
    deployment = obj(spec={"replicas": 0})
    deployment["metadata"]["annotations"] = {MARKER: with_marker(None, "u", ours), "keep": "me"}
    done = undo_change(action("Scale", {"replicas": 3}, {"replicas": 0}), deployment)
    assert isinstance(done, Undo)
    assert done.new_object["metadata"]["annotations"] == {"keep": "me"}

    # another guard's entry on the same object stays
    deployment["metadata"]["annotations"] = {
        MARKER: with_marker(with_marker(None, "u", ours), "other-guard", theirs)
    }
    done = undo_change(action("Scale", {"replicas": 3}, {"replicas": 0}), deployment)
    assert isinstance(done, Undo)
    left = parse_markers(done.new_object["metadata"]["annotations"][MARKER])
    assert list(left) == ["other-guard"] and left["other-guard"].id == "4-scale-0"

    # a marker of another action of this guard is not ours to remove
    other = MarkerEntry(id="2-scale-0", time=at, incident="20261126T110000.000000Z")
    deployment["metadata"]["annotations"] = {MARKER: with_marker(None, "u", other)}
    done = undo_change(action("Scale", {"replicas": 3}, {"replicas": 0}), deployment)
    assert isinstance(done, Undo) and MARKER in done.new_object["metadata"]["annotations"]


def test_undo_feature_flag_and_blue_green_restore_or_remove_the_key():
    cm = obj(data={"new-checkout": "false", "other": "x"})
    done = undo_change(
        action("FeatureFlag", {"new-checkout": "true"}, {"new-checkout": "false"}), cm
    )
    assert isinstance(done, Undo) and done.new_object["data"]["new-checkout"] == "true"
    unset = undo_change(
        action("FeatureFlag", {"new-checkout": None}, {"new-checkout": "false"}), cm
    )
    assert isinstance(unset, Undo) and unset.new_object["data"] == {"other": "x"}
    svc = obj(spec={"selector": {"app": "web", "colour": "blue"}})
    back = undo_change(action("BlueGreen", {"colour": "green"}, {"colour": "blue"}), svc)
    assert isinstance(back, Undo)
    assert back.new_object["spec"]["selector"] == {"app": "web", "colour": "green"}


def test_undo_canary_weight_finds_the_rule_with_the_actions_backends():
    route = obj(
        spec={
            "rules": [
                {"backendRefs": [{"name": "v1", "weight": 1}]},
                {"backendRefs": [{"name": "v1", "weight": 100}, {"name": "v2", "weight": 0}]},
            ]
        }
    )
    done = undo_change(action("CanaryWeight", {"v1": 90, "v2": 10}, {"v1": 100, "v2": 0}), route)
    assert isinstance(done, Undo)
    rules = done.new_object["spec"]["rules"]
    assert rules[0]["backendRefs"] == [{"name": "v1", "weight": 1}]
    assert rules[1]["backendRefs"] == [{"name": "v1", "weight": 90}, {"name": "v2", "weight": 10}]
    prefixed = undo_change(action("CanaryWeight", {"rules[1].v2": 10}, {"rules[1].v2": 0}), route)
    assert isinstance(prefixed, Undo)
    assert prefixed.new_object["spec"]["rules"][1]["backendRefs"][1]["weight"] == 10


def test_undo_never_overwrites_a_later_change_unless_forced():
    deployment = obj(spec={"replicas": 5})
    scale = action("Scale", {"replicas": 3}, {"replicas": 0})
    drifted = undo_change(scale, deployment)
    assert isinstance(drifted, Drifted) and "--force" in drifted.reason
    forced = undo_change(scale, deployment, force=True)
    assert isinstance(forced, Undo) and forced.new_object["spec"]["replicas"] == 3
    gone = undo_change(action("CanaryWeight", {"v9": 1}, {"v9": 0}), obj(spec={"rules": []}))
    assert isinstance(gone, Drifted)


@pytest.mark.parametrize(
    ("record", "phrase"),
    [
        (action("Rollback", {"revision": "2"}, {"revision": "1"}), "deploy a fixed revision"),
        (action("GitOpsPause", {"automated": {}}, {"automated": None}), "Argo CD"),
        (action("Scale", {"replicas": 2}, {"replicas": 0}, result="DryRun"), "not applied"),
        (action("Scale", {"replicas": 2}, {"replicas": 0}, result="Failed"), "not applied"),
        (action("Scale", {}, {}), "no `before`"),
    ],
)
def test_undo_refuses_what_it_must_not_write_back_and_says_why(record, phrase):
    assert phrase in (refusal(record) or "")
    assert isinstance(undo_change(record, obj(spec={"replicas": 0})), Refused)


# ---------------------------------------------------------------- check


def spec(**extra: Any) -> GuardSpec:
    body = {
        "target": {"deployment": "app"},
        "metrics": [
            {"name": "errors", "query": "e", "max": 0.1},
            {"name": "latency", "query": "l", "maxRatio": 1.5, "baselineQuery": "b"},
        ],
    }
    return GuardSpec.model_validate(body | extra)


def answers(errors: QueryResult, latency: QueryResult, baseline: QueryResult) -> Observations:
    return Observations({"errors": errors, "latency": latency}, {"latency": baseline})


def test_check_shows_value_against_bound_with_the_operators_verdict():
    checks = query_checks(
        spec(), answers(QueryResult.number(0.3), QueryResult.number(1.0), QueryResult.number(1.0))
    )
    assert [(c.name, c.value, c.bound, c.verdict, c.ok) for c in checks] == [
        ("errors", "0.3", "≤ 0.1", "Breach", True),
        ("latency", "1", "≤ 1.5 x baseline", "Pass", True),
        ("latency (baseline)", "1", "-", "Value", True),
    ]
    assert checks[0].note == "errors 0.3 > 0.1"


@pytest.mark.parametrize(
    ("outcome", "ok"),
    [
        (Outcome.BAD_QUERY, False),
        (Outcome.MULTIPLE, False),
        (Outcome.UNAVAILABLE, False),
        (Outcome.EMPTY, True),
        (Outcome.NAN, True),
    ],
)
def test_a_query_the_guard_cannot_use_fails_the_check_but_no_data_now_does_not(outcome, ok):
    bad = QueryResult(outcome, message="why")
    checks = query_checks(spec(), answers(bad, QueryResult.number(1), QueryResult.number(1)))
    assert checks[0].ok is ok
    report = CheckReport("ns", "g", "cluster", "http://p", queries=checks)
    assert report.exit_code == (0 if ok else 1)


def test_min_traffic_below_its_floor_is_reported_not_failed():
    s = spec(minTraffic={"query": "t", "min": 5})
    obs = Observations(
        {"errors": QueryResult.number(0), "latency": QueryResult.number(1)},
        {"latency": QueryResult.number(1)},
        traffic=QueryResult.number(2),
    )
    (traffic,) = [c for c in query_checks(s, obs) if c.name == "minTraffic"]
    assert (traffic.verdict, traffic.ok) == ("Low", True) and "InsufficientTraffic" in traffic.note


def readiness(ready: bool, reason: str = "", index: int = 0, type_=StepType.SCALE, code=None):
    return StepReadiness(type=type_, index=index, ready=ready, reason=reason, code=code)


def test_a_step_not_ready_fails_the_check():
    (step,) = step_checks([readiness(False, "Deployment nope not found")], ["Deployment/nope"], {})
    assert (step.state, step.ok, step.object) == ("not ready", False, "Deployment/nope")
    report = CheckReport("ns", "g", "cluster", "http://p", steps=[step])
    assert report.exit_code == 1


def test_steps_the_operator_does_not_count_as_unready_pass_the_check():
    rollback = StepType.ROLLBACK
    no_known_good = readiness(
        False, "no known-good revision recorded yet", 0, rollback, Blocker.NO_KNOWN_GOOD
    )
    status = {
        "incident": {"number": 2},
        "actions": [{"id": "2-scale-0", "stepIndex": 0, "result": "Applied"}],
    }
    steps = step_checks(
        [
            readiness(False, "Deployment c already has 0 replicas"),
            readiness(
                False,
                "app already runs the known-good revision 3",
                1,
                rollback,
                Blocker.AT_KNOWN_GOOD,
            ),
        ],
        ["Deployment/c", "Deployment/app"],
        status,
    )
    assert [(s.state, s.ok) for s in steps] == [("applied", True), ("prepared", True)]
    never_run = step_checks([no_known_good], ["D/app"], {})
    assert (never_run[0].state, never_run[0].ok) == ("pending", True)
    evaluated = step_checks(
        [no_known_good],
        ["D/app"],
        {"lastEvaluation": {"verdict": "Healthy"}},
    )
    assert (evaluated[0].state, evaluated[0].ok) == ("not ready", False)


def test_a_problem_anywhere_makes_the_check_fail():
    report = CheckReport("ns", "g", "f.yaml", "", problems=["schema: spec.x: bad"])
    assert report.exit_code == 1 and report.to_dict()["ok"] is False
    assert CheckReport("ns", "g", "cluster", "http://p").exit_code == 0
