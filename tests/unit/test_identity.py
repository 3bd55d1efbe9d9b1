"""Incident identity and action markers: an old incident's marker is never taken as
this incident's action, and two guards' entries on one object are both kept."""

import json

import pytest

from releaseguard.domain.identity import (
    MAX_MARKER_ENTRIES,
    MarkerEntry,
    belongs_to,
    incident_recorded,
    incident_uid,
    of_incident,
    parse_action_id,
    parse_markers,
    with_marker,
    without_marker,
)
from releaseguard.domain.models import GuardStatus, Incident
from unit.builders import at, guard_spec, tick


def incident(number=1, uid="u1", detected=0, closed=False):
    return Incident(number=number, detected_at=at(detected), uid=uid, closed=closed)


def entry(id_="1-canaryweight-0", time=10, incident_uid_="u1"):
    return MarkerEntry(id=id_, time=at(time), incident=incident_uid_, before={"a": 1})


# ---------------------------------------------------------------- uid and ids


def test_incident_uid_is_the_opening_time_to_the_microsecond():
    assert incident_uid(at(1.5)) == "20261126T100001.500000Z"
    assert incident_uid(at(1.5)) != incident_uid(at(1.500001))


@pytest.mark.parametrize(
    ("text", "number", "type_", "index", "rest"),
    [
        ("3-canaryweight-1", 3, "canaryweight", 1, ""),
        ("12-rollback-0-r2", 12, "rollback", 0, "-r2"),
    ],
)
def test_action_ids_parse(text, number, type_, index, rest):
    parsed = parse_action_id(text)
    assert (parsed.number, parsed.type, parsed.index, parsed.rest) == (number, type_, index, rest)


@pytest.mark.parametrize("text", ["", "x-1", "1-Scale-0", "1-scale", "a-scale-0"])
def test_malformed_action_ids_parse_to_none(text):
    assert parse_action_id(text) is None


def test_of_incident_compares_the_number_not_a_prefix():
    assert of_incident("1-scale-0", 1)
    assert not of_incident("11-scale-0", 1)


# ---------------------------------------------------------------- which markers count


def test_marker_of_the_open_incident_belongs_to_it():
    assert belongs_to(entry(), incident())


def test_marker_of_an_old_incident_with_the_same_number_does_not_belong():
    # A status reset restarted numbering at 1: the real incident 1 left this marker.
    assert not belongs_to(entry(incident_uid_="old"), incident(uid="new"))


def test_no_marker_belongs_to_a_closed_or_missing_incident():
    assert not belongs_to(entry(), incident(closed=True))
    assert not belongs_to(entry(), None)


def test_legacy_marker_without_uid_counts_only_if_not_older_than_the_incident():
    legacy = entry(incident_uid_="", time=10)
    assert belongs_to(legacy, incident(detected=5))
    assert not belongs_to(legacy, incident(detected=20))
    assert not belongs_to(entry("2-canaryweight-0", incident_uid_=""), incident(detected=5))


def test_incident_is_recorded_only_when_the_stored_status_holds_it_open():
    assert incident_recorded(incident(), incident())
    assert not incident_recorded(None, incident())
    assert not incident_recorded(incident(uid="other"), incident())
    assert not incident_recorded(incident(closed=True), incident())
    assert incident_recorded(None, None)


# ---------------------------------------------------------------- marker text


def test_one_guard_writes_the_single_entry_form_and_reads_it_back():
    text = with_marker(None, "guard-a", entry())
    value = json.loads(text)
    assert value["guard"] == "guard-a" and value["id"] == "1-canaryweight-0"
    assert value["incident"] == "u1"
    assert parse_markers(text) == {"guard-a": entry()}


def test_a_second_guard_keeps_the_first_guards_entry():
    first = with_marker(None, "guard-a", entry())
    both = with_marker(first, "guard-b", entry("2-canaryweight-1", 20, "u2"))
    markers = parse_markers(both)
    assert markers["guard-a"] == entry()
    assert markers["guard-b"].id == "2-canaryweight-1"
    again = with_marker(both, "guard-a", entry("1-canaryweight-0-r1", 30))
    assert set(parse_markers(again)) == {"guard-a", "guard-b"}
    assert parse_markers(again)["guard-a"].id == "1-canaryweight-0-r1"


def test_entries_are_bounded_keeping_the_newest_and_the_writer():
    text = None
    for i in range(MAX_MARKER_ENTRIES + 3):
        text = with_marker(text, f"g{i}", entry(time=100 - i))  # later guards are older
    text = with_marker(text, "writer", entry(time=0))
    markers = parse_markers(text)
    assert len(markers) == MAX_MARKER_ENTRIES
    assert "writer" in markers and "g0" in markers


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[1, 2]",
        '{"guard": "g", "id": 5, "time": "2026-01-01T00:00:00+00:00"}',
        '{"guard": "g", "id": "1-scale-0", "time": "yesterday"}',
        '{"g": "flat"}',
        "x" * 20_000,
    ],
)
def test_unreadable_markers_are_empty(text):
    assert parse_markers(text) == {}


def test_the_pre_uid_single_entry_form_is_read():
    old = json.dumps({"guard": "g", "id": "1-scale-0", "time": "2026-11-26T10:00:05+00:00"})
    (only,) = parse_markers(old).values()
    assert only.incident == "" and only.time == at(5)


def test_a_new_incident_has_a_uid_and_the_templates_that_breached():
    first = tick(guard_spec(), GuardStatus(), at(0))
    opened = tick(guard_spec(), first.status, at(15)).status.incident
    assert opened.uid == incident_uid(at(15))
    assert opened.breached_templates == ["bbb"]


def test_removing_one_guards_entry_keeps_the_others():
    both = with_marker(with_marker(None, "guard-a", entry()), "guard-b", entry("2-scale-0"))

    left = without_marker(both, "guard-a")

    assert set(parse_markers(left)) == {"guard-b"}
    assert without_marker(left, "guard-b") is None
