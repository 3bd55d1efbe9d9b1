"""The timeline helpers of the decide() tests (tests/unit/test_guard_*.py)."""

from releaseguard.domain.guard import TargetFacts
from releaseguard.domain.models import GuardStatus
from unit.builders import apply_planned, at, guard_spec, ready, tick

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
