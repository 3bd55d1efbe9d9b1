"""decide(): following the release and promoting lastKnownGood (track_known_good).

Each tick runs the real evaluate() on canned answers, as the service does, so these
tests read as a timeline: breaching at 0 s, confirmed at 15 s, a step applied at 16 s
(tests/unit/guard_ticks.py).
"""

import pytest

from releaseguard.domain.guard import REARM, TargetFacts
from releaseguard.domain.models import GuardStatus, KnownGood, Phase
from unit.builders import HEALTHY, NO_DATA, RELEASE_A, RELEASE_B, at, tick
from unit.guard_ticks import SPEC, contained

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
