"""The plugin's pure views and timeline: what `list`, `status` and `timeline` show,
from guards and Events as plain dicts (no cluster)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console

from releaseguard.plugin import render
from releaseguard.plugin.timeline import assemble
from releaseguard.plugin.views import (
    describe_change,
    duration,
    list_row,
    offset,
    status_view,
)

T0 = datetime(2026, 11, 30, 10, 0, 0, tzinfo=UTC)


def iso(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def action(id_: str, seconds: float, **extra: Any) -> dict[str, Any]:
    body = {
        "id": id_,
        "type": "Scale",
        "stepIndex": 0,
        "target": "Deployment/consumer",
        "result": "Applied",
        "time": iso(seconds),
        "reason": "error-rate 0.5 > 0.1 for 1 evaluation",
        "before": {"replicas": 2},
        "after": {"replicas": 0},
    }
    return body | extra


def event(reason: str, message: str, seconds: float, type_: str = "Normal") -> dict[str, Any]:
    return {"reason": reason, "message": message, "type": type_, "eventTime": iso(seconds)}


def incident(**extra: Any) -> dict[str, Any]:
    return {
        "number": 1,
        "detectedAt": iso(0),
        "confirmedAt": iso(2.5),
        "containedAt": iso(2.8),
        "timeToContainSeconds": 2.8,
        "reason": "error-rate 0.5 > 0.1 for 2 evaluations",
    } | extra


def guard(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "checkout", "namespace": "shop", "uid": "u1"},
        "spec": {
            "target": {"deployment": "checkout"},
            "consecutiveBreaches": 2,
            "metrics": [{"name": "error-rate", "query": "q", "max": 0.1}],
            "steps": [{"type": "Scale", "scale": {"deployment": "consumer", "replicas": 0}}],
        }
        | spec,
        "status": status or {},
    }


# ---------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59.9, "59s"), (60, "1m00s"), (192, "3m12s"), (7500, "2h5m"), (270000, "3d3h")],
)
def test_durations_read_like_kubectl_ages(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "+0.0s"), (2.84, "+2.8s"), (-1.2, "-1.2s"), (125, "+2m05s")]
)
def test_offsets_are_signed_and_relative_to_detection(seconds, text):
    assert offset(seconds) == text


def test_a_change_shows_each_key_before_and_after_once():
    assert describe_change({"replicas": 2}, {"replicas": 0}) == "replicas: 2 → 0"
    assert describe_change({"flag": None}, {"flag": "off"}) == "flag: unset → off"
    assert describe_change({"v1": 90, "v2": 10}, {"v1": 100, "v2": 0}) == "v1: 90 → 100; v2: 10 → 0"
    assert describe_change({}, {}) == ""
    assert describe_change(None, "garbage") == ""


# ---------------------------------------------------------------- list and status


def test_a_list_row_shows_an_open_incident_with_its_age():
    status = {
        "phase": "Contained",
        "lastAction": "Scale Applied",
        "lastEvaluation": {"verdict": "Breach", "consecutiveBreaches": 3, "time": iso(9)},
        "incident": incident(),
    }
    row = list_row(guard(status), T0 + timedelta(seconds=250))
    assert (row.name, row.target, row.phase, row.verdict) == (
        "checkout",
        "checkout",
        "Contained",
        "Breach",
    )
    assert (row.breaches, row.last_action, row.incident) == (3, "Scale Applied", "#1 open 4m10s")


def test_a_new_guard_lists_as_pending_without_an_incident():
    row = list_row(guard(), T0)
    assert (row.phase, row.verdict, row.breaches, row.incident) == ("Pending", "-", None, "-")
    closed = list_row(guard({"incident": incident(closed=True)}), T0)
    assert closed.incident == "#1 closed"


def test_status_says_yes_or_no_and_why_for_each_step():
    status = {
        "readiness": [
            {"type": "Scale", "index": 0, "ready": False, "reason": "Deployment consumer not found"}
        ]
    }
    view = status_view(guard(status), T0)
    (step,) = view.steps
    assert (step.type, step.ready, step.why) == ("Scale", False, "Deployment consumer not found")
    unchecked = status_view(guard(), T0).steps[0]
    assert (unchecked.ready, unchecked.why) == (False, "not checked yet")


def test_status_shows_the_newest_actions_first_with_before_and_after():
    actions = [action(f"{n}-scale-0", n) for n in range(1, 8)]
    view = status_view(guard({"actions": actions}), T0 + timedelta(seconds=60))
    assert [a.id for a in view.actions] == [f"{n}-scale-0" for n in (7, 6, 5, 4, 3)]
    assert view.actions[0].change == "replicas: 2 → 0"
    assert view.actions[0].ago == "53s"


def test_status_shows_fields_of_newer_operators_when_present():
    status = {
        "incident": incident(reverts=2),
        "knownBad": [{"hash": "5d8f7c9b4", "images": ["checkout:1.42"], "incident": 3}],
        "notifications": {"sent": 4, "failed": 1, "pending": 0, "lastError": "503 from hook"},
        "actions": [action("1-gitopspause-9", 1, type="GitOpsPause", target="Application/x")],
    }
    view = status_view(guard(status), T0)
    assert view.incident["reverts"] == "2"
    assert view.known_bad == ["5d8f7c9b4 (checkout:1.42, incident 3)"]
    assert view.notifications == "sent 4, failed 1, pending 0; last error: 503 from hook"
    assert view.actions[0].type == "GitOpsPause"


def test_status_tolerates_a_status_it_cannot_parse():
    weird = {"conditions": "nope", "actions": [None, 3], "lastEvaluation": [], "incident": 7}
    view = status_view(guard(weird), T0)
    assert (view.conditions, view.actions, view.incident) == ([], [], {})


def test_status_renders_as_text_without_colour_when_not_a_tty():
    status = {"phase": "Contained", "incident": incident(), "actions": [action("1-scale-0", 2.8)]}
    console = Console(width=160, force_terminal=False, color_system=None, record=True)
    console.print(render.status_panel(status_view(guard(status), T0), T0))
    text = console.export_text()
    assert "Contained" in text and "replicas: 2 → 0" in text and "\x1b[" not in text


# ---------------------------------------------------------------- timeline


def contained_status(**extra: Any) -> dict[str, Any]:
    return {
        "incident": incident(recoveredAt=iso(20)),
        "actions": [action("1-scale-0", 2.8)],
    } | extra


def test_timeline_orders_detection_confirmation_action_containment_recovery():
    told = assemble(contained_status(), [])
    assert [e.what for e in told.entries] == [
        "detected",
        "confirmed",
        "action",
        "contained",
        "recovered",
    ]
    assert [told.offset_of(e) for e in told.entries] == [
        "+0.0s",
        "+2.5s",
        "+2.8s",
        "+2.8s",
        "+20.0s",
    ]
    assert "1-scale-0 Scale Deployment/consumer: replicas: 2 → 0 [Applied]" in told.entries[2].text


def test_timeline_merges_events_and_leaves_out_those_that_repeat_status():
    events = [
        event("BreachConfirmed", "error-rate 0.5 > 0.1", 2.5, "Warning"),
        event("StepApplied", "1-scale-0 Scale Deployment/consumer: ...", 2.9),
        event("Contained", "phase Breaching -> Contained", 2.9),
        event("RollbackRefused", "rollback refused: Job migrate succeeded", 1.0, "Warning"),
        event("ContainmentReverted", "Deployment/consumer replicas 2 by argocd", 10, "Warning"),
        event("Recovered", "metrics are healthy again", 20.1),
    ]
    told = assemble(contained_status(), events)
    whats = [e.what for e in told.entries]
    assert whats == [
        "detected",
        "RollbackRefused",
        "confirmed",
        "action",
        "contained",
        "ContainmentReverted",
        "recovered",
    ]
    assert told.entries[5].warning and told.entries[5].source == "event"


def test_timeline_keeps_an_action_event_that_status_no_longer_holds():
    events = [event("StepApplied", "1-flag-0 FeatureFlag ConfigMap/flags", 1.5)]
    told = assemble(contained_status(), events)
    assert "StepApplied" in [e.what for e in told.entries]


def test_timeline_marks_reapplies_and_ignores_events_of_earlier_incidents():
    status = contained_status(
        actions=[action("1-scale-0", 2.8), action("1-scale-0-r1", 12.0)],
    )
    events = [event("Rearmed", "an earlier incident's re-arm", -300)]
    told = assemble(status, events)
    assert [e.what for e in told.entries if e.what in ("action", "re-apply")] == [
        "action",
        "re-apply",
    ]
    assert "Rearmed" not in [e.what for e in told.entries]


def test_a_closed_incident_ends_at_the_rearm_but_keeps_a_later_undo_of_its_action():
    status = contained_status(incident=incident(closed=True, recoveredAt=iso(20)))
    events = [
        event("Rearmed", "re-armed by annotation: watching again", 30),
        event("Watching", "phase Contained -> Watching", 30.5),
        event("Breaching", "phase Watching -> Breaching (someone else's later trouble)", 40),
        event("ActionUndone", "1-scale-0 undone with kubectl releaseguard: ...", 50),
    ]
    told = assemble(status, events)
    assert [e.what for e in told.entries][-2:] == ["Rearmed", "ActionUndone"]
    assert told.note == "closed"


def test_an_older_incident_is_told_from_its_actions_relative_to_the_first():
    status = {
        "incident": incident(number=2, detectedAt=iso(100), confirmedAt=iso(101)),
        "actions": [action("1-scale-0", 5), action("2-scale-0", 102)],
    }
    events = [
        event("ActionUndone", "1-scale-0 undone", 60),
        event("BreachConfirmed", "incident 2", 101),
    ]
    told = assemble(status, events, number=1)
    assert [e.what for e in told.entries] == ["action", "ActionUndone"]
    assert told.origin_label == "first recorded entry"
    assert [told.offset_of(e) for e in told.entries] == ["+0.0s", "+55.0s"]


def test_timeline_of_a_guard_that_never_breached_or_an_unknown_incident_is_empty():
    assert assemble({}, []).entries == ()
    assert "never breached" in assemble({}, []).note
    unknown = assemble(contained_status(), [], number=9)
    assert unknown.entries == () and "not in the guard's status" in unknown.note


def test_events_with_whole_second_times_still_fall_inside_the_incident():
    late = {"reason": "RollbackRefused", "message": "m", "lastTimestamp": "2026-11-30T10:00:00Z"}
    status = contained_status(incident=incident(detectedAt=iso(0.4)))
    assert "RollbackRefused" in [e.what for e in assemble(status, [late]).entries]


def test_timeline_to_dict_carries_offsets_for_scripts():
    data = assemble(contained_status(), []).to_dict()
    assert data["incident"] == 1 and data["originLabel"] == "detection"
    assert [e["offsetSeconds"] for e in data["entries"]] == [0.0, 2.5, 2.8, 2.8, 20.0]


def test_status_of_a_guard_with_an_invalid_spec_still_shows_what_status_says():
    broken = guard({"phase": "Invalid", "message": "spec.metrics: too short"}, metrics=[])
    view = status_view(broken, T0)
    assert (view.phase, view.message, view.steps) == ("Invalid", "spec.metrics: too short", [])


def test_reverts_recorded_in_status_appear_once_with_the_manager_who_wrote_them():
    revert = {
        "action": "1-scale-0",
        "object": "Deployment/consumer",
        "field": "spec.replicas",
        "value": "2",
        "manager": "argocd-controller",
        "time": iso(8),
    }
    status = contained_status(incident=incident(reverts=1, reverted=[revert]))
    events = [
        event("ContainmentReverted", "Deployment/consumer ... (undoing 1-scale-0); ...", 8.3),
        event("ContainmentReverted", "Deployment/consumer ... (undoing 1-scale-0); ...", 30),
    ]
    told = assemble(status, events)
    reverted = [e for e in told.entries if e.what in ("reverted", "ContainmentReverted")]
    assert [(e.what, told.offset_of(e)) for e in reverted] == [
        ("reverted", "+8.0s"),
        ("ContainmentReverted", "+30.0s"),  # one status no longer keeps: shown from its Event
    ]
    assert "written by argocd-controller (undoing 1-scale-0)" in reverted[0].text


def test_a_contain_now_is_settled_once_its_step_is_recorded_not_when_first_seen():
    from releaseguard.domain.guard import CONTAIN_NOW, REARM
    from releaseguard.plugin.views import annotation_settled

    seen = {"handledAnnotations": {CONTAIN_NOW: "v"}, "phase": "Breaching", "actions": []}
    assert not annotation_settled(seen, CONTAIN_NOW, "v", set())  # incident first, step next
    acted = {**seen, "actions": [{"id": "1-scale-0"}]}
    assert annotation_settled(acted, CONTAIN_NOW, "v", set())
    assert not annotation_settled(acted, CONTAIN_NOW, "v", {"1-scale-0"})  # an old record
    assert annotation_settled({**seen, "phase": "Exhausted"}, CONTAIN_NOW, "v", set())
    assert not annotation_settled({**seen, "phase": "Contained"}, CONTAIN_NOW, "w", set())
    rearmed = {"handledAnnotations": {REARM: "r"}, "phase": "Watching"}
    assert annotation_settled(rearmed, REARM, "r", set())
