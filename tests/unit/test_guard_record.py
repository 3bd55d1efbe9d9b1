"""record_action(): one step's outcome folded into the status.

Each tick runs the real evaluate() on canned answers, as the service does, so these
tests read as a timeline: breaching at 0 s, confirmed at 15 s, a step applied at 16 s
(tests/unit/guard_ticks.py).
"""

import pytest

from releaseguard.domain.models import MAX_ACTIONS, ActionResult, GuardStatus, Phase
from unit.builders import action, apply_planned, at, tick
from unit.guard_ticks import SPEC, condition, confirmed, contained, reasons

# ---------------------------------------------------------------- record_action


@pytest.mark.parametrize(
    ("result", "phase", "contained_at", "event"),
    [
        pytest.param(
            ActionResult.APPLIED, Phase.CONTAINED, at(16), ("Normal", "StepApplied"), id="applied"
        ),
        pytest.param(
            ActionResult.DRY_RUN, Phase.BREACHING, None, ("Normal", "StepDryRun"), id="dry-run"
        ),
        pytest.param(
            ActionResult.FAILED, Phase.BREACHING, None, ("Warning", "StepFailed"), id="failed"
        ),
    ],
)
def test_record_action_folds_the_result_into_the_status(result, phase, contained_at, event):
    recorded = apply_planned(confirmed(), at(16), result)

    status = recorded.status
    assert status.phase is phase
    assert status.incident.contained_at == contained_at
    assert status.last_action == f"FeatureFlag {result.value}"
    assert [a.id for a in status.actions] == ["1-featureflag-0"]
    assert reasons(recorded) == [event]
    assert recorded.events[0].message.startswith("1-featureflag-0 FeatureFlag Object/x: ")


def test_applied_step_contains_with_time_to_contain_from_detection():
    status = contained()

    assert status.phase is Phase.CONTAINED
    assert status.incident.contained_at == at(16)
    assert status.incident.time_to_contain_seconds == 16.0
    assert status.last_action == "FeatureFlag Applied"
    assert condition(status, "Contained").status == "True"


def test_a_second_applied_step_keeps_the_first_containment_time():
    status = contained()
    escalated = tick(SPEC, status, at(76))

    second = apply_planned(escalated, at(77)).status

    assert second.incident.contained_at == at(16)
    assert second.last_action == "Rollback Applied"


def test_actions_are_capped_at_fifty_newest_last():
    old = [action(incident=0, index=i % 2, time=at(i)) for i in range(MAX_ACTIONS)]
    old = [a.model_copy(update={"id": f"0-old-{i}"}) for i, a in enumerate(old)]
    decision = confirmed(status=GuardStatus(actions=old))

    status = apply_planned(decision, at(16)).status

    assert len(status.actions) == MAX_ACTIONS
    assert status.actions[-1].id == "1-featureflag-0"
    assert status.actions[0].id == "0-old-1"
