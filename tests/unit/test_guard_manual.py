"""decide(): re-arm and contain-now annotations, and a new release re-arming the guard
(apply_manual_controls).

Each tick runs the real evaluate() on canned answers, as the service does, so these
tests read as a timeline: breaching at 0 s, confirmed at 15 s, a step applied at 16 s
(tests/unit/guard_ticks.py).
"""

from releaseguard.domain.conditions import Event
from releaseguard.domain.guard import CONTAIN_NOW, REARM
from releaseguard.domain.models import ActionResult, GuardStatus, Phase, StepType
from releaseguard.domain.plan import Apply, Exhausted
from unit.builders import (
    HEALTHY,
    RELEASE_A,
    action,
    apply_planned,
    at,
    feature_flag,
    guard_spec,
    rollback,
    tick,
)
from unit.guard_ticks import RELEASE_C, SPEC, condition, confirmed, contained, reasons

# ---------------------------------------------------------------- rearm annotation


def test_rearm_annotation_closes_the_incident_and_watches_again():
    decision = tick(SPEC, contained(), at(30), obs=HEALTHY, annotations={REARM: "1"})

    assert decision.status.phase is Phase.WATCHING
    assert decision.status.incident.closed is True
    assert decision.status.handled_annotations == {REARM: "1"}
    assert ("Normal", "Rearmed") in reasons(decision)
    assert condition(decision.status, "Contained").status == "False"


def test_rearm_annotation_is_acted_on_once_per_value():
    rearmed = tick(SPEC, contained(), at(30), obs=HEALTHY, annotations={REARM: "1"}).status
    first = tick(SPEC, rearmed, at(45), annotations={REARM: "1"})
    second = tick(SPEC, first.status, at(60), annotations={REARM: "1"})

    assert second.status.incident.number == 2
    assert second.status.incident.closed is False
    assert second.status.phase is Phase.BREACHING

    third = tick(SPEC, second.status, at(75), annotations={REARM: "2"})

    assert third.status.incident.number == 2
    assert third.status.incident.closed is True
    assert third.status.handled_annotations == {REARM: "2"}


def test_rearm_while_still_breaching_counts_again_before_acting():
    rearmed = tick(SPEC, contained(), at(30), annotations={REARM: "1"})

    assert rearmed.status.phase is Phase.WATCHING
    assert rearmed.plan is None
    assert rearmed.status.incident.number == 1
    assert rearmed.status.last_evaluation.consecutive_breaches == 0
    assert condition(rearmed.status, "Breached").status == "False"

    counting = tick(SPEC, rearmed.status, at(45), annotations={REARM: "1"})
    again = tick(SPEC, counting.status, at(60), annotations={REARM: "1"})

    assert counting.status.phase is Phase.WATCHING
    assert again.status.incident.number == 2
    assert again.status.incident.detected_at == at(45)


def test_rearm_without_an_incident_only_resets_the_count():
    counting = tick(SPEC, GuardStatus(), at(0))

    decision = tick(SPEC, counting.status, at(15), annotations={REARM: "x"})

    assert decision.status.incident is None
    assert decision.status.last_evaluation.consecutive_breaches == 0
    assert decision.status.handled_annotations == {REARM: "x"}
    assert "Rearmed" not in [r for _, r in reasons(decision)]


# ---------------------------------------------------------------- contain-now annotation


def test_contain_now_opens_an_incident_without_a_breach():
    watching = tick(SPEC, GuardStatus(), at(0), obs=HEALTHY).status

    decision = tick(SPEC, watching, at(15), obs=HEALTHY, annotations={CONTAIN_NOW: "x"})

    assert decision.status.incident.number == 1
    assert decision.status.incident.detected_at == at(15)
    assert decision.status.incident.reason == f"manual {CONTAIN_NOW}=x"
    assert decision.reason == f"manual {CONTAIN_NOW}=x"
    assert decision.status.phase is Phase.BREACHING
    assert isinstance(decision.plan, Apply)
    assert decision.plan.index == 0
    assert decision.status.handled_annotations == {CONTAIN_NOW: "x"}


def test_contain_now_is_acted_on_once_per_value():
    watching = tick(SPEC, GuardStatus(), at(0), obs=HEALTHY).status
    manual = tick(SPEC, watching, at(15), obs=HEALTHY, annotations={CONTAIN_NOW: "x"})
    status = apply_planned(manual, at(16)).status

    same = tick(SPEC, status, at(120), obs=HEALTHY, annotations={CONTAIN_NOW: "x"})
    new = tick(SPEC, same.status, at(135), obs=HEALTHY, annotations={CONTAIN_NOW: "y"})

    assert same.plan is None
    assert new.plan.index == 1
    assert new.reason == f"manual {CONTAIN_NOW}=y"


def test_contain_now_bypasses_the_escalation_wait():
    decision = tick(SPEC, contained(), at(30), annotations={CONTAIN_NOW: "now"})

    assert isinstance(decision.plan, Apply)
    assert decision.plan.index == 1


def test_contain_now_applied_stays_contained():
    watching = tick(SPEC, GuardStatus(), at(0), obs=HEALTHY).status
    manual = tick(SPEC, watching, at(15), obs=HEALTHY, annotations={CONTAIN_NOW: "x"})
    status = apply_planned(manual, at(16)).status

    later = tick(SPEC, status, at(30), obs=HEALTHY, annotations={CONTAIN_NOW: "x"})

    assert later.status.phase is Phase.CONTAINED
    assert later.status.incident.closed is False


# ---------------------------------------------------------------- new release re-arms


def test_new_release_by_someone_else_rearms_the_guard():
    decision = tick(SPEC, contained(), at(30), target=RELEASE_C)

    assert decision.status.incident.closed is True
    assert decision.status.phase is Phase.WATCHING
    assert decision.plan is None
    assert decision.status.last_evaluation.consecutive_breaches == 0
    assert decision.events[0] == Event(
        "Normal", "Rearmed", "new release (revision 9) re-armed the guard"
    )
    assert decision.status.release.pod_template_hash == "ccc"


def test_new_release_must_breach_again_before_the_guard_acts():
    rearmed = tick(SPEC, contained(), at(30), target=RELEASE_C).status

    first = tick(SPEC, rearmed, at(45), target=RELEASE_C)
    second = tick(SPEC, first.status, at(60), target=RELEASE_C)

    assert first.status.phase is Phase.WATCHING
    assert second.status.incident.number == 2
    assert second.status.incident.detected_at == at(45)


def test_own_rollback_does_not_rearm_the_guard():
    spec = guard_spec(steps=[rollback()])
    status = contained(spec, after={"revision": "7", "podTemplateHash": "aaa"})

    decision = tick(spec, status, at(30), obs=HEALTHY, target=RELEASE_A)

    assert decision.status.incident.closed is False
    assert decision.status.phase is Phase.CONTAINED
    assert "Rearmed" not in [r for _, r in reasons(decision)]
    assert decision.status.release.pod_template_hash == "aaa"


def test_own_rollback_does_not_make_the_guard_act_again():
    spec = guard_spec(steps=[rollback()])
    status = contained(spec, after={"revision": "7", "podTemplateHash": "aaa"})

    decision = tick(spec, status, at(300), target=RELEASE_A)

    assert decision.status.incident.number == 1
    assert decision.status.phase is Phase.EXHAUSTED  # the only step was taken
    assert isinstance(decision.plan, Exhausted)


def test_own_rollback_recovered_after_a_restart_does_not_rearm_the_guard():
    # The process applied the rollback and died before recording it: the Deployment now
    # runs the rolled-back template, and only the object's marker knows why.
    spec = guard_spec(steps=[feature_flag(), rollback()])
    status = contained(spec)
    lost = action(
        1,
        1,
        time=at(80),
        type_=StepType.ROLLBACK,
        after={"revision": "7", "podTemplateHash": "aaa"},
    )

    decision = tick(spec, status, at(90), obs=HEALTHY, target=RELEASE_A, recovered=(lost,))

    assert decision.status.incident.closed is False
    assert decision.status.phase is Phase.CONTAINED
    assert [a.id for a in decision.status.actions] == ["1-featureflag-0", "1-rollback-1"]
    assert "Rearmed" not in [r for _, r in reasons(decision)]


def test_a_failed_rollback_does_not_hide_a_new_release():
    spec = guard_spec(steps=[rollback()])
    failed = apply_planned(
        confirmed(spec), at(16), ActionResult.FAILED, after={"podTemplateHash": "ccc"}
    ).status

    decision = tick(spec, failed, at(30), target=RELEASE_C)

    assert decision.status.incident.closed is True
