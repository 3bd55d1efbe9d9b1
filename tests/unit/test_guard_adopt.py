"""decide(): actions applied before a restart and missing from status
(adopt_unrecorded_actions).

Each tick runs the real evaluate() on canned answers, as the service does, so these
tests read as a timeline: breaching at 0 s, confirmed at 15 s, a step applied at 16 s
(tests/unit/guard_ticks.py).
"""

from releaseguard.domain.guard import REARM
from releaseguard.domain.models import ActionResult, GuardStatus, Phase, StepType
from unit.builders import HEALTHY, action, apply_planned, at, tick
from unit.guard_ticks import SPEC, confirmed, contained, reasons

# ---------------------------------------------------------------- recovered actions


def test_recovered_action_of_the_current_incident_is_recorded_once():
    breaching = apply_planned(confirmed(), at(16), ActionResult.FAILED).status
    lost = action(1, 1, time=at(31), type_=StepType.ROLLBACK)

    first = tick(SPEC, breaching, at(45), recovered=(lost,))
    second = tick(SPEC, first.status, at(60), recovered=(lost,))

    assert [a.id for a in first.status.actions] == ["1-featureflag-0", "1-rollback-1"]
    assert ("Normal", "ActionRecovered") in reasons(first)
    assert first.status.phase is Phase.CONTAINED
    assert first.status.incident.contained_at == at(31)
    assert first.status.incident.time_to_contain_seconds == 31.0
    assert [a.id for a in second.status.actions] == ["1-featureflag-0", "1-rollback-1"]
    assert "ActionRecovered" not in [r for _, r in reasons(second)]


def test_recovered_action_already_in_status_is_not_duplicated():
    status = contained()
    same = status.actions[0]

    decision = tick(SPEC, status, at(30), recovered=(same,))

    assert len(decision.status.actions) == 1
    assert decision.events == ()


def test_recovered_action_opens_the_incident_the_lost_status_never_recorded():
    counting = tick(SPEC, GuardStatus(), at(0)).status  # the status of 15 s was never written
    lost = action(1, 0, time=at(16))

    decision = tick(SPEC, counting, at(30), obs=HEALTHY, recovered=(lost,))

    assert decision.status.incident.number == 1
    assert decision.status.incident.contained_at == at(16)
    assert decision.status.phase is Phase.CONTAINED
    assert decision.status.actions == [lost]
    assert "manual" not in decision.status.incident.reason
    assert "1-featureflag-0" in decision.status.incident.reason


def test_recovered_action_of_a_closed_incident_is_ignored():
    closed = tick(SPEC, contained(), at(30), obs=HEALTHY, annotations={REARM: "1"}).status
    old_marker = action(1, 0, time=at(16))
    closed = closed.model_copy(update={"actions": []})

    decision = tick(SPEC, closed, at(45), obs=HEALTHY, recovered=(old_marker,))

    assert decision.status.actions == []
    assert decision.status.incident.number == 1
    assert decision.status.incident.closed is True
    assert decision.status.phase is Phase.WATCHING


def test_recovered_action_of_the_next_incident_opens_it():
    closed = tick(SPEC, contained(), at(30), obs=HEALTHY, annotations={REARM: "1"}).status
    lost = action(2, 1, time=at(100), type_=StepType.ROLLBACK)

    decision = tick(SPEC, closed, at(110), obs=HEALTHY, recovered=(lost,))

    assert decision.status.incident.number == 2
    assert decision.status.incident.contained_at == at(100)
    assert decision.status.phase is Phase.CONTAINED
    assert decision.status.actions[-1] == lost
