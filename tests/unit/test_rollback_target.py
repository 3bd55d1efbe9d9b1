"""A Rollback never restores a template that breached, and keeps its planned target."""

from releaseguard.domain.changes import NotApplicable
from releaseguard.domain.models import (
    Blocker,
    GuardStatus,
    Incident,
    KnownGood,
    LastEvaluation,
    ReleaseObservation,
    RollbackStep,
    RollbackTarget,
    Verdict,
)
from releaseguard.domain.rollback_target import MAX_BREACHED, breached_templates, planned_target
from releaseguard.domain.steps.rollback import rollback_change
from unit.builders import T0, at, deployment, replica_set

PREVIOUS = RollbackStep(to_revision=RollbackTarget.PREVIOUS)
TO_KNOWN_GOOD = RollbackStep(to_revision=RollbackTarget.LAST_KNOWN_GOOD)
# 1 good (1.40), 2 bad (1.42, breached), 3 someone else's fix (1.43, current)
SETS = [
    replica_set(1, "good", "checkout:1.40"),
    replica_set(2, "bad", "checkout:1.42"),
    replica_set(3, "fix", "checkout:1.43"),
]


def test_previous_skips_the_template_that_breached_after_someone_elses_change():
    change = rollback_change(
        PREVIOUS, deployment(revision=3), SETS, None, None, avoid=["fix", "bad"]
    )
    assert change.after["podTemplateHash"] == "good"


def test_previous_without_a_clean_older_revision_is_not_applicable():
    # A human's `kubectl rollout undo` renumbered good to 3; only bad (2) is older.
    sets = [replica_set(3, "good", "checkout:1.40"), replica_set(2, "bad", "checkout:1.42")]
    change = rollback_change(
        PREVIOUS, deployment(revision=3), sets, None, None, avoid=["good", "bad"]
    )
    assert change == NotApplicable(
        "checkout has no previous revision that did not breach", Blocker.NO_PREVIOUS
    )


def test_known_good_that_breached_is_not_a_target():
    known = KnownGood(revision="2", since=T0, pod_template_hash="bad")
    change = rollback_change(
        TO_KNOWN_GOOD, deployment(revision=3), SETS, known, None, avoid=["bad"]
    )
    assert isinstance(change, NotApplicable) and "breached" in change.reason


def test_a_pinned_target_is_restored_whatever_previous_now_means():
    # Planned while 2 (bad) ran: target good. Someone else then wrote 3 (fix); a fresh
    # "Previous" would now be 2 (bad). The pinned target is still restored.
    change = rollback_change(PREVIOUS, deployment(revision=3), SETS, None, None, pinned_hash="good")
    assert change.after == {"revision": "1", "images": ["checkout:1.40"], "podTemplateHash": "good"}


def test_a_pinned_target_already_live_or_gone_or_breached_is_not_applicable():
    d = deployment(revision=3)
    assert isinstance(
        rollback_change(PREVIOUS, d, SETS, None, None, pinned_hash="fix"), NotApplicable
    )
    assert isinstance(
        rollback_change(PREVIOUS, d, SETS, None, None, pinned_hash="gone"), NotApplicable
    )
    breached = rollback_change(PREVIOUS, d, SETS, None, None, avoid=["good"], pinned_hash="good")
    assert isinstance(breached, NotApplicable)


def test_planned_target_reads_the_hash_from_the_change():
    assert planned_target({"podTemplateHash": "good"}) == "good"
    assert planned_target({}) is None


def counting_status(**fields):
    last = LastEvaluation(time=T0, verdict=Verdict.BREACH, consecutive_breaches=1)
    release = ReleaseObservation(revision="2", pod_template_hash="bad")
    return GuardStatus(last_evaluation=last, release=release, **fields)


def test_breached_templates_of_a_new_incident_include_the_release_counted_under():
    assert breached_templates(counting_status(), "fix") == ["fix", "bad"]
    assert breached_templates(GuardStatus(), "bad") == ["bad"]


def test_breached_templates_carry_the_previous_incident_except_a_proven_good_one():
    previous = Incident(
        number=1, detected_at=at(0), closed=True, breached_templates=["bad", "worse"]
    )
    known = KnownGood(revision="4", since=T0, pod_template_hash="worse")
    status = GuardStatus(incident=previous, last_known_good=known)
    assert breached_templates(status, "new") == ["new", "bad"]


def test_an_open_incident_keeps_its_own_list_and_the_list_is_bounded():
    open_ = Incident(number=1, detected_at=at(0), breached_templates=["bad"])
    assert breached_templates(GuardStatus(incident=open_), "fix") == ["bad"]
    many = Incident(
        number=1, detected_at=at(0), closed=True, breached_templates=[f"h{i}" for i in range(9)]
    )
    assert len(breached_templates(GuardStatus(incident=many), "x")) == MAX_BREACHED
