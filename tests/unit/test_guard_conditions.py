"""decide(): the five conditions and the phase-change Events (build_conditions,
announce_changes).

Each tick runs the real evaluate() on canned answers, as the service does, so these
tests read as a timeline: breaching at 0 s, confirmed at 15 s, a step applied at 16 s
(tests/unit/guard_ticks.py).
"""

import json

import pytest

from releaseguard.domain.conditions import (
    ConditionType,
    Event,
    EventReason,
    EventType,
    Reason,
    phase_reason,
    set_condition,
    step_reason,
)
from releaseguard.domain.evaluate import evaluate
from releaseguard.domain.guard import TickInput, decide
from releaseguard.domain.models import (
    ActionResult,
    Condition,
    GuardStatus,
    KnownGood,
    Phase,
    StepReadiness,
    StepType,
)
from unit.builders import (
    HEALTHY,
    NO_DATA,
    RELEASE_A,
    T0,
    at,
    feature_flag,
    guard_spec,
    ready,
    rollback,
    tick,
)
from unit.guard_ticks import SPEC, condition, confirmed, contained, reasons

# ---------------------------------------------------------------- conditions


def test_conditions_keep_their_transition_time_while_the_status_holds():
    first = tick(SPEC, GuardStatus(), at(0), obs=HEALTHY).status
    second = tick(SPEC, first, at(15), obs=HEALTHY).status
    no_data = tick(SPEC, second, at(30), obs=NO_DATA).status

    assert condition(second, "Ready").last_transition_time == at(0)
    assert condition(second, "MetricsAvailable").last_transition_time == at(0)
    assert condition(no_data, "Ready").last_transition_time == at(0)
    available = condition(no_data, "MetricsAvailable")
    assert (available.status, available.reason) == ("False", "NoData")
    assert available.message == "error-rate: the query returned no series"
    assert available.last_transition_time == at(30)


def test_every_active_tick_sets_the_five_conditions_with_the_generation():
    status = tick(SPEC, GuardStatus(), at(0), obs=HEALTHY, generation=3).status

    assert [c.type for c in status.conditions] == [
        "Ready",
        "MetricsAvailable",
        "Breached",
        "Contained",
        "RollbackReady",
    ]
    assert {c.observed_generation for c in status.conditions} == {3}
    assert status.observed_generation == 3


@pytest.mark.parametrize(
    ("old_status", "new_status", "since"),
    [
        pytest.param("True", True, T0, id="unchanged-true-keeps-time"),
        pytest.param("False", False, T0, id="unchanged-false-keeps-time"),
        pytest.param("False", True, at(99), id="flip-to-true-moves-time"),
        pytest.param("True", False, at(99), id="flip-to-false-moves-time"),
    ],
)
def test_set_condition_keeps_last_transition_time_unless_the_status_changes(
    old_status, new_status, since
):
    old = [
        Condition(type="Ready", status=old_status, reason="A", last_transition_time=T0),
        Condition(type="Other", status="True", reason="B", last_transition_time=T0),
    ]

    new = set_condition(old, "Ready", new_status, "Changed", "why", at(99), 4)

    assert new[0].last_transition_time == since
    assert (new[0].reason, new[0].message, new[0].observed_generation) == ("Changed", "why", 4)
    assert new[1] == old[1]


def test_set_condition_appends_a_new_type():
    new = set_condition([], "Ready", True, "Watching", "", T0, 1)

    assert new == [
        Condition(
            type="Ready",
            status="True",
            reason="Watching",
            last_transition_time=T0,
            observed_generation=1,
        )
    ]


@pytest.mark.parametrize(
    ("spec", "readiness", "known_good", "expected"),
    [
        pytest.param(
            SPEC,
            ready(SPEC),
            KnownGood(revision="7", images=["checkout:1.41"], since=T0, pod_template_hash="a"),
            ("True", "KnownGoodRevision", "revision 7 (checkout:1.41)"),
            id="rollback-ready-to-known-good",
        ),
        pytest.param(
            SPEC,
            ready(SPEC, s1="checkout already runs the known-good revision 7"),
            KnownGood(revision="7", images=["checkout:1.41"], since=T0, pod_template_hash="a"),
            ("True", "KnownGoodRevision", "revision 7 (checkout:1.41)"),
            id="running-the-known-good-revision-is-prepared",
        ),
        pytest.param(
            guard_spec(steps=[rollback("Previous")]),
            [StepReadiness(type=StepType.ROLLBACK, index=0, ready=True)],
            None,
            ("True", "Ready", ""),
            id="rollback-ready-to-previous",
        ),
        pytest.param(
            SPEC,
            ready(SPEC, s1="rollback refused: Job migrate succeeded: state changed"),
            None,
            ("False", "StateChanged", "rollback refused: Job migrate succeeded: state changed"),
            id="rollback-refused",
        ),
        pytest.param(
            guard_spec(steps=[feature_flag()]),
            ready(guard_spec(steps=[feature_flag()])),
            KnownGood(revision="7", images=["checkout:1.41"], since=T0, pod_template_hash="a"),
            ("True", "KnownGoodRevision", "revision 7 (checkout:1.41)"),
            id="no-rollback-step-reports-known-good",
        ),
        pytest.param(
            guard_spec(steps=[feature_flag()]),
            ready(guard_spec(steps=[feature_flag()])),
            None,
            ("False", "NoKnownGoodRevision", ""),
            id="no-rollback-step-no-known-good",
        ),
    ],
)
def test_rollback_ready_condition(spec, readiness, known_good, expected):
    status = GuardStatus(last_known_good=known_good)
    evaluation = evaluate(spec, HEALTHY, None, T0)

    decision = decide(TickInput(spec, status, evaluation, RELEASE_A, T0, 1, readiness))

    c = condition(decision.status, "RollbackReady")
    assert (c.status, c.reason, c.message) == expected


def test_readiness_is_reported_in_status():
    readiness = ready(SPEC, s1="no known-good revision recorded yet")

    status = tick(SPEC, GuardStatus(), at(0), obs=HEALTHY, readiness=readiness).status

    assert status.readiness == readiness


# ---------------------------------------------------------------- phase events


def test_phase_changes_post_one_event_each():
    watching = tick(SPEC, GuardStatus(), at(0), obs=HEALTHY)
    counting = tick(SPEC, watching.status, at(15))
    breaching = tick(SPEC, counting.status, at(30))

    assert watching.events == ()
    assert counting.events == ()
    assert ("Normal", "Breaching") in reasons(breaching)
    assert breaching.events[-1].message == "phase Watching -> Breaching"


# ---------------------------------------------------------------- the enums (domain/conditions.py)


@pytest.mark.parametrize("phase", list(Phase))
def test_every_phase_has_the_event_reason_of_its_name(phase):
    assert phase_reason(phase) == phase.value


@pytest.mark.parametrize("result", list(ActionResult))
def test_every_action_result_has_a_step_event_reason(result):
    assert step_reason(result) == f"Step{result.value}"


def test_conditions_and_events_carry_the_enums_text():
    conds = set_condition([], ConditionType.ROLLBACK_READY, True, Reason.READY, "m", T0, 3)
    wire = GuardStatus(conditions=conds).model_dump(mode="json", by_alias=True)

    assert wire["conditions"][0]["type"] == "RollbackReady"
    assert wire["conditions"][0]["reason"] == "Ready"
    assert json.dumps(Event(EventType.WARNING, EventReason.ROLLBACK_REFUSED, "m").reason) == (
        '"RollbackRefused"'
    )


def test_every_event_a_tick_posts_has_a_typed_reason():
    status = contained()
    ticks = [
        tick(SPEC, GuardStatus(), T0),
        confirmed(),
        tick(SPEC, status, at(30), obs=HEALTHY),
        tick(SPEC, status, at(31), annotations={"releaseguard.io/rearm": "1"}),
    ]

    events = [e for d in ticks for e in d.events]
    assert events
    assert all(isinstance(e.reason, EventReason) for e in events)
    assert all(isinstance(e.type, EventType) for e in events)
