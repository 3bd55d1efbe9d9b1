"""Events from recorded status: what is recorded and not announced is owed, once."""

from releaseguard.domain.announce import (
    ANNOUNCED_REASONS,
    MAX_ANNOUNCED,
    mark_announced,
    pending_announcements,
)
from releaseguard.domain.models import ActionResult, GuardStatus, Incident
from unit.builders import action, at

OPEN = Incident(number=2, detected_at=at(0), uid="u2", reason="error-rate 0.3 > 0.05")


def status(**fields):
    return GuardStatus(incident=OPEN, **fields)


def test_an_opened_incident_and_its_actions_are_owed_oldest_first():
    s = status(actions=[action(1, 0), action(2, 0), action(2, 1, ActionResult.FAILED)])

    owed = pending_announcements(s)

    assert [(a.type, a.reason) for a in owed] == [
        ("Warning", "BreachConfirmed"),
        ("Normal", "StepApplied"),
        ("Warning", "StepFailed"),
    ]
    assert [a.key for a in owed] == [
        "u2/opened",
        "u2/action/2-featureflag-0",
        "u2/action/2-featureflag-1",
    ]
    assert owed[0].message == "error-rate 0.3 > 0.05"
    assert owed[1].message.startswith("2-featureflag-0 FeatureFlag ConfigMap/checkout-flags")
    assert {a.reason for a in owed} <= ANNOUNCED_REASONS


def test_an_adopted_action_is_owed_like_any_other():
    adopted = action(2, 0, message="recorded from the object's releaseguard.io/action marker")
    owed = pending_announcements(status(actions=[adopted], announced=["u2/opened"]))
    assert [a.reason for a in owed] == ["StepApplied"]


def test_announced_moments_are_not_owed_again():
    s = status(actions=[action(2, 0)])
    done = mark_announced(s, [a.key for a in pending_announcements(s)])

    assert pending_announcements(done) == []
    assert mark_announced(done, ["u2/opened"]) is done


def test_only_what_was_posted_is_marked():
    s = status(actions=[action(2, 0)])
    partly = mark_announced(s, ["u2/opened"])
    assert [a.key for a in pending_announcements(partly)] == ["u2/action/2-featureflag-0"]


def test_a_closed_incident_from_before_uids_owes_nothing():
    legacy = Incident(number=1, detected_at=at(0), closed=True)
    assert pending_announcements(GuardStatus(incident=legacy, actions=[action(1, 0)])) == []
    assert pending_announcements(GuardStatus()) == []


def test_an_open_incident_from_before_uids_is_keyed_by_its_number():
    legacy = Incident(number=1, detected_at=at(0))
    owed = pending_announcements(GuardStatus(incident=legacy))
    assert [a.key for a in owed] == ["incident-1/opened"]


def test_the_announced_list_is_bounded():
    s = mark_announced(GuardStatus(), [f"k{i}" for i in range(MAX_ANNOUNCED + 10)])
    assert len(s.announced) == MAX_ANNOUNCED and s.announced[-1] == f"k{MAX_ANNOUNCED + 9}"
