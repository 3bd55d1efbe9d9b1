"""The Notifier (adapters/notify.py) against a real local HTTP server: delivery, retries
after a receiver comes back, and the sinks that must never hold a worker for long (slow,
garbage, redirect). No Kubernetes involved."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from e2e.receiver import Receiver, free_port
from releaseguard.adapters import metrics, notify
from releaseguard.adapters.notify import Delivery, DeliveryError, Notifier, post
from releaseguard.domain.notifications import Outcome
from waiting import wait_until


def _delivery(url: str, key: str = "1/IncidentOpened/", created: datetime | None = None):
    return Delivery(
        uid="uid-1",
        key=key,
        sink=0,
        kind="webhook",
        moment="IncidentOpened",
        url=url,
        body=b'{"moment": "IncidentOpened"}',
        headers={"Content-Type": "application/json", "Idempotency-Key": f"uid-1/{key}"},
        created=created or datetime.now(UTC),
    )


def _outcomes(notifier: Notifier) -> list[Outcome]:
    got: list[Outcome] = []

    def collected() -> list[Outcome]:
        got.extend(notifier.collect("uid-1"))
        return got

    return wait_until(collected, timeout=20, describe="a delivery outcome")


def test_a_delivery_reaches_the_receiver_with_its_headers():
    receiver = Receiver()
    notifier = Notifier(workers=1)
    notifier.submit(_delivery(receiver.url))
    assert _outcomes(notifier) == [Outcome("1/IncidentOpened/", 0, True)]
    (got,) = receiver.messages()
    assert got.headers["Idempotency-Key"] == "uid-1/1/IncidentOpened/"
    assert not notifier.owes("uid-1", "1/IncidentOpened/", 0)


def test_a_receiver_down_at_first_gets_the_notification_once_it_is_back(monkeypatch):
    monkeypatch.setattr(notify, "BACKOFF_FIRST", 0.2)
    port = free_port()
    retried = metrics.NOTIFICATIONS.labels("webhook", "IncidentOpened", "retried")
    before = retried._value.get()
    notifier = Notifier(workers=1)
    notifier.submit(_delivery(f"http://127.0.0.1:{port}/hook"))
    # at least one attempt refused (the point of the test), counted by the operator's metric
    wait_until(lambda: retried._value.get() > before, timeout=10, describe="a refused attempt")
    assert notifier.owes("uid-1", "1/IncidentOpened/", 0)
    notifier.submit(_delivery(f"http://127.0.0.1:{port}/hook"))  # owed already: ignored
    receiver = Receiver(port)
    assert _outcomes(notifier) == [Outcome("1/IncidentOpened/", 0, True)]
    assert len(receiver.messages()) == 1


def test_a_delivery_past_its_window_fails_instead_of_retrying():
    old = datetime.now(UTC) - timedelta(minutes=11)
    notifier = Notifier(workers=1)
    notifier.submit(_delivery(f"http://127.0.0.1:{free_port()}/hook", created=old))
    (outcome,) = _outcomes(notifier)
    assert not outcome.delivered and "ConnectionError" in outcome.error


def test_a_redirect_is_not_followed_and_fails_without_retry():
    receiver = Receiver()
    receiver.mode = "redirect"
    with pytest.raises(DeliveryError, match="302") as err:
        post(receiver.url, b"{}", {})
    assert not err.value.retry
    assert len(receiver.messages()) == 1  # the redirect target was never asked


def test_a_garbage_answer_is_a_retryable_failure():
    receiver = Receiver()
    receiver.mode = "garbage"
    with pytest.raises(DeliveryError) as err:
        post(receiver.url, b"{}", {})
    assert err.value.retry


def test_a_slow_sink_costs_at_most_the_read_timeout(monkeypatch):
    monkeypatch.setattr(notify, "READ_TIMEOUT", 1.0)
    receiver = Receiver()
    receiver.mode, receiver.delay = "slow", 5.0
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="Timeout"):
        post(receiver.url, b"{}", {})
    assert time.monotonic() - started < 3.0


def test_submit_never_blocks_and_a_full_queue_is_a_failure():
    notifier = Notifier(workers=0, queue_size=1)
    started = time.monotonic()
    notifier.submit(_delivery("http://127.0.0.1:9/x", key="a"))
    notifier.submit(_delivery("http://127.0.0.1:9/x", key="b"))
    assert time.monotonic() - started < 0.5
    assert notifier.collect("uid-1") == [Outcome("b", 0, False, notify_full())]


def notify_full() -> str:
    return "the operator's notification queue is full"


def test_an_older_alert_state_still_retrying_is_superseded_by_a_newer_one(monkeypatch):
    monkeypatch.setattr(notify, "BACKOFF_FIRST", 0.5)
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/v2/alerts"
    notifier = Notifier(workers=1)
    firing = replace(_delivery(url, key="1/ActionApplied/a"), kind="alertmanager", order=1)
    resolved = replace(_delivery(url, key="1/Recovered/"), kind="alertmanager", order=2)
    notifier.submit(firing)  # refused: Alertmanager is down, so it waits for a retry
    wait_until(lambda: notifier._later, timeout=5)  # refused once, waiting to retry
    notifier.submit(replace(firing, order=3))  # the same entry again: ignored, not newer
    notifier.submit(resolved)
    receiver = Receiver(port)
    outcomes: list[Outcome] = []
    wait_until(lambda: outcomes.extend(notifier.collect("uid-1")) or len(outcomes) >= 2, 20)
    assert {o.key for o in outcomes if o.delivered} == {"1/ActionApplied/a", "1/Recovered/"}
    # Only the newest state reached Alertmanager: the firing post was never sent after it.
    assert [m.headers["Idempotency-Key"] for m in receiver.messages()] == ["uid-1/1/Recovered/"]
