"""What a guard owes its notification sinks (domain/notifications.py): moments derived from
status transitions, the outbox, settling delivery outcomes, and the bodies each sink gets."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from tests.unit.builders import (
    BREACHING,
    HEALTHY,
    RELEASE_A,
    T0,
    apply_planned,
    at,
    guard_spec,
    ready,
    tick,
)

from releaseguard.domain.models import (
    MAX_OUTBOX,
    ActionResult,
    GuardStatus,
    Moment,
    OwedNotification,
    Phase,
    Revert,
    WebhookFormat,
)
from releaseguard.domain.notifications import (
    ALERT_NAME,
    GuardId,
    Outcome,
    alerts,
    idempotency_key,
    moments,
    record_owed,
    settle,
    wants_alert_repost,
    webhook_request,
)

SPEC = guard_spec(notify=[{"webhook": {"urlSecretRef": {"name": "hooks", "key": "url"}}}])
GUARD = GuardId("shop", "checkout-guard", "uid-1", "checkout")


def _kinds(found: list[tuple[Moment, int, str, str]]) -> list[Moment]:
    return [m for m, *_ in found]


def _contained() -> tuple[GuardStatus, GuardStatus, GuardStatus]:
    """Three statuses: counting, confirmed with a step applied, then recovered."""
    first = tick(SPEC, GuardStatus(), at(0)).status
    confirmed = tick(SPEC, first, at(15))
    contained = apply_planned(confirmed, at(15)).status
    recovered = tick(SPEC, contained, at(30), obs=HEALTHY).status
    return first, contained, recovered


def test_confirmed_breach_with_an_applied_step_owes_incident_opened_then_action_applied():
    first, contained, _ = _contained()
    found = moments(first, contained)
    assert _kinds(found) == [Moment.INCIDENT_OPENED, Moment.ACTION_APPLIED]
    assert found[1][1:3] == (1, "1-featureflag-0")


def test_a_breach_still_being_counted_owes_nothing():
    first = tick(SPEC, GuardStatus(), at(0)).status
    assert moments(GuardStatus(), first) == []


def test_a_steady_contained_guard_owes_nothing_more():
    _, contained, _ = _contained()
    again = tick(SPEC, contained, at(20)).status
    assert moments(contained, again) == []


def test_a_failed_step_owes_action_failed():
    first = tick(SPEC, GuardStatus(), at(0)).status
    failed = apply_planned(tick(SPEC, first, at(15)), at(15), result=ActionResult.FAILED).status
    assert _kinds(moments(first, failed)) == [Moment.INCIDENT_OPENED, Moment.ACTION_FAILED]


def test_recovery_owes_recovered_once():
    _, contained, recovered = _contained()
    assert _kinds(moments(contained, recovered)) == [Moment.RECOVERED]
    later = tick(SPEC, recovered, at(45), obs=HEALTHY).status
    assert moments(recovered, later) == []


def test_rearm_by_annotation_owes_rearmed():
    _, _, recovered = _contained()
    rearmed = tick(
        SPEC, recovered, at(45), obs=HEALTHY, annotations={"releaseguard.io/rearm": "x"}
    ).status
    assert _kinds(moments(recovered, rearmed)) == [Moment.REARMED]


def test_a_new_release_rearms_and_owes_rearmed():
    _, contained, _ = _contained()
    rearmed = tick(SPEC, contained, at(30), obs=HEALTHY, target=RELEASE_A).status
    assert Moment.REARMED in _kinds(moments(contained, rearmed))


def test_a_dry_run_incident_that_ends_by_itself_owes_recovered_not_rearmed():
    spec = guard_spec(dryRun=True)
    first = tick(spec, GuardStatus(), at(0)).status
    breaching = apply_planned(tick(spec, first, at(15)), at(15), result=ActionResult.DRY_RUN).status
    over = tick(spec, breaching, at(30), obs=HEALTHY).status
    assert over.incident is not None and over.incident.closed
    assert _kinds(moments(breaching, over)) == [Moment.RECOVERED]


def test_nothing_applicable_owes_exhausted():
    first = tick(SPEC, GuardStatus(), at(0)).status
    nothing = ready(SPEC, s0="flag already off", s1="no known-good revision")
    exhausted = tick(SPEC, first, at(15), readiness=nothing).status
    assert exhausted.phase is Phase.EXHAUSTED
    assert _kinds(moments(first, exhausted)) == [Moment.INCIDENT_OPENED, Moment.EXHAUSTED]


def test_rollback_refused_during_an_incident_is_owed_once():
    first = tick(SPEC, GuardStatus(), at(0)).status
    refused = ready(SPEC, s1="rollback refused: Job migrate succeeded")
    opened = tick(SPEC, first, at(15), readiness=refused).status
    assert Moment.ROLLBACK_REFUSED in _kinds(moments(first, opened))
    again = tick(SPEC, opened, at(20), readiness=refused).status
    assert Moment.ROLLBACK_REFUSED not in _kinds(moments(opened, again))


def test_each_revert_owes_containment_reverted_naming_who_undid_what():
    _, contained, _ = _contained()
    assert contained.incident is not None
    revert = Revert(
        action="1-featureflag-0",
        object="ConfigMap/flags",
        field="data[new-checkout]",
        value="true",
        manager="argocd-controller",
        time=at(20),
    )
    reverted = contained.model_copy(
        update={
            "incident": contained.incident.model_copy(update={"reverts": 1, "reverted": [revert]})
        }
    )
    found = moments(contained, reverted)
    assert _kinds(found) == [Moment.CONTAINMENT_REVERTED]
    _, number, action_id, line = found[0]
    assert (number, action_id) == (1, "1-featureflag-0#1")
    assert "argocd-controller" in line and "ConfigMap/flags" in line
    again = reverted.model_copy(
        update={
            "incident": reverted.incident.model_copy(
                update={"reverts": 2, "reverted": [revert, revert]}
            )
        }
    )
    assert [a for _, _, a, _ in moments(reverted, again)] == ["1-featureflag-0#2"]
    owed = record_owed(reverted, again, sinks=1, now=at(21))
    body, _ = webhook_request(GUARD, owed.outbox[-1], owed, WebhookFormat.JSON, None)
    assert json.loads(body)["action"]["type"] == "FeatureFlag"


def test_record_owed_writes_one_entry_per_moment_owed_to_every_sink():
    first, contained, _ = _contained()
    owed = record_owed(first, contained, sinks=2, now=at(15))
    assert contained.incident is not None and contained.incident.uid
    uid = contained.incident.uid
    assert [e.key for e in owed.outbox] == [
        f"{uid}/IncidentOpened/",
        f"{uid}/ActionApplied/1-featureflag-0",
    ]
    assert all(e.sinks == [0, 1] for e in owed.outbox)
    assert owed.notifications is not None and owed.notifications.pending == 4
    assert owed.outbox[1].evidence[0].name == "error-rate"
    assert owed.outbox[1].evidence[0].bound == "max 0.05"


def test_without_sinks_nothing_is_owed():
    first, contained, _ = _contained()
    assert record_owed(first, contained, sinks=0, now=at(15)) == contained


def test_the_same_moment_is_never_owed_twice():
    first, contained, _ = _contained()
    once = record_owed(first, contained, sinks=1, now=at(15))
    twice = record_owed(first, once, sinks=1, now=at(16))
    assert [e.key for e in twice.outbox] == [e.key for e in once.outbox]


def test_keys_name_the_incident_by_its_uid_so_a_status_reset_does_not_repeat_them():
    first, contained, _ = _contained()
    owed = record_owed(first, contained, sinks=1, now=at(15))
    # The status is reset (restored from an old backup, or cleared by hand): the next
    # incident is number 1 again, at a later time, so with a different uid.
    later = contained.model_copy(
        update={"incident": contained.incident.model_copy(update={"uid": "20261127T080000Z"})}
    )
    again = record_owed(first, later, sinks=1, now=at(15))
    assert [e.incident for e in again.outbox] == [e.incident for e in owed.outbox] == [1, 1]
    assert not {e.key for e in again.outbox} & {e.key for e in owed.outbox}


def test_an_incident_without_a_uid_keys_by_its_number():
    first, contained, _ = _contained()
    old = contained.model_copy(
        update={"incident": contained.incident.model_copy(update={"uid": None})}
    )
    owed = record_owed(first, old, sinks=1, now=at(15))
    assert [e.key for e in owed.outbox] == ["1/IncidentOpened/", "1/ActionApplied/1-featureflag-0"]


def test_the_outbox_is_bounded_and_what_it_drops_counts_as_failed():
    entries = [
        OwedNotification(
            key=f"1/Recovered/{i}",
            moment=Moment.RECOVERED,
            incident=1,
            time=T0,
            phase=Phase.CONTAINED,
            sinks=[0],
        )
        for i in range(MAX_OUTBOX)
    ]
    first, contained, _ = _contained()
    full = contained.model_copy(update={"outbox": entries})
    owed = record_owed(first, full, sinks=1, now=at(15))
    assert len(owed.outbox) == MAX_OUTBOX
    assert owed.notifications is not None and owed.notifications.failed == 2
    assert "outbox full" in owed.notifications.last_error
    assert owed.outbox[-1].key.endswith("/ActionApplied/1-featureflag-0")


def test_settle_removes_what_every_sink_received_and_counts():
    first, contained, _ = _contained()
    owed = record_owed(first, contained, sinks=2, now=at(15))
    opened, applied = (e.key for e in owed.outbox)
    outcomes = [
        Outcome(opened, 0, True),
        Outcome(opened, 1, True),
        Outcome(applied, 0, False, "HTTP 404 Not Found"),
    ]
    settled = settle(owed, outcomes, sinks=2)
    assert [(e.key, e.sinks) for e in settled.outbox] == [(applied, [1])]
    counts = settled.notifications
    assert counts is not None
    assert (counts.sent, counts.failed, counts.pending) == (2, 1, 1)
    assert "HTTP 404" in counts.last_error and "ActionApplied" in counts.last_error


def test_settle_drops_sinks_removed_from_the_spec():
    first, contained, _ = _contained()
    owed = record_owed(first, contained, sinks=2, now=at(15))
    settled = settle(owed, [], sinks=1)
    assert all(e.sinks == [0] for e in settled.outbox)
    assert settled.notifications is not None and settled.notifications.pending == 2


def test_outbox_survives_the_wire_round_trip():
    first, contained, _ = _contained()
    owed = record_owed(first, contained, sinks=1, now=at(15))
    assert GuardStatus.model_validate(owed.wire()).outbox == owed.outbox


def _entry(moment: Moment = Moment.ACTION_APPLIED) -> tuple[OwedNotification, GuardStatus]:
    first, contained, _ = _contained()
    owed = record_owed(first, contained, sinks=1, now=at(15))
    entry = next(e for e in owed.outbox if e.moment is moment)
    return entry, owed


def test_json_webhook_is_signed_and_carries_the_idempotency_key():
    entry, status = _entry()
    body, headers = webhook_request(GUARD, entry, status, WebhookFormat.JSON, "s3cret")
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-ReleaseGuard-Signature"] == f"sha256={expected}"
    assert status.incident is not None
    key = f"uid-1/{status.incident.uid}/ActionApplied/1-featureflag-0"
    assert headers["Idempotency-Key"] == key == idempotency_key("uid-1", entry)
    doc = json.loads(body)
    assert doc["idempotencyKey"] == key
    assert doc["guard"] == {"namespace": "shop", "name": "checkout-guard", "uid": "uid-1"}
    assert (doc["target"], doc["incident"], doc["phase"]) == ("checkout", 1, "Contained")
    assert doc["action"]["type"] == "FeatureFlag"
    assert (doc["action"]["before"], doc["action"]["after"]) == ({"k": "before"}, {"k": "after"})
    assert doc["evidence"] == [
        {"name": "error-rate", "value": 0.31, "bound": "max 0.05", "verdict": "Breach"}
    ]


def test_json_webhook_without_an_hmac_key_is_unsigned():
    entry, status = _entry()
    _, headers = webhook_request(GUARD, entry, status, WebhookFormat.JSON, None)
    assert "X-ReleaseGuard-Signature" not in headers
    assert "Idempotency-Key" in headers


def test_slack_gets_one_text_naming_guard_moment_and_evidence():
    entry, status = _entry()
    body, _ = webhook_request(GUARD, entry, status, WebhookFormat.SLACK, "ignored")
    doc = json.loads(body)
    assert list(doc) == ["text"]
    assert "*ActionApplied* shop/checkout-guard" in doc["text"]
    assert "error-rate 0.31 (max 0.05, Breach)" in doc["text"]


@pytest.mark.parametrize(
    ("phase", "severity"), [(Phase.CONTAINED, "warning"), (Phase.EXHAUSTED, "critical")]
)
def test_a_firing_alert_names_the_guard_and_resolves_the_other_phases(phase, severity):
    sent = alerts(GUARD, 3, phase, True, "why", T0, timedelta(minutes=5))
    live = [a for a in sent if a["labels"]["phase"] == phase.value]
    assert len(live) == 1
    alert = live[0]
    assert alert["labels"] == {
        "alertname": ALERT_NAME,
        "namespace": "shop",
        "guard": "checkout-guard",
        "target": "checkout",
        "severity": severity,
        "phase": phase.value,
    }
    assert alert["startsAt"] == "2026-11-26T10:00:00Z"
    assert alert["endsAt"] == "2026-11-26T10:05:00Z"
    others = [a for a in sent if a is not alert]
    assert others and all(a["endsAt"] == "2026-11-26T10:00:00Z" for a in others)


def test_a_resolving_alert_ends_every_phase_now():
    sent = alerts(GUARD, 3, Phase.CONTAINED, False, "healthy", T0, timedelta(minutes=5))
    assert all(a["endsAt"] == "2026-11-26T10:00:00Z" and "startsAt" not in a for a in sent)


def test_the_alert_is_reposted_only_while_the_incident_is_open_and_unrecovered():
    spec = guard_spec(notify=[{"alertmanager": {}}])
    _, contained, recovered = _contained()
    assert wants_alert_repost(spec, contained)
    assert not wants_alert_repost(spec, recovered)
    assert not wants_alert_repost(SPEC, contained)  # no alertmanager sink


def test_a_notify_entry_needs_exactly_one_sink():
    with pytest.raises(ValueError, match="exactly one"):
        guard_spec(notify=[{}])
    with pytest.raises(ValueError, match="exactly one"):
        guard_spec(
            notify=[{"alertmanager": {}, "webhook": {"urlSecretRef": {"name": "h", "key": "u"}}}]
        )


def test_breaching_builder_is_a_breach():  # guards the fixtures the tests above rely on
    assert BREACHING.metrics["error-rate"].value == 0.31
