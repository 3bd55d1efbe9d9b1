"""decide(): confirming a breach, opening, recovering from and closing an incident
(track_incident, note_recovery).

Each tick runs the real evaluate() on canned answers, as the service does, so these
tests read as a timeline: breaching at 0 s, confirmed at 15 s, a step applied at 16 s
(tests/unit/guard_ticks.py).
"""

from releaseguard.domain.models import ActionResult, GuardStatus, Incident, Phase, Verdict
from releaseguard.domain.plan import Apply
from unit.builders import HEALTHY, NO_DATA, T0, apply_planned, at, guard_spec, tick
from unit.guard_ticks import SPEC, condition, confirmed, contained, reasons

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
    assert isinstance(decision.plan, Apply)
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


def test_status_incident_is_kept_after_it_closes():
    closed = Incident(number=4, detected_at=T0, closed=True)

    decision = tick(SPEC, GuardStatus(incident=closed), at(0), obs=HEALTHY)

    assert decision.status.incident == closed
    assert decision.status.last_evaluation.verdict is Verdict.HEALTHY
