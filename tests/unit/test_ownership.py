"""Two guards over one object and field: both see the conflict, the older one acts."""

import pytest

from releaseguard.domain.models import GuardStatus
from releaseguard.domain.ownership import (
    CONFLICT,
    Claim,
    GuardIdentity,
    claims_of,
    overlaps,
    with_conflict,
    yielded,
)
from unit.builders import (
    at,
    blue_green,
    canary_weight,
    feature_flag,
    guard_spec,
    ready,
    rollback,
    scale,
)

OLD = GuardIdentity("zeta", "uid-old", "2026-11-26T09:00:00Z")
NEW = GuardIdentity("alpha", "uid-new", "2026-11-26T10:00:00Z")


def test_each_step_claims_its_object_and_field():
    spec = guard_spec(steps=[feature_flag(), canary_weight(), scale(), blue_green(), rollback()])
    assert claims_of(spec) == {
        0: Claim("ConfigMap/checkout-flags", "data[new-flow]"),
        1: Claim("HTTPRoute/checkout", "backendRefs[].weight"),
        2: Claim("Deployment/checkout-v2", "spec.replicas"),
        3: Claim("Service/checkout", "spec.selector[color]"),
        4: Claim("Deployment/checkout", "spec.template"),
    }


def test_the_older_guard_acts_and_the_younger_yields():
    mine = claims_of(guard_spec(steps=[feature_flag(), canary_weight()]))
    theirs = claims_of(guard_spec(steps=[canary_weight(weight=5)]))

    as_old = overlaps(OLD, theirs, [(NEW, mine)])
    as_new = overlaps(NEW, mine, [(OLD, theirs)])

    assert [(o.index, o.we_act) for o in as_old] == [(0, True)]
    assert [(o.index, o.we_act, o.other.name) for o in as_new] == [(1, False, "zeta")]


def test_same_creation_second_goes_to_the_name_that_sorts_first():
    a = GuardIdentity("a", "1", "2026-11-26T10:00:00Z")
    b = GuardIdentity("b", "2", "2026-11-26T10:00:00Z")
    claims = claims_of(guard_spec(steps=[rollback()]))
    assert overlaps(a, claims, [(b, claims)])[0].we_act is True
    assert overlaps(b, claims, [(a, claims)])[0].we_act is False


@pytest.mark.parametrize(
    ("theirs", "expected"),
    [
        pytest.param([feature_flag(value="true")], 1, id="same-key-other-value"),
        pytest.param([scale()], 0, id="other-object"),
        pytest.param(
            [{"type": "Scale", "scale": {"deployment": "checkout", "replicas": 0}}],
            0,
            id="same-deployment-other-field",
        ),
    ],
)
def test_overlap_needs_the_same_object_and_field(theirs, expected):
    mine = claims_of(guard_spec(steps=[feature_flag(), rollback()]))
    other = claims_of(guard_spec(steps=theirs))
    assert len(overlaps(OLD, mine, [(NEW, other)])) == expected


def test_a_guard_never_overlaps_itself():
    claims = claims_of(guard_spec())
    assert overlaps(OLD, claims, [(OLD, claims)]) == []


def test_yielded_steps_are_not_ready_and_say_to_whom():
    spec = guard_spec(steps=[feature_flag(), rollback()])
    found = overlaps(NEW, claims_of(spec), [(OLD, claims_of(guard_spec(steps=[rollback()])))])

    readiness = yielded(ready(spec), found)

    assert [r.ready for r in readiness] == [True, False]
    assert "yields to older guard zeta" in readiness[1].reason
    assert "Deployment/checkout spec.template" in readiness[1].reason


def test_both_guards_show_conflict_and_warn_once():
    claims = claims_of(guard_spec(steps=[rollback()]))
    found = overlaps(NEW, claims, [(OLD, claims)])

    shown, events = with_conflict(GuardStatus(), found, at(0), 1)
    again, quiet = with_conflict(shown, found, at(5), 1)

    cond = next(c for c in shown.conditions if c.type == CONFLICT)
    assert cond.status == "True" and "zeta acts (older)" in cond.message
    assert [(e.type, e.reason) for e in events] == [("Warning", CONFLICT)]
    assert quiet == []
    cleared, none = with_conflict(again, [], at(10), 1)
    assert next(c for c in cleared.conditions if c.type == CONFLICT).status == "False"
    assert none == []


def test_a_guard_that_never_overlapped_has_no_conflict_condition():
    status, events = with_conflict(GuardStatus(), [], at(0), 1)
    assert status.conditions == [] and events == []
