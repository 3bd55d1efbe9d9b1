"""must_write(): which evaluations are written to the API server, on real ticks."""

from datetime import timedelta

from releaseguard.domain.guard import decide_inactive
from releaseguard.domain.models import GuardStatus, Phase
from releaseguard.domain.observations import Observations
from releaseguard.domain.writes import Stored, must_write
from unit.builders import BREACHING, HEALTHY, NO_DATA, at, guard_spec, tick, value

SPEC = guard_spec()
HEARTBEAT = timedelta(seconds=60)


def steady() -> Stored:
    """A guard watching a healthy release, as written at 0 s."""
    first = tick(SPEC, GuardStatus(), at(0), obs=HEALTHY).status
    return Stored(tick(SPEC, first, at(0), obs=HEALTHY).status, written_at=at(0))


def test_an_unknown_or_inherited_status_is_written():
    status = steady().status
    assert must_write(None, status, at(0), HEARTBEAT)
    assert must_write(Stored(status), status, at(0), HEARTBEAT)


def test_an_unchanging_inactive_guard_is_rewritten_only_per_heartbeat():
    status = decide_inactive(
        steady().status, Phase.SUSPENDED, "Suspended", "spec.suspend is true", 1, at(0)
    ).status
    stored = Stored(status, written_at=at(100))
    again = decide_inactive(
        status, Phase.SUSPENDED, "Suspended", "spec.suspend is true", 1, at(110)
    )
    assert not must_write(stored, again.status, at(110), HEARTBEAT)
    assert must_write(stored, again.status, at(160), HEARTBEAT)


def test_a_steady_evaluation_waits_for_the_heartbeat_even_when_values_move():
    stored = steady()
    moved = Observations(metrics={"error-rate": value(0.007)})
    heartbeat = timedelta(seconds=30)  # due before the release turns known-good (60 s)
    at_29 = tick(SPEC, stored.status, at(29), obs=moved).status
    assert at_29.last_evaluation is not None
    assert at_29.last_evaluation.metrics[0].value == 0.007
    assert not must_write(stored, at_29, at(29), heartbeat)
    at_30 = tick(SPEC, stored.status, at(30), obs=moved).status
    assert must_write(stored, at_30, at(30), heartbeat)


def test_a_release_turning_known_good_is_written_at_once():
    stored = steady()
    known_good = tick(SPEC, stored.status, at(60), obs=HEALTHY).status
    assert known_good.last_known_good is not None and stored.status.last_known_good is None
    assert must_write(stored, known_good, at(60), timedelta(hours=1))


def test_a_first_breach_is_written_at_once():
    stored = steady()
    breach = tick(SPEC, stored.status, at(10), obs=BREACHING).status
    assert must_write(stored, breach, at(10), HEARTBEAT)


def test_every_step_of_a_breach_count_is_written():
    first = tick(SPEC, steady().status, at(10), obs=BREACHING).status
    assert first.last_evaluation is not None
    assert first.last_evaluation.consecutive_breaches == 1
    stored = Stored(first, written_at=at(10))
    confirmed = tick(SPEC, first, at(20), obs=BREACHING).status
    assert must_write(stored, confirmed, at(20), HEARTBEAT)


def test_losing_the_data_is_written_at_once():
    stored = steady()
    assert must_write(
        stored, tick(SPEC, stored.status, at(10), obs=NO_DATA).status, at(10), HEARTBEAT
    )


def test_a_zero_heartbeat_writes_every_evaluation():
    stored = steady()
    same = tick(SPEC, stored.status, at(10), obs=HEALTHY).status
    assert not must_write(stored, same, at(10), HEARTBEAT)
    assert must_write(stored, same, at(10), timedelta(0))
