"""next_evaluation_delay() and stale_confirmation(): the confirmation cadence, on a fixed
clock.

The timelines run the real evaluate() and decide() as the service does, and advance the
clock by the delay the schedule asks for, so they read as what the operator would do.
"""

import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from releaseguard.domain.confirmation import (
    counting_breach,
    next_evaluation_delay,
    stale_confirmation,
)
from releaseguard.domain.guard import Decision
from releaseguard.domain.models import (
    GuardSpec,
    GuardStatus,
    Incident,
    LastEvaluation,
    MetricEvaluation,
    MetricVerdict,
    Phase,
    Verdict,
)
from releaseguard.domain.observations import Observations
from unit.builders import BREACHING, EMPTY, HEALTHY, NO_DATA, T0, at, guard_spec, tick, value

FAST = guard_spec(intervalSeconds=15, confirmIntervalSeconds=2)  # consecutiveBreaches 2
DEFAULT = guard_spec(intervalSeconds=15)


def watching(count: int, verdict: Verdict | None = None, phase: Phase = Phase.WATCHING):
    if verdict is None:
        verdict = Verdict.BREACH if count else Verdict.HEALTHY
    last = LastEvaluation(time=T0, verdict=verdict, consecutive_breaches=count)
    return GuardStatus(phase=phase, last_evaluation=last)


def breach_answer(x: float) -> Observations:
    return Observations(metrics={"error-rate": value(x)})


# ---------------------------------------------------------------- the delay, case by case


@pytest.mark.parametrize(
    ("spec", "status", "delay"),
    [
        pytest.param(FAST, GuardStatus(), 15, id="never-evaluated"),
        pytest.param(FAST, watching(0), 15, id="healthy"),
        pytest.param(FAST, watching(1), 2, id="first-breach-of-two"),
        pytest.param(DEFAULT, watching(1), 15, id="first-breach-without-confirm-interval"),
        pytest.param(FAST, watching(2, phase=Phase.BREACHING), 15, id="confirmed-incident-open"),
        pytest.param(
            FAST, watching(1, phase=Phase.CONTAINED), 15, id="counting-again-while-contained"
        ),
        pytest.param(FAST, watching(1, Verdict.NO_DATA), 15, id="no-data-holds-the-count"),
        pytest.param(
            FAST, watching(1, Verdict.INSUFFICIENT_TRAFFIC), 15, id="low-traffic-holds-the-count"
        ),
        pytest.param(FAST, watching(1, phase=Phase.INVALID), 15, id="invalid"),
        pytest.param(FAST, watching(1, phase=Phase.SUSPENDED), 15, id="suspended"),
        pytest.param(
            guard_spec(intervalSeconds=15, confirmIntervalSeconds=2, consecutiveBreaches=1),
            watching(1, phase=Phase.BREACHING),
            15,
            id="one-breach-confirms-at-once",
        ),
        pytest.param(
            guard_spec(intervalSeconds=15, confirmIntervalSeconds=2, consecutiveBreaches=3),
            watching(2),
            2,
            id="second-breach-of-three",
        ),
        pytest.param(
            guard_spec(intervalSeconds=1, confirmIntervalSeconds=30),
            watching(1),
            30,
            id="longer-than-the-interval-waits-for-new-samples",
        ),
    ],
)
def test_next_evaluation_delay(spec: GuardSpec, status: GuardStatus, delay: float) -> None:
    assert next_evaluation_delay(spec, status) == delay


def test_confirm_interval_defaults_to_none_which_keeps_the_interval() -> None:
    assert DEFAULT.confirm_interval_seconds is None
    assert next_evaluation_delay(DEFAULT, watching(1)) == DEFAULT.interval_seconds


def test_confirm_interval_below_one_second_is_rejected() -> None:
    with pytest.raises(ValueError, match="confirmIntervalSeconds"):
        guard_spec(confirmIntervalSeconds=0)


def test_counting_breach_needs_the_count_below_consecutive_breaches() -> None:
    assert counting_breach(FAST, watching(1))
    assert not counting_breach(FAST, watching(2))
    assert not counting_breach(FAST, watching(0))


# ---------------------------------------------------------------- timelines


def run(
    spec: GuardSpec, answers: Sequence[Observations], start: datetime = T0
) -> list[tuple[float, Decision]]:
    """Evaluate each answer in turn, each at the time the previous one scheduled it; the
    (seconds since start, decision) of every evaluation."""
    status, now, seen = GuardStatus(), start, []
    for obs in answers:
        decision = tick(spec, status, now, obs=obs)
        seen.append(((now - start).total_seconds(), decision))
        status = decision.status
        now += timedelta(seconds=next_evaluation_delay(spec, status))
    return seen


def test_a_sustained_breach_is_confirmed_one_confirm_interval_after_the_first_breach() -> None:
    seen = run(FAST, [HEALTHY, breach_answer(0.2), breach_answer(0.3)])

    times = [t for t, _ in seen]
    assert times == [0, 15, 17]
    incident = seen[-1][1].status.incident
    assert incident is not None
    assert incident.detected_at == at(15) and incident.confirmed_at == at(17)
    assert seen[-1][1].status.phase is Phase.BREACHING


def test_without_confirm_interval_the_confirmation_waits_a_whole_interval() -> None:
    seen = run(DEFAULT, [HEALTHY, breach_answer(0.2), breach_answer(0.3)])

    assert [t for t, _ in seen] == [0, 15, 30]
    assert seen[-1][1].status.incident is not None


def test_a_single_spike_confirms_nothing_and_the_cadence_goes_back_to_the_interval() -> None:
    seen = run(FAST, [HEALTHY, BREACHING, HEALTHY, HEALTHY])

    assert [t for t, _ in seen] == [0, 15, 17, 32]
    assert all(d.status.incident is None for _, d in seen)
    assert all(d.status.phase is Phase.WATCHING for _, d in seen)


@pytest.mark.parametrize("spec", [FAST, DEFAULT], ids=["confirm-interval-2", "default"])
def test_a_flapping_metric_never_confirms_under_two_consecutive_breaches(
    spec: GuardSpec,
) -> None:
    """breach, healthy, breach, healthy, ...: every breach is checked again soon, and every
    check is healthy, so the count never reaches 2."""
    answers = [breach_answer(0.2 + i / 100) if i % 2 == 0 else HEALTHY for i in range(40)]
    seen = run(spec, answers)

    counts = [d.status.last_evaluation.consecutive_breaches for _, d in seen]
    assert counts == [1, 0] * 20
    assert all(d.status.incident is None and d.plan is None for _, d in seen)
    assert all(d.status.phase is Phase.WATCHING for _, d in seen)
    assert not any(e.reason == "BreachConfirmed" for _, d in seen for e in d.events)
    gaps = {round(b - a) for (a, _), (b, _) in itertools.pairwise(seen)}
    short = spec.confirm_interval_seconds or spec.interval_seconds
    assert gaps == {short, spec.interval_seconds}


def test_no_data_while_counting_holds_the_count_at_the_normal_interval() -> None:
    seen = run(FAST, [BREACHING, NO_DATA, breach_answer(0.4)])

    assert [t for t, _ in seen] == [0, 2, 17]
    assert [d.status.last_evaluation.verdict for _, d in seen] == [
        Verdict.BREACH,
        Verdict.NO_DATA,
        Verdict.BREACH,
    ]
    assert seen[-1][1].status.incident is not None  # held, then counted: 2 in a row


def test_escalation_inside_an_incident_keeps_the_interval() -> None:
    contained = GuardStatus(
        phase=Phase.CONTAINED,
        incident=Incident(number=1, detected_at=T0, confirmed_at=T0),
        last_evaluation=LastEvaluation(time=T0, verdict=Verdict.BREACH, consecutive_breaches=5),
    )
    assert next_evaluation_delay(FAST, contained) == 15


# ---------------------------------------------------------------- stale confirmations


def stale_events(decision: Decision) -> list[str]:
    return [e.message for e in decision.events if e.reason == "StaleConfirmation"]


def test_identical_confirming_answers_post_a_warning_naming_the_field() -> None:
    first = tick(FAST, GuardStatus(), at(0), obs=breach_answer(0.31))
    second = tick(FAST, first.status, at(2), obs=breach_answer(0.31))

    (message,) = stale_events(second)
    assert ("Warning", "StaleConfirmation") in [(e.type, e.reason) for e in second.events]
    assert "error-rate 0.31" in message and "2s after" in message
    assert "spec.confirmIntervalSeconds (now 2)" in message
    assert "scrape interval" in message
    assert second.status.incident is not None  # a warning, not a veto


@pytest.mark.parametrize(
    ("spec", "first", "second"),
    [
        pytest.param(FAST, breach_answer(0.31), breach_answer(0.32), id="new-value"),
        pytest.param(DEFAULT, breach_answer(0.31), breach_answer(0.31), id="not-opted-in"),
        pytest.param(FAST, HEALTHY, HEALTHY, id="healthy-twice"),
        pytest.param(FAST, breach_answer(0.31), HEALTHY, id="spike"),
        pytest.param(
            guard_spec(confirmIntervalSeconds=2, noData="Breach"),
            Observations(metrics={"error-rate": EMPTY}),
            Observations(metrics={"error-rate": EMPTY}),
            id="no-values-to-compare",
        ),
        pytest.param(
            guard_spec(confirmIntervalSeconds=2, minTraffic={"query": "traffic", "min": 1}),
            Observations(metrics={"error-rate": value(0.31)}, traffic=value(200)),
            Observations(metrics={"error-rate": value(0.31)}, traffic=value(201)),
            id="traffic-moved",
        ),
    ],
)
def test_no_stale_warning(spec: GuardSpec, first: Observations, second: Observations) -> None:
    one = tick(spec, GuardStatus(), at(0), obs=first)
    two = tick(spec, one.status, at(2), obs=second)

    assert stale_events(one) == [] and stale_events(two) == []


def test_answers_after_the_confirmation_are_not_checked() -> None:
    """Once confirmed the guard is on its normal cadence: equal answers mean nothing."""
    spec = guard_spec(confirmIntervalSeconds=2, consecutiveBreaches=1)
    one = tick(spec, GuardStatus(), at(0), obs=breach_answer(0.31))
    two = tick(spec, one.status, at(15), obs=breach_answer(0.31))

    assert stale_events(two) == []


def test_stale_confirmation_compares_baselines_too() -> None:
    spec = guard_spec(
        confirmIntervalSeconds=2,
        metrics=[{"name": "p99", "query": "p99", "baselineQuery": "base", "maxRatio": 1.5}],
    )

    def answer(baseline: float) -> Observations:
        return Observations(metrics={"p99": value(0.9)}, baselines={"p99": value(baseline)})

    one = tick(spec, GuardStatus(), at(0), obs=answer(0.2))
    moved = tick(spec, one.status, at(2), obs=answer(0.21))
    same = tick(spec, one.status, at(2), obs=answer(0.2))

    assert stale_events(moved) == []
    assert len(stale_events(same)) == 1


def test_stale_confirmation_reads_the_previous_evaluation_from_status() -> None:
    previous = watching(1)
    metric = MetricEvaluation(name="error-rate", verdict=MetricVerdict.BREACH, value=0.3)
    previous = previous.model_copy(
        update={
            "last_evaluation": previous.last_evaluation.model_copy(update={"metrics": [metric]})
        }
    )
    current = LastEvaluation(
        time=at(3), verdict=Verdict.BREACH, consecutive_breaches=2, metrics=[metric]
    )

    message = stale_confirmation(FAST, previous, current)
    assert message is not None and "3s after" in message
