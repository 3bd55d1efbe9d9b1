"""plan_next_step(): the cheapest applicable step, escalating with time."""

import pytest

from releaseguard.domain.models import ActionResult, StepType
from releaseguard.domain.plan import (
    Apply,
    Exhausted,
    Wait,
    action_id,
    incident_actions,
    plan_next_step,
)
from unit.builders import (
    T0,
    action,
    at,
    blue_green,
    canary_weight,
    feature_flag,
    ready,
    rollback,
    scale,
    step,
    steps,
)

LADDER = steps(rollback(), blue_green(), scale(), canary_weight(), feature_flag())


def plan(ladder, actions=(), now=T0, incident=1, escalate=60, **not_ready):
    return plan_next_step(
        ladder, ready(ladder, **not_ready), incident, list(actions), escalate, now
    )


def taken(index, result=ActionResult.APPLIED, time=T0, incident=1, ladder=LADDER):
    return action(incident, index, result, time, ladder[index].type)


# ---------------------------------------------------------------- choosing


@pytest.mark.parametrize(
    ("ladder", "chosen"),
    [
        pytest.param(LADDER, 4, id="feature-flag-is-cheapest-by-default"),
        pytest.param(steps(rollback(), scale()), 1, id="scale-before-rollback"),
        pytest.param(steps(blue_green(), canary_weight()), 1, id="canary-before-blue-green"),
        pytest.param(steps(rollback()), 0, id="a-single-step"),
        pytest.param(steps(scale(), scale(replicas=1)), 0, id="tie-goes-to-list-order"),
        pytest.param(
            steps(feature_flag(cost=20), canary_weight()), 0, id="tie-by-override-list-order"
        ),
        pytest.param(
            steps(canary_weight(), feature_flag(cost=20)), 0, id="tie-by-override-other-order"
        ),
        pytest.param(steps(feature_flag(), rollback(cost=5)), 1, id="cost-override-wins"),
        pytest.param(steps(feature_flag(cost=0), rollback(cost=0)), 0, id="zero-cost-tie"),
    ],
)
def test_cheapest_step_is_planned_first(ladder, chosen):
    result = plan(ladder)

    assert isinstance(result, Apply)
    assert result.index == chosen
    assert result.step == ladder[chosen]


def test_plan_carries_a_stable_action_id():
    result = plan(LADDER, incident=3)

    assert result.action_id == "3-featureflag-4"
    assert result.action_id == action_id(3, LADDER[4], 4)


@pytest.mark.parametrize(
    ("not_ready", "chosen"),
    [
        pytest.param({"s4": "flag is already 'false'"}, 3, id="skips-not-ready-flag"),
        pytest.param({"s4": "x", "s3": "y"}, 2, id="skips-two"),
        pytest.param({"s4": "x", "s3": "y", "s2": "z", "s1": "w"}, 0, id="only-rollback-left"),
    ],
)
def test_not_ready_steps_are_skipped(not_ready, chosen):
    assert plan(LADDER, **not_ready).index == chosen


def test_step_without_readiness_is_not_a_candidate():
    ladder = steps(feature_flag(), rollback())
    readiness = ready(ladder)[1:]

    result = plan_next_step(ladder, readiness, 1, [], 60, T0)

    assert result.index == 1


# ---------------------------------------------------------------- never twice


@pytest.mark.parametrize(
    "result",
    [ActionResult.APPLIED, ActionResult.DRY_RUN, ActionResult.FAILED],
    ids=["applied", "dry-run", "failed"],
)
def test_a_step_taken_in_the_incident_is_never_repeated(result):
    later = at(3600)

    planned = plan(LADDER, [taken(4, result)], now=later)

    assert isinstance(planned, Apply)
    assert planned.index == 3


def test_actions_of_an_older_incident_do_not_count():
    old = [taken(4, incident=1), taken(3, incident=1)]

    result = plan(LADDER, old, now=at(1), incident=2)

    assert isinstance(result, Apply)
    assert result.index == 4
    assert result.action_id == "2-featureflag-4"


def test_incident_number_prefix_does_not_match_a_longer_number():
    actions = [taken(4, incident=11), taken(4, incident=1)]

    assert [a.id for a in incident_actions(actions, 1)] == ["1-featureflag-4"]


# ---------------------------------------------------------------- escalation


@pytest.mark.parametrize(
    ("now", "kind"),
    [
        pytest.param(at(1), Wait, id="just-after"),
        pytest.param(at(59), Wait, id="one-second-before-due"),
        pytest.param(at(60), Apply, id="exactly-due"),
        pytest.param(at(600), Apply, id="long-after"),
    ],
)
def test_next_step_waits_escalate_after_seconds_after_the_last_applied_step(now, kind):
    result = plan(LADDER, [taken(4, time=T0)], now=now, escalate=60)

    assert type(result) is kind
    if isinstance(result, Wait):
        assert result.due_at == at(60)
    else:
        assert result.index == 3


def test_escalation_counts_from_the_latest_applied_step():
    actions = [taken(4, time=T0), taken(3, time=at(60))]

    assert isinstance(plan(LADDER, actions, now=at(100)), Wait)
    assert plan(LADDER, actions, now=at(120)).index == 2


def test_dry_run_record_makes_the_next_step_wait_like_an_applied_one():
    result = plan(LADDER, [taken(4, ActionResult.DRY_RUN, time=T0)], now=at(30))

    assert isinstance(result, Wait)


def test_failed_step_does_not_make_the_next_one_wait():
    result = plan(LADDER, [taken(4, ActionResult.FAILED, time=T0)], now=at(1))

    assert isinstance(result, Apply)
    assert result.index == 3


def test_failed_step_after_an_applied_one_does_not_extend_the_wait():
    actions = [taken(4, time=T0), taken(3, ActionResult.FAILED, time=at(61))]

    result = plan(LADDER, actions, now=at(62))

    assert isinstance(result, Apply)
    assert result.index == 2


def test_zero_escalation_takes_the_next_step_at_once():
    result = plan(LADDER, [taken(4, time=T0)], now=T0, escalate=0)

    assert isinstance(result, Apply)
    assert result.index == 3


def test_wait_comes_before_exhaustion():
    ladder = steps(feature_flag())

    assert isinstance(plan(ladder, [taken(0, ladder=ladder)], now=at(10)), Wait)
    assert isinstance(plan(ladder, [taken(0, ladder=ladder)], now=at(60)), Exhausted)


# ---------------------------------------------------------------- exhausted


def test_no_steps_configured_is_exhausted():
    result = plan([])

    assert isinstance(result, Exhausted)
    assert result.message == "no containment steps are configured"


def test_exhausted_message_names_each_steps_reason():
    ladder = steps(feature_flag(), canary_weight(), rollback())
    readiness = ready(ladder, s1="backend checkout-v2 already has weight 0")
    readiness[2] = readiness[2].model_copy(
        update={"ready": False, "reason": "rollback refused: Job migrate succeeded: state changed"}
    )
    actions = [taken(0, ActionResult.FAILED, ladder=ladder)]

    result = plan_next_step(ladder, readiness, 1, actions, 60, at(1))

    assert isinstance(result, Exhausted)
    assert result.message == (
        "no applicable step left: "
        "FeatureFlag[0]: already taken in this incident; "
        "CanaryWeight[1]: backend checkout-v2 already has weight 0; "
        "Rollback[2]: rollback refused: Job migrate succeeded: state changed"
    )


def test_exhausted_message_says_not_applicable_when_no_reason_is_known():
    ladder = [step(scale())]

    result = plan_next_step(ladder, [], 1, [], 60, T0)

    assert result.message == "no applicable step left: Scale[0]: not applicable"


def test_every_step_taken_is_exhausted():
    actions = [taken(i, time=T0) for i in range(len(LADDER))]

    result = plan(LADDER, actions, now=at(60))

    assert isinstance(result, Exhausted)
    assert result.message.count("already taken in this incident") == len(LADDER)


def test_action_ids_are_lowercase_type_and_index():
    assert [action_id(2, s, i) for i, s in enumerate(LADDER)] == [
        "2-rollback-0",
        "2-bluegreen-1",
        "2-scale-2",
        "2-canaryweight-3",
        "2-featureflag-4",
    ]
    assert LADDER[0].type is StepType.ROLLBACK
