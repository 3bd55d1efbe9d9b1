"""Probes and the leader fence: what /healthz and /readyz answer, and that a leader
which stops renewing gives up before a standby may take the Lease."""

from __future__ import annotations

import threading
import time

import pytest
from kubernetes import client

from releaseguard.adapters import leadership
from releaseguard.adapters.leadership import Leadership
from releaseguard.cli import LOOP_STALL_SECONDS, Liveness
from waiting import wait_until


def campaign(on_lost=None) -> Leadership:
    # Nothing is sent: the election thread is never started here.
    return Leadership(client.ApiClient(), "ns", "lease", "me_1", on_lost=on_lost)


def test_the_fence_is_shorter_than_the_lease():
    assert leadership.RENEW_DEADLINE < leadership.LEASE_DURATION
    # A renew attempt's worst case ends before the fence would have fired anyway.
    assert sum(leadership.REQUEST_TIMEOUT) < leadership.RENEW_DEADLINE


def test_a_standby_is_live_and_ready_while_its_election_thread_runs():
    lead = campaign()
    probes = Liveness(lead)
    assert probes.live() == "the leader election thread died"  # not started yet
    lead._thread = threading.Thread(target=threading.Event().wait, daemon=True)
    lead._thread.start()
    assert probes.live() is None
    assert probes.ready() is None


def test_a_leader_is_ready_once_its_event_loop_runs_and_dead_when_it_stalls():
    probes = Liveness(None)
    assert probes.ready() == "starting"
    probes.beat()
    assert probes.live() is None and probes.ready() is None
    probes.last_beat = time.monotonic() - LOOP_STALL_SECONDS - 1
    assert "event loop has not run" in (probes.live() or "")
    assert probes.ready() == probes.live()


def test_a_leader_that_stops_renewing_gives_up_within_the_renew_deadline(monkeypatch):
    lost: list[str] = []
    lead = campaign(on_lost=lost.append)
    monkeypatch.setattr(leadership, "RENEW_DEADLINE", 0.5)
    lead._leading.set()
    lead._mark_renewed()
    started = time.monotonic()
    threading.Thread(target=lead._fence, daemon=True).start()
    wait_until(lambda: lost, timeout=5, describe="the fence to fire")
    assert "no renewal" in lost[0]
    assert time.monotonic() - started < 0.5 + 2 * leadership.FENCE_CHECK_SECONDS + 0.5


@pytest.mark.parametrize("error", [ConnectionRefusedError("refused"), OSError("reset")])
def test_a_failed_lease_request_is_a_failed_attempt_not_the_end_of_the_election(error):
    lead = campaign()

    def boom(*_, **__):
        raise error

    lead._election.election_config.lock.get = boom
    assert lead._election.try_acquire_or_renew() is False
    assert not lead.leading
