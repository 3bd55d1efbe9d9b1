"""When a guard evaluates next, and whether a confirming evaluation saw anything new.

Pure: a function of the spec and the status; no I/O, no clock (the times compared are
the evaluations' own).

Why it exists: a breach is confirmed after consecutiveBreaches breaching evaluations in a
row, so that a single spike confirms nothing. Waiting a whole intervalSeconds between
those evaluations is pure delay once a breach is suspected, so while one is being
counted the next evaluation runs confirmIntervalSeconds later instead. Everything else
keeps intervalSeconds: a healthy guard costs what it always did, and escalation inside an
open incident keeps its cadence.

A confirmation is only evidence if it sees new samples. The operator cannot know the
scrape interval behind an arbitrary query, so it looks for the symptom instead: a
confirming evaluation whose answers are exactly the previous evaluation's answers.
"""

from __future__ import annotations

from datetime import datetime

from releaseguard.domain.models import GuardSpec, GuardStatus, LastEvaluation, Phase, Verdict


def counting_breach(spec: GuardSpec, status: GuardStatus) -> bool:
    """Whether the guard suspects a breach it has not confirmed: its last evaluation
    breached, the count is still below consecutiveBreaches, and no incident is open.

    NoData and InsufficientTraffic hold the count but are not breaches: they carry no
    evidence, and a failing Prometheus should not be queried faster, so they go back to
    intervalSeconds.
    """
    last = status.last_evaluation
    return (
        status.phase is Phase.WATCHING
        and last is not None
        and last.verdict is Verdict.BREACH
        and 0 < last.consecutive_breaches < spec.consecutive_breaches
    )


def next_evaluation_delay(spec: GuardSpec, status: GuardStatus) -> float:
    """Seconds from this evaluation's due time to the next one's, given the status this
    evaluation produced."""
    if spec.confirm_interval_seconds is not None and counting_breach(spec, status):
        return float(spec.confirm_interval_seconds)
    return float(spec.interval_seconds)


def _answers(evaluation: LastEvaluation) -> tuple[object, ...]:
    return (
        evaluation.traffic,
        tuple((m.name, m.value, m.baseline) for m in evaluation.metrics),
    )


def stale_confirmation(
    spec: GuardSpec, previous: GuardStatus, current: LastEvaluation
) -> str | None:
    """A warning when `current`, an evaluation run on the confirmation cadence, breached
    with exactly the answers of the evaluation before it; else None.

    Identical answers are what a query returns when Prometheus has no new sample since:
    a ratio of rates, a gauge or an irate() over the same samples gives the same number.
    They can also come from a series that really is constant (a gauge stuck at one
    value), so the warning says "probably". It is only looked for when
    confirmIntervalSeconds is set: without it the cadence, and the Events, are what they
    always were.
    """
    last = previous.last_evaluation
    if (
        spec.confirm_interval_seconds is None
        or last is None
        or not counting_breach(spec, previous)
        or current.verdict is not Verdict.BREACH
        or not any(m.value is not None for m in current.metrics)
        or _answers(current) != _answers(last)
    ):
        return None
    values = ", ".join(f"{m.name} {m.value:g}" for m in current.metrics if m.value is not None)
    gap = _seconds(last.time, current.time)
    return (
        f"the confirming evaluation {gap:g}s after the previous one got exactly the same "
        f"answers ({values}): Prometheus probably had no new samples, so it added no "
        f"evidence. Set spec.confirmIntervalSeconds (now {spec.confirm_interval_seconds}) "
        "to at least the scrape interval of the queried series."
    )


def _seconds(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds(), 1)
