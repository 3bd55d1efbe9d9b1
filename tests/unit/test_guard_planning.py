"""decide(): escalation and exhaustion (plan_next_step, derive_phase).

Each tick runs the real evaluate() on canned answers, as the service does, so these
tests read as a timeline: breaching at 0 s, confirmed at 15 s, a step applied at 16 s
(tests/unit/guard_ticks.py).
"""

import pytest

from releaseguard.domain.models import ActionResult, Phase
from releaseguard.domain.plan import Exhausted
from unit.builders import HEALTHY, NO_DATA, apply_planned, at, guard_spec, ready, tick
from unit.guard_ticks import NOTHING_READY, SPEC, condition, confirmed, contained, reasons

# ---------------------------------------------------------------- escalation


@pytest.mark.parametrize(
    ("t", "planned"),
    [
        pytest.param(30, None, id="still-waiting"),
        pytest.param(75, None, id="one-second-before-due"),
        pytest.param(76, 1, id="escalates-when-due"),
    ],
)
def test_contained_guard_escalates_after_escalate_after_seconds(t, planned):
    decision = tick(SPEC, contained(), at(t))

    assert decision.status.phase is Phase.CONTAINED
    assert (decision.plan.index if decision.plan else None) == planned


def test_failed_step_is_followed_by_the_next_at_once():
    failed = apply_planned(confirmed(), at(16), ActionResult.FAILED).status

    decision = tick(SPEC, failed, at(30))

    assert decision.status.phase is Phase.BREACHING
    assert decision.plan.index == 1
    assert decision.plan.action_id == "1-rollback-1"


def test_no_step_is_planned_while_the_breach_is_not_confirmed():
    decision = tick(SPEC, contained(), at(90), obs=NO_DATA)

    assert decision.plan is None
    assert decision.status.phase is Phase.CONTAINED


# ---------------------------------------------------------------- exhausted


def test_nothing_applicable_is_exhausted_with_one_warning():
    decision = confirmed(readiness=NOTHING_READY)

    assert decision.status.phase is Phase.EXHAUSTED
    assert isinstance(decision.plan, Exhausted)
    assert decision.status.message == (
        "no applicable step left: FeatureFlag[0]: flag new-flow is already 'false'; "
        "Rollback[1]: no known-good revision"
    )
    assert reasons(decision) == [("Warning", "BreachConfirmed"), ("Warning", "Exhausted")]
    assert condition(decision.status, "Ready").reason == "Exhausted"


def test_exhausted_warns_once_not_on_every_tick():
    first = confirmed(readiness=NOTHING_READY)

    second = tick(SPEC, first.status, at(30), readiness=NOTHING_READY)
    third = tick(SPEC, second.status, at(45), readiness=NOTHING_READY)

    assert second.status.phase is Phase.EXHAUSTED
    assert third.status.phase is Phase.EXHAUSTED
    assert second.events == ()
    assert third.events == ()


def test_exhausted_keeps_its_message_over_a_tick_without_data():
    first = confirmed(readiness=NOTHING_READY)

    no_data = tick(SPEC, first.status, at(30), obs=NO_DATA, readiness=NOTHING_READY)

    assert no_data.status.phase is Phase.EXHAUSTED
    assert no_data.status.message == first.status.message


def test_no_steps_configured_is_detection_only_and_stays_breaching():
    spec = guard_spec(steps=[])

    decision = confirmed(spec)

    assert decision.status.phase is Phase.BREACHING
    assert decision.plan is None
    assert not any(e.reason == "Exhausted" for e in decision.events)


def test_exhausted_incident_closes_when_healthy_again():
    first = confirmed(readiness=NOTHING_READY)

    healthy = tick(SPEC, first.status, at(30), obs=HEALTHY, readiness=NOTHING_READY)

    assert healthy.status.phase is Phase.WATCHING
    assert healthy.status.incident.closed is True
    assert healthy.status.message == ""


def test_rollback_refused_after_containment_exhausts_the_ladder():
    refused = ready(SPEC, s1="rollback refused: Job migrate succeeded: state changed")

    decision = tick(SPEC, contained(), at(76), readiness=refused)

    assert decision.status.phase is Phase.EXHAUSTED
    assert "rollback refused" in decision.status.message
    assert ("Warning", "Exhausted") in reasons(decision)
