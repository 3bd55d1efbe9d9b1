"""The plugin tells an action's incident by its record's `incident` field, not its id."""

from releaseguard.domain.models import StepReadiness, StepType
from releaseguard.plugin.checking import step_checks
from releaseguard.plugin.views import in_incident, incident_actions


def test_the_incident_field_decides_over_the_id():
    action = {"id": "1-scale-0-r1", "incident": 2, "result": "Applied"}
    assert in_incident(action, 2)
    assert not in_incident(action, 1)


def test_a_record_without_the_field_falls_back_to_its_id():
    assert in_incident({"id": "3-rollback-1"}, 3)
    assert not in_incident({"id": "13-rollback-1"}, 3)


def test_incident_actions_keeps_only_that_incidents_actions_in_order():
    status = {
        "actions": [
            {"id": "1-scale-0", "incident": 1},
            {"id": "2-featureflag-0", "incident": 2},
            {"id": "x-custom", "incident": 2},
            {"id": "2-rollback-1"},
        ]
    }
    ids = [a["id"] for a in incident_actions(status, 2)]
    assert ids == ["2-featureflag-0", "x-custom", "2-rollback-1"]


def test_check_counts_a_step_applied_in_the_open_incident_by_the_field():
    unready = StepReadiness(type=StepType.SCALE, index=0, ready=False, reason="already 0")
    status = {
        "incident": {"number": 2},
        "actions": [{"id": "1-scale-0-r1", "incident": 2, "stepIndex": 0, "result": "Applied"}],
    }
    (check,) = step_checks([unready], ["Deployment/c"], status)
    assert (check.state, check.ok) == ("applied", True)
    status["actions"][0]["incident"] = 1  # the id's prefix says 1 as well: not this one
    (check,) = step_checks([unready], ["Deployment/c"], status)
    assert (check.state, check.ok) == ("not ready", False)
