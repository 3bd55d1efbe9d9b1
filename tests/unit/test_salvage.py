"""An unreadable stored status keeps its readable parts, and says what it dropped."""

from releaseguard.domain.models import Phase
from releaseguard.domain.salvage import salvage_message, salvage_status


def test_a_readable_status_is_read_whole():
    status, dropped = salvage_status({"phase": "Contained"})
    assert status.phase is Phase.CONTAINED and dropped == []


def test_handled_annotations_survive_an_unreadable_field():
    raw = {
        "phase": "NoSuchPhase",
        "handledAnnotations": {"releaseguard.io/contain-now": "1", "bad": 7},
        "incident": {"number": "one"},
        "actions": [],
    }

    status, dropped = salvage_status(raw)

    assert status.handled_annotations == {"releaseguard.io/contain-now": "1"}
    assert status.phase is Phase.PENDING
    assert dropped == ["handledAnnotations[bad]", "incident", "phase"]
    assert "incident" in salvage_message(dropped)


def test_nothing_stored_is_an_empty_status():
    status, dropped = salvage_status(None)
    assert dropped == [] and status.handled_annotations == {}
