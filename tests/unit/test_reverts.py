"""Reverts and known-bad releases (domain/reverts.py), and how decide() acts on them.

The timelines run the real evaluate() and decide() on a fixed clock, with the objects
each step changes as the adapter would read them: the step's effect in place, or put
back by a GitOps reconciler whose field manager managedFields names.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from releaseguard.domain.gitops import FLUX_RECONCILE, with_flux_paused
from releaseguard.domain.guard import Decision, TickInput, decide
from releaseguard.domain.models import (
    ActionRecord,
    ActionResult,
    GuardSpec,
    GuardStatus,
    Incident,
    KnownBad,
    Phase,
    StepType,
)
from releaseguard.domain.plan import Apply, Exhausted
from releaseguard.domain.reverts import (
    MAX_KNOWN_BAD,
    check_reverts,
    field_manager,
    limit_rollbacks,
    note_rollback,
    original_id,
    reapply_delay,
    reapply_id,
    reapply_number,
    step_undone,
)
from releaseguard.domain.steps.canary_weight import canary_weight_change
from unit.builders import (
    BREACHING,
    RELEASE_A,
    RELEASE_B,
    T0,
    action,
    apply_planned,
    at,
    backend,
    canary_weight,
    config_map,
    evaluation,
    feature_flag,
    guard_spec,
    last_evaluation,
    ready,
    rollback,
    scale,
    service,
    step,
    tick,
)

ARGO = "argocd-controller"


def managed(*entries: tuple[str, str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"manager": m, "operation": "Update", "time": t, "fieldsV1": f} for m, t, f in entries]


def route(canary_weight_now: int, manager: str = ARGO) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "checkout", "resourceVersion": "12"},
        "spec": {
            "rules": [
                {
                    "backendRefs": [
                        backend("checkout-v1", 100 - canary_weight_now),
                        backend("checkout-v2", canary_weight_now),
                    ]
                }
            ]
        },
    }
    obj["metadata"]["managedFields"] = managed(
        ("releaseguard", "2026-11-26T10:00:16Z", {"f:metadata": {"f:annotations": {}}}),
        (manager, "2026-11-26T10:00:19Z", {"f:spec": {"f:rules": {}}}),
    )
    return obj


# ---------------------------------------------------------------- ids and backoff


def test_a_reapply_id_is_the_original_id_with_its_number():
    assert reapply_id("3-canaryweight-1", 1) == "3-canaryweight-1-r1"
    assert reapply_id("3-canaryweight-1-r1", 2) == "3-canaryweight-1-r2"
    assert original_id("3-canaryweight-1-r2") == "3-canaryweight-1"
    assert original_id("3-canaryweight-1") == "3-canaryweight-1"
    assert (reapply_number("3-canaryweight-1-r12"), reapply_number("3-rollback-0")) == (12, 0)


@pytest.mark.parametrize(("n", "seconds"), [(1, 30), (2, 60), (3, 120)])
def test_the_nth_reapply_waits_interval_times_two_to_the_n(n, seconds):
    assert reapply_delay(15, n) == timedelta(seconds=seconds)


# ---------------------------------------------------------------- does a step hold?

FLAG = step(feature_flag("false"))
CANARY = step(canary_weight(0))
SCALE = step(scale(0))
BLUE = step(
    {
        "type": "BlueGreen",
        "blueGreen": {"service": "s", "selectorKey": "color", "stableValue": "blue"},
    }
)
ROLLBACK = step(rollback())


def record(type_: StepType, after: dict[str, Any] | None = None, **extra: Any) -> ActionRecord:
    return action(type_=type_, after=after or {}, **extra)


@pytest.mark.parametrize(
    ("the_step", "obj", "field", "value"),
    [
        (FLAG, config_map({"new-flow": "true"}), "data.new-flow", "true"),
        (FLAG, config_map(None), "data.new-flow", "None"),
        (SCALE, {"spec": {"replicas": 3}}, "spec.replicas", "3"),
        (SCALE, {"spec": {}}, "spec.replicas", "1"),
        (BLUE, service({"color": "green"}), "spec.selector.color", "green"),
        (CANARY, route(10), "spec.rules[0].backendRefs[checkout-v2].weight", "10"),
    ],
)
def test_a_step_put_back_is_undone_with_the_field_and_value_found(the_step, obj, field, value):
    undone = step_undone(the_step, record(the_step.type), obj)
    assert undone is not None
    assert (undone.field, undone.value) == (field, value)


@pytest.mark.parametrize(
    ("the_step", "obj"),
    [
        (FLAG, config_map({"new-flow": "false", "other": "x"})),
        (SCALE, {"spec": {"replicas": 0}}),
        (BLUE, service({"color": "blue"})),
        (CANARY, route(0)),
    ],
)
def test_a_step_in_place_holds(the_step, obj):
    assert step_undone(the_step, record(the_step.type), obj) is None


def deployment(image: str) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}


def test_a_rollback_holds_while_the_template_has_the_images_it_restored():
    done = record(StepType.ROLLBACK, after={"images": ["web:1"], "podTemplateHash": "good"})
    assert step_undone(ROLLBACK, done, deployment("web:1")) is None
    undone = step_undone(ROLLBACK, done, deployment("web:2"))
    assert undone is not None
    assert (undone.field, undone.value) == ("spec.template.spec.containers[*].image", "web:2")


def test_the_manager_is_who_owns_the_deepest_part_of_the_field_newest_first():
    obj = {
        "metadata": {
            "managedFields": managed(
                ("kube-controller-manager", "2026-11-26T10:00:30Z", {"f:spec": {}}),
                ("old-pipeline", "2026-11-26T10:00:01Z", {"f:spec": {"f:replicas": {}}}),
                ("flux", "2026-11-26T10:00:20Z", {"f:spec": {"f:replicas": {}}}),
                ("releaseguard", "2026-11-26T10:00:40Z", {"f:spec": {"f:replicas": {}}}),
            )
        }
    }
    assert field_manager(obj, ("f:spec", "f:replicas")) == "flux"
    assert field_manager({"metadata": {}}, ("f:spec", "f:replicas")) == "unknown"


# ---------------------------------------------------------------- the incident's reverts

INCIDENT = Incident(number=1, detected_at=T0)
ORIGINAL = action(index=0, type_=StepType.CANARY_WEIGHT, time=at(16)).model_copy(
    update={"target": "HTTPRoute/checkout"}
)


def check(actions, objects, now, limit=3, incident=INCIDENT, interval=15):
    return check_reverts([CANARY, FLAG], actions, incident, objects, limit, interval, now)


def test_a_revert_is_found_once_and_reapplied_after_the_backoff():
    first = check([ORIGINAL], {0: route(10)}, at(20))
    (revert,) = first.found
    assert (revert.action, revert.manager, revert.value) == ("1-canaryweight-0", ARGO, "10")
    assert first.reverted and first.reapply is None
    assert first.waiting[0][1] == at(20 + 30)

    incident = INCIDENT.model_copy(update={"reverted": [revert], "reverts": 1})
    assert check([ORIGINAL], {0: route(10)}, at(49), incident=incident).reapply is None
    due = check([ORIGINAL], {0: route(10)}, at(50), incident=incident)
    assert due.found == ()
    assert due.reapply is not None
    assert (due.reapply.action_id, due.reapply.n, due.reapply.index) == (
        "1-canaryweight-0-r1",
        1,
        0,
    )


def test_a_step_that_holds_or_was_not_read_is_not_reverted():
    assert not check([ORIGINAL], {0: route(0)}, at(20)).reverted
    assert not check([ORIGINAL], {0: None}, at(20)).reverted
    assert not check([ORIGINAL], {}, at(20)).reverted
    failed = ORIGINAL.model_copy(update={"result": ActionResult.FAILED})
    assert not check([failed], {0: route(10)}, at(20)).reverted


def reapplied(n: int, t: float) -> ActionRecord:
    return ORIGINAL.model_copy(update={"id": reapply_id(ORIGINAL.id, n), "time": at(t)})


def test_past_the_limit_the_step_is_given_up_and_stays_unheld_until_a_later_step():
    actions = [ORIGINAL, reapplied(1, 50), reapplied(2, 115), reapplied(3, 240)]
    given_up = check(actions, {0: route(10)}, at(245))
    assert list(given_up.given_up) == [0] and given_up.reapply is None
    assert given_up.found[0].action == "1-canaryweight-0-r3"
    assert given_up.reverted  # nothing else contains yet

    later = action(index=1, time=at(246))
    after_escalation = check(
        [*actions, later], {0: route(10), 1: config_map({"new-flow": "false"})}, at(250)
    )
    assert list(after_escalation.given_up) == [0]
    assert not after_escalation.reverted


def test_reapply_zero_gives_up_at_once():
    result = check([ORIGINAL], {0: route(10)}, at(20), limit=0)
    assert list(result.given_up) == [0] and result.reapply is None


# ---------------------------------------------------------------- decide() timelines


def run(spec, status, now, objects, target=RELEASE_B, obs=BREACHING) -> Decision:
    ev = evaluation(spec, status, obs, now)
    return decide(TickInput(spec, status, ev, target, now, 1, ready(spec), objects=objects))


def canary_contained(spec: GuardSpec) -> GuardStatus:
    first = tick(spec, GuardStatus(), at(0))
    confirmed = tick(spec, first.status, at(15))
    assert confirmed.plan is not None and confirmed.plan.action_id == "1-canaryweight-0"
    return apply_planned(confirmed, at(16)).status


def condition(status, type_):
    return next(c for c in status.conditions if c.type == type_)


def test_a_reverted_canary_is_reapplied_three_times_then_the_guard_escalates():
    spec = guard_spec(steps=[canary_weight(0, cost=5), feature_flag()], escalateAfterSeconds=1000)
    status = canary_contained(spec)
    reverted = {0: route(10), 1: config_map({"new-flow": "true"})}

    ids = []
    now = 20.0
    for n in (1, 2, 3):
        found = run(spec, status, at(now), reverted)
        assert [e.reason for e in found.events].count("ContainmentReverted") == 1
        warning = next(e for e in found.events if e.reason == "ContainmentReverted")
        assert warning.type == "Warning"
        assert "HTTPRoute" in warning.message or "Object/x" in warning.message
        assert ARGO in warning.message and "'10'" in warning.message
        assert found.status.incident.reverts == n
        assert found.status.phase is Phase.BREACHING
        contained = condition(found.status, "Contained")
        assert (contained.status, contained.reason) == ("False", "Reverted")
        assert ARGO in contained.message
        assert found.plan is None
        due = now + 15 * 2**n
        assert run(spec, found.status, at(due - 1), reverted).plan is None
        again = run(spec, found.status, at(due), reverted)
        assert isinstance(again.plan, Apply)
        assert again.plan.index == 0
        assert f"re-apply {n} of 3" in again.reason and ARGO in again.reason
        ids.append(again.plan.action_id)
        status = apply_planned(again, at(due)).status
        assert condition(status, "Contained").status == "True"
        now = due + 5

    assert ids == ["1-canaryweight-0-r1", "1-canaryweight-0-r2", "1-canaryweight-0-r3"]
    escalated = run(spec, status, at(now), reverted)
    assert escalated.status.incident.reverts == 4
    assert escalated.plan is not None and escalated.plan.action_id == "1-featureflag-1"


def test_a_reverted_step_with_nothing_left_is_exhausted_naming_the_manager():
    spec = guard_spec(steps=[canary_weight(0)], onRevert={"reapply": 0})
    status = canary_contained(spec)
    exhausted = run(spec, status, at(20), {0: route(10)})
    assert exhausted.status.phase is Phase.EXHAUSTED
    assert ARGO in exhausted.status.message
    assert "re-applied 0 times (spec.onRevert.reapply is 0)" in exhausted.status.message
    assert "Exhausted" in [e.reason for e in exhausted.events]
    assert condition(exhausted.status, "Contained").status == "False"
    still = run(spec, exhausted.status, at(21), {0: route(10)})
    assert still.status.phase is Phase.EXHAUSTED
    assert "Exhausted" not in [e.reason for e in still.events]
    assert still.status.incident.reverts == 1


def test_a_step_that_holds_again_contains_again_without_a_reapply():
    spec = guard_spec(steps=[canary_weight(0)])
    status = canary_contained(spec)
    reverted = run(spec, status, at(20), {0: route(10)})
    held = run(spec, reverted.status, at(25), {0: route(0)})
    assert held.status.phase is Phase.CONTAINED
    assert condition(held.status, "Contained").status == "True"
    assert held.plan is None


def test_without_objects_nothing_is_checked():
    spec = guard_spec(steps=[canary_weight(0)])
    status = canary_contained(spec)
    assert run(spec, status, at(20), None).status.phase is Phase.CONTAINED


# ---------------------------------------------------------------- known-bad releases


def rolled_back(bad_hash: str, incident: int = 1, n: int = 0) -> ActionRecord:
    return ActionRecord(
        id=f"{incident}-rollback-0" + (f"-r{n}" if n else ""),
        type=StepType.ROLLBACK,
        step_index=0,
        target="Deployment/checkout",
        result=ActionResult.APPLIED,
        time=T0,
        before={"images": [f"web:{bad_hash}"], "podTemplateHash": bad_hash},
        after={"images": ["web:1"], "podTemplateHash": "good"},
    )


def test_known_bad_is_newest_first_counts_rollbacks_and_keeps_ten():
    known: list[KnownBad] = []
    for i in range(12):
        known = note_rollback(known, rolled_back(f"h{i}", incident=i + 1), i + 1)
    assert len(known) == MAX_KNOWN_BAD
    assert [k.hash for k in known[:2]] == ["h11", "h10"]
    again = note_rollback(known, rolled_back("h5", incident=30), 30)
    assert again[0].hash == "h5" and again[0].rollbacks == 2 and again[0].incident == 6
    assert again[0].images == ["web:h5"]
    failed = rolled_back("h99").model_copy(update={"result": ActionResult.FAILED})
    assert note_rollback([], failed, 1) == []


def test_rollback_is_not_ready_once_a_template_was_rolled_back_reapply_plus_one_times():
    spec = guard_spec(steps=[rollback()])
    readiness = ready(spec)
    known = [KnownBad(hash="bad", incident=1, rollbacks=3)]
    assert limit_rollbacks(readiness, known, "bad", 3)[0].ready
    known = [KnownBad(hash="bad", incident=1, rollbacks=4)]
    limited = limit_rollbacks(readiness, known, "bad", 3)
    assert not limited[0].ready and "rolled back 4 times" in limited[0].reason
    assert limit_rollbacks(readiness, known, "other", 3)[0].ready


def test_reapplying_a_known_bad_template_does_not_rearm_but_a_new_one_does():
    spec = guard_spec(steps=[rollback()])
    release_a_again = RELEASE_A  # hash "aaa": the template the Rollback replaced
    contained = GuardStatus(
        phase=Phase.CONTAINED,
        release={"revision": "9", "podTemplateHash": "good"},
        incident=INCIDENT.model_copy(update={"contained_at": at(16)}),
        actions=[rolled_back("aaa")],
        known_bad=[KnownBad(hash="aaa", incident=1, rollbacks=1)],
    )
    status = GuardStatus.model_validate(contained.model_dump())
    bad_again = run(spec, status, at(30), None, target=release_a_again)
    assert "Rearmed" not in [e.reason for e in bad_again.events]
    assert not bad_again.status.incident.closed

    new = run(spec, status, at(30), None, target=RELEASE_B)
    assert "Rearmed" in [e.reason for e in new.events]
    assert new.status.incident.closed


def test_record_action_of_a_rollback_remembers_the_template_it_replaced():
    spec = guard_spec(steps=[rollback()])
    first = tick(spec, GuardStatus(), at(0))
    confirmed = tick(spec, first.status, at(15))
    assert confirmed.plan is not None
    status = apply_planned(
        confirmed, at(16), after={"images": ["web:1"], "podTemplateHash": "good"}
    ).status
    # apply_planned's before has no podTemplateHash: nothing to remember.
    assert status.known_bad == []
    rec = rolled_back("bbb")
    from releaseguard.domain.guard import record_action

    status = record_action(confirmed.status, rec, at(16)).status
    assert [(k.hash, k.rollbacks, k.incident) for k in status.known_bad] == [("bbb", 1, 1)]


# ---------------------------------------------------------------- Flux


def test_flux_pause_is_in_the_same_write_and_in_before_and_after():
    obj = route(10)
    change = canary_weight_change(CANARY.canary_weight, obj)
    paused = with_flux_paused(change)
    assert paused.new_object["metadata"]["annotations"][FLUX_RECONCILE] == "disabled"
    assert paused.before[FLUX_RECONCILE] == "" and paused.after[FLUX_RECONCILE] == "disabled"
    assert paused.patch["metadata"]["annotations"] == {FLUX_RECONCILE: "disabled"}
    assert paused.patch["spec"] == change.patch["spec"]
    assert "annotations" not in (change.new_object["metadata"])  # the original is untouched
    assert copy.deepcopy(paused.after)["checkout-v2"] == 0


def test_a_known_bad_template_rolled_back_reapply_plus_one_times_is_not_reapplied_again():
    spec = guard_spec(steps=[rollback()], onRevert={"reapply": 3})
    incident = Incident(number=2, detected_at=T0, contained_at=at(16))
    rolled = rolled_back("aaa", incident=2).model_copy(update={"time": at(16)})
    status = GuardStatus(
        phase=Phase.CONTAINED,
        release={"revision": "9", "podTemplateHash": "aaa"},
        incident=incident,
        actions=[rolled],
        known_bad=[KnownBad(hash="aaa", incident=1, rollbacks=4)],
        last_evaluation=last_evaluation(1, T0),  # this tick confirms the breach
    )
    put_back = {0: deployment("web:aaa")}
    decision = run(spec, status, at(20), put_back, target=RELEASE_A)  # hash "aaa" again
    assert decision.status.incident.reverts == 1
    assert isinstance(decision.plan, Exhausted)
    assert decision.status.phase is Phase.EXHAUSTED
    assert "known-bad template aaa was rolled back 4 times" in decision.status.message
    later = run(spec, decision.status, at(200), put_back, target=RELEASE_A)
    assert not isinstance(later.plan, Apply)

    fewer = status.model_copy(update={"known_bad": [KnownBad(hash="aaa", incident=1, rollbacks=1)]})
    first = run(spec, fewer, at(20), put_back, target=RELEASE_A)
    again = run(spec, first.status, at(20 + 15 * 2), put_back, target=RELEASE_A)
    assert again.plan is not None and again.plan.action_id == "2-rollback-0-r1"
