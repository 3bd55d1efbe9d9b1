"""decide() and record_action(): one tick of a guard's lifecycle, on a fixed clock.

Each tick runs the real evaluate() on canned answers, as the service does, so these
tests read as a timeline: breaching at 0 s, confirmed at 15 s, a step applied at 16 s.
"""

import pytest

from releaseguard.domain.evaluate import evaluate
from releaseguard.domain.guard import (
    CONTAIN_NOW,
    REARM,
    Event,
    TargetFacts,
    decide,
    decide_inactive,
    set_condition,
)
from releaseguard.domain.models import (
    MAX_ACTIONS,
    ActionResult,
    Condition,
    GuardStatus,
    Incident,
    KnownGood,
    Phase,
    StepReadiness,
    StepType,
    Verdict,
)
from releaseguard.domain.plan import PlanKind
from unit.builders import (
    HEALTHY,
    NO_DATA,
    RELEASE_A,
    RELEASE_B,
    T0,
    action,
    apply_planned,
    at,
    feature_flag,
    guard_spec,
    ready,
    rollback,
    tick,
)

SPEC = guard_spec()  # consecutiveBreaches 2, escalate 60 s, steps: FeatureFlag[0], Rollback[1]
RELEASE_C = TargetFacts(
    revision="9", pod_template_hash="ccc", images=("checkout:1.43",), available=True
)
NOTHING_READY = ready(SPEC, s0="flag new-flow is already 'false'", s1="no known-good revision")


def condition(status, type_):
    return next(c for c in status.conditions if c.type == type_)


def reasons(decision):
    return [(e.type, e.reason) for e in decision.events]


def confirmed(spec=SPEC, readiness=None, status=None):
    """Breaching at 0 s (count 1), confirmed at 15 s: the incident opens."""
    first = tick(spec, status or GuardStatus(), at(0), readiness=readiness)
    return tick(spec, first.status, at(15), readiness=readiness)


def contained(spec=SPEC, after=None):
    """Confirmed at 15 s, the cheapest step applied at 16 s."""
    return apply_planned(confirmed(spec), at(16), after=after).status


# ---------------------------------------------------------------- watching and confirming


def test_breach_below_the_count_is_watching_with_the_count_shown():
    decision = tick(SPEC, GuardStatus(), at(0))

    assert decision.status.phase is Phase.WATCHING
    assert decision.status.last_evaluation.consecutive_breaches == 1
    assert decision.status.incident is None
    assert decision.plan is None
    breached = condition(decision.status, "Breached")
    assert (breached.status, breached.reason) == ("False", "Counting")
    assert breached.message == (
        "1 of 2 breaching evaluations: error-rate 0.31 > 0.05 for 1 evaluation"
    )


def test_first_evaluation_is_a_quiet_start():
    decision = tick(SPEC, GuardStatus(), at(0), obs=HEALTHY)

    assert decision.status.phase is Phase.WATCHING
    assert decision.events == ()


def test_single_spike_does_not_open_an_incident():
    spike = tick(SPEC, GuardStatus(), at(0))
    calm = tick(SPEC, spike.status, at(15), obs=HEALTHY)
    spike_again = tick(SPEC, calm.status, at(30))

    assert [d.status.phase for d in (spike, calm, spike_again)] == [Phase.WATCHING] * 3
    assert spike_again.status.incident is None


def test_confirmed_breach_opens_incident_one_and_plans_the_cheapest_step():
    decision = confirmed()

    incident = decision.status.incident
    assert incident.number == 1
    assert incident.detected_at == at(0)  # breachingSince, not the confirming tick
    assert incident.confirmed_at == at(15)
    assert incident.reason == "error-rate 0.31 > 0.05 for 2 evaluations"
    assert decision.status.phase is Phase.BREACHING
    assert decision.plan.kind is PlanKind.APPLY
    assert (decision.plan.index, decision.plan.action_id) == (0, "1-featureflag-0")
    assert decision.reason == "error-rate 0.31 > 0.05 for 2 evaluations"
    assert reasons(decision) == [("Warning", "BreachConfirmed"), ("Normal", "Breaching")]
    assert condition(decision.status, "Breached").status == "True"
    assert condition(decision.status, "Contained").status == "False"


def test_no_data_under_hold_never_opens_an_incident():
    status = tick(SPEC, GuardStatus(), at(0)).status
    for t in (15, 30, 45):
        decision = tick(SPEC, status, at(t), obs=NO_DATA)
        status = decision.status

    assert status.phase is Phase.WATCHING
    assert status.last_evaluation.consecutive_breaches == 1
    assert condition(status, "MetricsAvailable").status == "False"


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


# ---------------------------------------------------------------- recovery


def test_contained_guard_stays_contained_after_recovery():
    recovered = tick(SPEC, contained(), at(30), obs=HEALTHY)
    later = tick(SPEC, recovered.status, at(45), obs=HEALTHY)

    assert recovered.status.phase is Phase.CONTAINED
    assert recovered.status.incident.recovered_at == at(30)
    assert recovered.status.incident.closed is False
    assert reasons(recovered) == [("Normal", "Recovered")]
    assert later.status.phase is Phase.CONTAINED
    assert later.status.incident.recovered_at == at(30)
    assert later.events == ()
    assert condition(later.status, "Contained").status == "True"
    assert condition(later.status, "Breached").status == "False"


def test_contained_guard_never_undoes_its_step_when_healthy():
    decision = tick(SPEC, contained(), at(3600), obs=HEALTHY)

    assert decision.plan is None


def test_dry_run_incident_closes_itself_when_healthy_again():
    dry = apply_planned(confirmed(), at(16), ActionResult.DRY_RUN).status

    waiting = tick(SPEC, dry, at(30))
    healthy = tick(SPEC, waiting.status, at(45), obs=HEALTHY)

    assert waiting.status.phase is Phase.BREACHING
    assert waiting.plan is None  # the DryRun record waits like an applied step
    assert healthy.status.phase is Phase.WATCHING
    assert healthy.status.incident.closed is True
    assert healthy.status.incident.recovered_at == at(45)
    assert ("Normal", "Watching") in reasons(healthy)
    assert condition(healthy.status, "Contained").status == "False"


def test_dry_run_that_recorded_every_step_stays_breaching_without_exhaustion():
    spec = guard_spec(dryRun=True)
    first = apply_planned(confirmed(spec), at(16), ActionResult.DRY_RUN)
    second = apply_planned(tick(spec, first.status, at(80)), at(80), ActionResult.DRY_RUN)

    done = tick(spec, second.status, at(150))

    assert done.status.phase is Phase.BREACHING
    assert done.plan is None
    assert done.status.message.startswith("dry run: plan complete")
    assert not any(e.reason == "Exhausted" for e in done.events)


def test_after_a_closed_incident_the_next_breach_opens_incident_two():
    dry = apply_planned(confirmed(), at(16), ActionResult.DRY_RUN).status
    closed = tick(SPEC, dry, at(30), obs=HEALTHY).status

    again = tick(SPEC, tick(SPEC, closed, at(45)).status, at(60))

    assert again.status.incident.number == 2
    assert again.status.incident.detected_at == at(45)
    assert again.plan.action_id == "2-featureflag-0"


# ---------------------------------------------------------------- exhausted


def test_nothing_applicable_is_exhausted_with_one_warning():
    decision = confirmed(readiness=NOTHING_READY)

    assert decision.status.phase is Phase.EXHAUSTED
    assert decision.plan.kind is PlanKind.EXHAUSTED
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
    assert decision.plan.kind is PlanKind.APPLY
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

    assert decision.plan.kind is PlanKind.APPLY
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
    assert decision.plan.kind is PlanKind.EXHAUSTED


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


# ---------------------------------------------------------------- lastKnownGood


def healthy_run(times, target=RELEASE_A, obs=HEALTHY, status=None, spec=SPEC):
    status = status or GuardStatus()
    for t in times:
        status = tick(spec, status, at(t), obs=obs, target=target).status
    return status


@pytest.mark.parametrize(
    ("times", "promoted"),
    [
        pytest.param([0, 15, 30, 45], False, id="not-before-known-good-after-seconds"),
        pytest.param([0, 15, 30, 45, 60], True, id="at-known-good-after-seconds"),
        pytest.param([0, 60, 120], True, id="sparse-ticks"),
    ],
)
def test_known_good_is_promoted_after_sustained_health(times, promoted):
    status = healthy_run(times)

    if promoted:
        assert status.last_known_good == KnownGood(
            revision="7", images=["checkout:1.41"], pod_template_hash="aaa", since=at(60)
        )
    else:
        assert status.last_known_good is None


def test_known_good_needs_the_deployment_available():
    unavailable = TargetFacts(**{**RELEASE_A.__dict__, "available": False})

    status = healthy_run([0, 60, 120], target=unavailable)

    assert status.last_known_good is None


def test_a_breach_restarts_the_known_good_clock():
    status = healthy_run([0, 30])
    status = tick(SPEC, status, at(45)).status
    status = healthy_run([50, 100], status=status)

    assert status.last_known_good is None
    assert healthy_run([110], status=status).last_known_good.since == at(110)


def test_no_data_neither_starts_nor_resets_the_known_good_clock():
    status = healthy_run([0, 30], obs=NO_DATA)
    assert status.release.healthy_since is None

    status = healthy_run([40, 50], status=status)
    status = healthy_run([70, 100], status=status, obs=NO_DATA)

    assert status.last_known_good.since == at(100)


def test_known_good_is_not_promoted_during_an_open_incident():
    status = healthy_run([30, 120, 300], target=RELEASE_B, status=contained())

    assert status.phase is Phase.CONTAINED
    assert status.last_known_good is None


def test_health_during_an_incident_does_not_count_after_rearm():
    # Contained at 16 s and healthy since 30 s; a human re-arms at 300 s. The release was
    # healthy only because it was contained: it must prove itself again before it is good.
    status = healthy_run([30, 120], target=RELEASE_B, status=contained())

    rearmed = tick(
        SPEC, status, at(300), obs=HEALTHY, target=RELEASE_B, annotations={REARM: "1"}
    ).status
    soon = tick(SPEC, rearmed, at(330), obs=HEALTHY, target=RELEASE_B).status
    later = tick(SPEC, soon, at(360), obs=HEALTHY, target=RELEASE_B).status

    assert rearmed.last_known_good is None
    assert soon.last_known_good is None
    assert later.last_known_good.pod_template_hash == "bbb"
    assert later.last_known_good.since == at(360)


def test_new_release_replaces_known_good_only_once_it_is_good():
    good = healthy_run([0, 60])
    assert good.last_known_good.pod_template_hash == "aaa"

    status = healthy_run([75, 120], target=RELEASE_B, status=good)
    assert status.last_known_good.pod_template_hash == "aaa"

    status = healthy_run([135], target=RELEASE_B, status=status)
    assert status.last_known_good.pod_template_hash == "bbb"
    assert status.last_known_good.revision == "8"


def test_same_template_renumbered_by_a_rollout_keeps_known_good_and_updates_revision():
    good = healthy_run([0, 60])
    renumbered = TargetFacts(**{**RELEASE_A.__dict__, "revision": "10"})

    status = healthy_run([75], target=renumbered, status=good)

    assert status.last_known_good.revision == "10"
    assert status.last_known_good.since == at(60)


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

    decision = decide(spec, status, evaluation, RELEASE_A, readiness, [], {}, 1, T0)

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


def test_status_incident_is_kept_after_it_closes():
    closed = Incident(number=4, detected_at=T0, closed=True)

    decision = tick(SPEC, GuardStatus(incident=closed), at(0), obs=HEALTHY)

    assert decision.status.incident == closed
    assert decision.status.last_evaluation.verdict is Verdict.HEALTHY
