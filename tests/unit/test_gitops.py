"""Pausing GitOps reconcilers (domain/gitops.py): when the Argo CD pause is due, what it
writes and what readiness says. Flux's annotation is tested in test_reverts.py."""

from __future__ import annotations

from typing import Any

import pytest

from releaseguard.domain.changes import NotApplicable
from releaseguard.domain.gitops import (
    PAUSE_FIELD,
    PAUSE_TRIES,
    pause_change,
    pause_due,
    pause_id,
    pause_readiness,
)
from releaseguard.domain.guard import record_action
from releaseguard.domain.models import (
    ActionRecord,
    ActionResult,
    GuardStatus,
    Incident,
    Phase,
    Step,
    StepType,
)
from unit.builders import T0, action, at, guard_spec

ARGO = {"argoCD": {"application": "checkout", "namespace": "argocd"}}
SPEC = guard_spec(gitOps=ARGO)
OPEN = Incident(number=2, detected_at=T0)


def app(automated: dict[str, Any] | None) -> dict[str, Any]:
    policy: dict[str, Any] = {"syncOptions": ["RespectIgnoreDifferences=true"]}
    if automated is not None:
        policy["automated"] = automated
    return {
        "metadata": {"name": "checkout", "namespace": "argocd", "resourceVersion": "7"},
        "spec": {"project": "default", "syncPolicy": policy},
    }


def pause_record(
    result: ActionResult = ActionResult.APPLIED,
    attempt: int = 1,
    seconds: float = 17,
    message: str = "",
) -> ActionRecord:
    return ActionRecord(
        id=pause_id(2, attempt),
        incident=2,
        type=StepType.GITOPS_PAUSE,
        step_index=-1,
        target="Application/argocd/checkout",
        result=result,
        time=at(seconds),
        message=message,
    )


def test_the_pause_is_due_with_the_first_applied_step_once_per_incident():
    assert pause_id(2) == "2-gitopspause-0"
    now = at(20)
    assert pause_due(SPEC, GuardStatus(incident=OPEN), now) is None
    failed = action(incident=2, result=ActionResult.FAILED)
    assert pause_due(SPEC, GuardStatus(incident=OPEN, actions=[failed]), now) is None
    applied = action(incident=2, time=at(16))
    assert pause_due(SPEC, GuardStatus(incident=OPEN, actions=[applied]), now) == "2-gitopspause-0"
    dry = action(incident=2, result=ActionResult.DRY_RUN)
    assert pause_due(SPEC, GuardStatus(incident=OPEN, actions=[dry]), now) == "2-gitopspause-0"
    done = GuardStatus(incident=OPEN, actions=[applied, pause_record()])
    assert pause_due(SPEC, done, at(1000)) is None


def test_a_failed_pause_is_tried_again_after_a_doubling_backoff_three_times_in_all():
    applied = action(incident=2, time=at(16))
    interval = SPEC.interval_seconds
    refused = "API error 403: Forbidden"
    first = pause_record(ActionResult.FAILED, 1, 17, refused)
    status = GuardStatus(incident=OPEN, actions=[applied, first])
    assert pause_due(SPEC, status, at(17 + interval - 1)) is None  # not yet
    assert pause_due(SPEC, status, at(17 + interval)) == "2-gitopspause-0-t2"
    second = pause_record(ActionResult.FAILED, 2, 17 + interval, refused)
    status = GuardStatus(incident=OPEN, actions=[applied, first, second])
    assert pause_due(SPEC, status, at(17 + 3 * interval - 1)) is None  # 2 x interval after
    assert pause_due(SPEC, status, at(17 + 3 * interval)) == "2-gitopspause-0-t3"
    third = pause_record(ActionResult.FAILED, 3, 17 + 3 * interval, refused)
    status = GuardStatus(incident=OPEN, actions=[applied, first, second, third])
    assert PAUSE_TRIES == 3
    assert pause_due(SPEC, status, at(100_000)) is None, "bounded: three tries per incident"
    worked = pause_record(ActionResult.APPLIED, 2, 17 + interval)
    status = GuardStatus(incident=OPEN, actions=[applied, first, worked])
    assert pause_due(SPEC, status, at(100_000)) is None


def test_a_pause_that_found_nothing_to_pause_is_not_tried_again():
    applied = action(incident=2, time=at(16))
    nothing = pause_record(
        ActionResult.FAILED,
        1,
        17,
        "no longer applicable: Application checkout has no automated sync",
    )
    status = GuardStatus(incident=OPEN, actions=[applied, nothing])
    assert pause_due(SPEC, status, at(100_000)) is None


def test_no_pause_without_argo_cd_or_an_open_incident():
    applied = action(incident=2)
    now = at(20)
    assert pause_due(guard_spec(), GuardStatus(incident=OPEN, actions=[applied]), now) is None
    closed = OPEN.model_copy(update={"closed": True})
    assert pause_due(SPEC, GuardStatus(incident=closed, actions=[applied]), now) is None
    older = action(incident=1)
    assert pause_due(SPEC, GuardStatus(incident=OPEN, actions=[older]), now) is None


def test_the_pause_removes_automated_and_keeps_it_in_before():
    automated = {"selfHeal": True, "prune": True}
    change = pause_change(app(automated))
    assert not isinstance(change, NotApplicable)
    assert change.before == {PAUSE_FIELD: automated}
    assert "automated" not in change.new_object["spec"]["syncPolicy"]
    assert change.new_object["spec"]["syncPolicy"]["syncOptions"] == [
        "RespectIgnoreDifferences=true"
    ]
    assert change.new_object["metadata"]["resourceVersion"] == "7"
    assert change.patch == {"spec": {"syncPolicy": {"automated": None}}}


def test_an_application_without_automated_sync_has_nothing_to_pause():
    change = pause_change(app(None))
    assert isinstance(change, NotApplicable) and "no automated sync" in change.reason
    line = pause_readiness(change)
    assert (line.type, line.index, line.ready) == (StepType.GITOPS_PAUSE, -1, False)


def test_readiness_says_why_the_application_cannot_be_reached():
    line = pause_readiness(None, "Application argocd/checkout not found")
    assert not line.ready and line.reason == "Application argocd/checkout not found"
    assert pause_readiness(pause_change(app({}))).ready


def test_a_recorded_pause_neither_contains_nor_changes_the_phase():
    status = GuardStatus(phase=Phase.BREACHING, incident=OPEN)
    recorded = record_action(status, pause_record(), at(17)).status
    assert recorded.phase is Phase.BREACHING
    assert not any(c.type == "Contained" for c in recorded.conditions)
    assert recorded.incident.contained_at is None


def test_gitopspause_is_not_a_step_a_user_can_write():
    with pytest.raises(ValueError, match=r"spec\.gitOps\.argoCD"):
        Step.model_validate({"type": "GitOpsPause"})
