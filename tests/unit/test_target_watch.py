"""The watch loop that feeds TargetStore, against a scripted fake of the client's list
call: a start from the namespace's current version, resuming from the last version
seen, starting again on 410 Gone, and failures that are counted, logged once per streak
and never silent."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from prometheus_client import REGISTRY

from releaseguard.adapters import targets
from releaseguard.adapters.targets import Kind, TargetStore, Watch
from unit.target_objects import APP, NS, deployment, replica_set
from waiting import wait_until


class Page:
    """A list response: no items needed, the watch only takes its version."""

    def __init__(self, version: int) -> None:
        body = {"items": [], "metadata": {"resourceVersion": str(version)}}
        self.data = json.dumps(body).encode()


class Stream:
    """A watch response: its events, then the server's end (or, if `hang`, silence
    until the client shuts it down)."""

    def __init__(self, events: list[tuple[str, dict[str, Any]]], hang: bool = False) -> None:
        self.events = events
        self.hang = hang
        self.shut = threading.Event()

    def stream(self, amt: Any = None, decode_content: bool = False) -> Any:
        for kind, obj in self.events:
            line = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
            yield line[:7]  # lines arrive split across chunks
            yield line[7:]
        if self.hang:
            self.shut.wait(30)
            raise ConnectionError("shut down")

    def shutdown(self) -> None:
        self.shut.set()

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


class FakeList:
    """Plays `script` (responses or exceptions), one per call, then a silent watch;
    records each call."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.calls: list[dict[str, Any]] = []

    def __call__(self, namespace: str, **kwargs: Any) -> Any:
        assert namespace == NS
        self.calls.append(kwargs)
        if not self.script:
            return Stream([], hang=True)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    def watching(self) -> bool:
        return any(c.get("watch") for c in self.calls)


def watch_errors(kind: Kind) -> float:
    value = REGISTRY.get_sample_value(
        "releaseguard_target_watch_errors_total", {"kind": kind.value}
    )
    return value or 0.0


def bookmark(version: int) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": str(version)}}


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(targets, "BACKOFF_FIRST", 0.01)


@pytest.fixture
def store() -> TargetStore:
    store = TargetStore()
    store.want(APP)
    return store


def run_both(store: TargetStore, deployments: FakeList, sets: FakeList) -> list[Watch]:
    watches = [
        Watch(store, deployments, NS, Kind.DEPLOYMENT),
        Watch(store, sets, NS, Kind.REPLICA_SET),
    ]
    for watch in watches:
        watch.start()
    return watches


def seed_once_watching(store: TargetStore, *fakes: FakeList) -> None:
    """An evaluation's read, begun once both watches have their starting point."""
    wait_until(lambda: all(f.watching() for f in fakes), timeout=5, describe="watching")
    store.seed(store.begin_read(), deployment(rv=90), [replica_set(1, rv=91)])


def stop(watches: list[Watch]) -> None:
    for watch in watches:
        watch.stop()
        watch.join(5)
        assert not watch.alive(), f"{watch} did not stop"


def test_starts_from_the_current_version_and_resumes_from_bookmarks(store):
    deployments = FakeList(
        [
            Page(100),
            Stream([("BOOKMARK", bookmark(150))]),
            Stream([("MODIFIED", deployment(rv=160))]),
        ]
    )
    sets = FakeList([Page(100)])
    watches = run_both(store, deployments, sets)
    try:
        seed_once_watching(store, deployments, sets)
        wait_until(
            lambda: (
                (found := store.lookup(APP)) and found[0]["metadata"]["resourceVersion"] == "160"
            ),
            timeout=5,
            describe=lambda: f"the watched version; calls {deployments.calls}",
        )
    finally:
        stop(watches)
    start, *follows = deployments.calls
    assert start["limit"] == 1 and not start.get("watch")
    assert [c["resource_version"] for c in follows[:3]] == ["100", "150", "160"]
    assert all(c["watch"] and c["allow_watch_bookmarks"] for c in follows)
    assert all(c["_request_timeout"][1] > c["timeout_seconds"] for c in follows)


def test_gone_means_start_again_not_resume(store):
    deployments = FakeList(
        [
            Page(100),
            Stream([("ERROR", {"kind": "Status", "code": 410, "reason": "Expired"})]),
            Page(300),
        ]
    )
    sets = FakeList([Page(100)])
    before = watch_errors(Kind.DEPLOYMENT)
    watches = run_both(store, deployments, sets)
    try:
        wait_until(
            lambda: len(deployments.calls) >= 4,
            timeout=5,
            describe=lambda: f"calls {deployments.calls}",
        )
    finally:
        stop(watches)
    assert [bool(c.get("watch")) for c in deployments.calls[:4]] == [False, True, False, True]
    assert deployments.calls[3]["resource_version"] == "300"
    assert watch_errors(Kind.DEPLOYMENT) == before, "starting again is routine, not an error"


def test_failures_are_counted_logged_once_per_streak_and_stop_vouching(store, caplog):
    failure = ApiException(status=500, reason="Internal Server Error")
    sets = FakeList([Page(100), Stream([("BOOKMARK", bookmark(110))]), failure, failure])
    deployments = FakeList([Page(100)])
    before = watch_errors(Kind.REPLICA_SET)
    caplog.set_level(logging.INFO, logger=targets.__name__)
    watches = run_both(store, deployments, sets)
    try:
        # After the failures the fake answers a silent watch: connected again, but no
        # event has yet shown that the server took up where it left off.
        wait_until(lambda: len(sets.calls) >= 5, timeout=5, describe=lambda: sets.calls)
        store.seed(store.begin_read(), deployment(rv=90), [replica_set(1, rv=91)])
        assert store.lookup(APP) is None, "vouched for copies while the watch was failing"
    finally:
        stop(watches)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "500" in warnings[0].getMessage()
    assert watch_errors(Kind.REPLICA_SET) == before + 2
    assert sets.calls[-1]["resource_version"] == "110", "resumed, not started again"


def test_a_watch_that_recovers_vouches_again_and_says_so(store, caplog):
    failure = ApiException(status=503, reason="Service Unavailable")
    sets = FakeList([Page(100), failure, Stream([("BOOKMARK", bookmark(120))], hang=True)])
    deployments = FakeList([Page(100)])
    caplog.set_level(logging.INFO, logger=targets.__name__)
    watches = run_both(store, deployments, sets)
    try:
        seed_once_watching(store, deployments, sets)
        wait_until(
            lambda: any("recovered" in r.getMessage() for r in caplog.records),
            timeout=5,
            describe="the recovery logged",
        )
        wait_until(lambda: store.lookup(APP), timeout=5, describe="vouched for again")
    finally:
        stop(watches)


def test_a_watch_the_server_ends_at_once_is_a_failure_not_a_loop(store):
    sets = FakeList([Page(100), Stream([]), Stream([])])
    deployments = FakeList([Page(100)])
    before = watch_errors(Kind.REPLICA_SET)
    watches = run_both(store, deployments, sets)
    try:
        wait_until(lambda: len(sets.calls) >= 4, timeout=5, describe=lambda: sets.calls)
    finally:
        stop(watches)
    assert watch_errors(Kind.REPLICA_SET) == before + 2


def test_stop_interrupts_a_silent_watch_at_once(store):
    deployments, sets = FakeList([Page(100)]), FakeList([Page(100)])
    watches = run_both(store, deployments, sets)
    seed_once_watching(store, deployments, sets)
    wait_until(lambda: store.lookup(APP), timeout=5, describe="vouched for")
    stop(watches)  # asserts each thread ended within 5 s, well before the 30 s hang
    assert store.lookup(APP) is None
