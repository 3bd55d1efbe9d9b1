"""decide_inactive(): Suspended and Invalid guards.

Each tick runs the real evaluate() on canned answers, as the service does, so these
tests read as a timeline: breaching at 0 s, confirmed at 15 s, a step applied at 16 s
(tests/unit/guard_ticks.py).
"""

import pytest

from releaseguard.domain.conditions import Event
from releaseguard.domain.guard import decide_inactive
from releaseguard.domain.models import GuardStatus, Phase
from unit.builders import HEALTHY, T0, at, tick
from unit.guard_ticks import SPEC, condition, contained, reasons

# ---------------------------------------------------------------- inactive


@pytest.mark.parametrize(
    ("phase", "reason", "message", "event_type"),
    [
        pytest.param(
            Phase.SUSPENDED,
            "Suspended",
            "spec.suspend is true: not evaluating",
            "Normal",
            id="suspended",
        ),
        pytest.param(
            Phase.INVALID,
            "BadQuery",
            "error-rate: Prometheus rejected the query: parse error",
            "Warning",
            id="invalid",
        ),
    ],
)
def test_decide_inactive_sets_phase_ready_false_and_posts_one_event(
    phase, reason, message, event_type
):
    watching = tick(SPEC, GuardStatus(), at(0), obs=HEALTHY).status

    first = decide_inactive(watching, phase, reason, message, 2, at(15))
    second = decide_inactive(first.status, phase, reason, message, 2, at(30))

    assert first.status.phase is phase
    assert first.status.message == message
    assert first.status.observed_generation == 2
    ready_condition = condition(first.status, "Ready")
    assert (ready_condition.status, ready_condition.reason) == ("False", reason)
    assert ready_condition.last_transition_time == at(15)
    assert first.events == (Event(event_type, phase.value, message),)
    assert second.events == ()
    assert condition(second.status, "Ready").last_transition_time == at(15)
    assert first.plan is None


def test_decide_inactive_posts_again_when_the_problem_changes():
    first = decide_inactive(GuardStatus(), Phase.INVALID, "BadQuery", "one", 1, T0)

    second = decide_inactive(first.status, Phase.INVALID, "MissingObject", "two", 1, at(15))

    assert second.events == (Event("Warning", "Invalid", "two"),)


def test_decide_inactive_keeps_the_incident_and_actions():
    status = contained()

    suspended = decide_inactive(status, Phase.SUSPENDED, "Suspended", "off", 2, at(30)).status

    assert suspended.incident == status.incident
    assert suspended.actions == status.actions


def test_resuming_after_suspension_returns_to_the_lifecycle():
    suspended = decide_inactive(GuardStatus(), Phase.SUSPENDED, "Suspended", "off", 1, T0)

    decision = tick(SPEC, suspended.status, at(15), obs=HEALTHY)

    assert decision.status.phase is Phase.WATCHING
    assert decision.status.message == ""
    assert condition(decision.status, "Ready").status == "True"
    assert reasons(decision) == [("Normal", "Watching")]
