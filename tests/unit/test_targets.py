"""TargetStore: which Deployments and ReplicaSets the operator keeps, when it vouches for
them, and how watch events and evaluations' reads are ordered. No cluster: the store is
fed the way the watches and the evaluations feed it."""

from __future__ import annotations

from typing import Any

import pytest

from releaseguard.adapters.targets import TOMBSTONE_SECONDS, Kind, TargetStore
from unit.target_objects import APP, NS, deployment, replica_set


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Feed:
    """The store with its two watches for NS open, as TargetCache opens them."""

    def __init__(self, store: TargetStore) -> None:
        self.store = store
        self.epochs = {kind: store.open_watch(NS, kind) for kind in Kind}

    def start(self, *kinds: Kind) -> None:
        for kind in kinds or tuple(Kind):
            self.store.watch_started(NS, kind, self.epochs[kind])

    def event(self, kind: Kind, event: str, obj: dict[str, Any]) -> None:
        self.store.apply(NS, kind, self.epochs[kind], event, obj)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> TargetStore:
    return TargetStore(clock=clock)


@pytest.fixture
def feed(store: TargetStore) -> Feed:
    return Feed(store)


def read(store: TargetStore, dep: dict[str, Any], sets: list[dict[str, Any]]) -> None:
    """An evaluation that reads its target now and seeds the store with it."""
    store.seed(store.begin_read(), dep, sets)


def names(found: Any) -> tuple[str, list[str]] | None:
    if found is None:
        return None
    dep, sets = found
    return dep["metadata"]["name"], sorted(rs["metadata"]["name"] for rs in sets)


# ---------------------------------------------------------------- what is kept


def test_only_the_targeted_deployment_and_its_replica_sets_are_kept(store, feed):
    store.want(APP)
    feed.start()
    read(store, deployment(), [replica_set(1)])
    feed.event(Kind.DEPLOYMENT, "ADDED", deployment("other", uid="uid-other"))
    for rs in (
        replica_set(2, rv=12),
        replica_set(1, owner="other", owner_uid="uid-other"),
        replica_set(1, owner=None),
        replica_set(1, owner="app", owner_kind="StatefulSet"),
    ):
        feed.event(Kind.REPLICA_SET, "ADDED", rs)

    assert store.count(Kind.DEPLOYMENT) == 1
    assert store.count(Kind.REPLICA_SET) == 2
    assert names(store.lookup(APP)) == ("app", ["app-1", "app-2"])


def test_kept_copies_have_no_managed_fields(store, feed):
    store.want(APP)
    feed.start()
    read(store, deployment(), [replica_set(1)])
    feed.event(Kind.REPLICA_SET, "ADDED", replica_set(2, rv=12))
    dep, sets = store.lookup(APP)
    assert "managedFields" not in dep["metadata"]
    assert len(sets) == 2
    assert all("managedFields" not in rs["metadata"] for rs in sets)


def test_an_unguarded_namespace_or_name_is_not_kept(store, feed):
    store.want(("elsewhere", "app"))
    feed.start()
    feed.event(Kind.DEPLOYMENT, "ADDED", deployment())
    feed.event(Kind.REPLICA_SET, "ADDED", replica_set(1))
    read(store, deployment(), [replica_set(1)])
    assert store.count(Kind.DEPLOYMENT) == 0
    assert store.count(Kind.REPLICA_SET) == 0


def test_replica_sets_of_an_earlier_deployment_with_the_same_name_are_not_handed_out(store, feed):
    store.want(APP)
    feed.start()
    read(store, deployment(uid="uid-new"), [replica_set(1, rv=20, owner_uid="uid-new")])
    feed.event(Kind.REPLICA_SET, "ADDED", replica_set(7, rv=30, owner_uid="uid-old"))
    assert names(store.lookup(APP)) == ("app", ["app-1"])


def test_a_replica_set_released_by_its_deployment_is_dropped(store, feed):
    store.want(APP)
    feed.start()
    read(store, deployment(revision=2), [replica_set(1), replica_set(2, rv=12)])
    orphaned = replica_set(1, rv=40, owner=None)
    orphaned["metadata"]["name"] = "app-1"
    feed.event(Kind.REPLICA_SET, "MODIFIED", orphaned)
    assert names(store.lookup(APP)) == ("app", ["app-2"])


# ---------------------------------------------------------------- interest


def test_two_guards_on_one_target_keep_it_until_both_release_it(store, feed):
    store.want(APP)
    store.want(APP)
    feed.start()
    read(store, deployment(), [replica_set(1)])
    store.release(APP)
    assert names(store.lookup(APP)) == ("app", ["app-1"])
    assert store.wanted_in(NS)
    store.release(APP)
    assert store.lookup(APP) is None
    assert store.count(Kind.DEPLOYMENT) == store.count(Kind.REPLICA_SET) == 0
    assert not store.wanted_in(NS)


def test_a_target_wanted_again_needs_a_new_read(store, feed):
    store.want(APP)
    feed.start()
    read(store, deployment(), [replica_set(1)])
    store.release(APP)
    feed.event(Kind.DEPLOYMENT, "MODIFIED", deployment(rv=50))  # unwanted: dropped
    store.want(APP)
    assert store.lookup(APP) is None


def test_a_read_from_before_a_target_was_wanted_again_is_not_kept(store, feed):
    store.want(APP)
    feed.start()
    read(store, deployment(), [replica_set(1)])
    token = store.begin_read()
    store.release(APP)
    # Unwanted meanwhile: the rollout streams by and is dropped.
    feed.event(Kind.DEPLOYMENT, "MODIFIED", deployment(rv=50, revision=2))
    feed.event(Kind.REPLICA_SET, "ADDED", replica_set(2, rv=51))
    store.want(APP)
    store.seed(token, deployment(), [replica_set(1)])
    assert store.lookup(APP) is None
    assert store.count(Kind.DEPLOYMENT) == 0


def test_releasing_what_was_never_wanted_changes_nothing(store, feed):
    store.want(APP)
    feed.start()
    read(store, deployment(), [replica_set(1)])
    store.release((NS, "never"))
    assert names(store.lookup(APP)) == ("app", ["app-1"])


# ---------------------------------------------------------------- when it vouches


def test_watched_objects_alone_are_not_vouched_for_without_a_read(store, feed):
    store.want(APP)
    feed.start()
    # The Deployment changes, so it streams by; its older ReplicaSet never does.
    feed.event(Kind.DEPLOYMENT, "MODIFIED", deployment(rv=101, revision=2))
    feed.event(Kind.REPLICA_SET, "ADDED", replica_set(2, rv=102))
    assert store.lookup(APP) is None

    read(store, deployment(rv=101, revision=2), [replica_set(1), replica_set(2, rv=102)])
    assert names(store.lookup(APP)) == ("app", ["app-1", "app-2"])


def test_a_read_that_began_before_a_watch_started_is_neither_kept_nor_vouched_for(store, feed):
    store.want(APP)
    feed.start(Kind.DEPLOYMENT)
    early = store.begin_read()
    feed.start(Kind.REPLICA_SET)
    store.seed(early, deployment(), [replica_set(1)])
    assert store.lookup(APP) is None
    assert store.count(Kind.REPLICA_SET) == 0, "a change before the start would be missed"
    read(store, deployment(), [replica_set(1)])
    assert names(store.lookup(APP)) == ("app", ["app-1"])


def test_nothing_is_vouched_for_before_both_watches_started(store, feed):
    store.want(APP)
    feed.start(Kind.DEPLOYMENT)
    read(store, deployment(), [replica_set(1)])
    assert store.lookup(APP) is None


def test_a_failing_watch_sends_evaluations_to_the_api_until_it_resumes(store, feed):
    store.want(APP)
    feed.start()
    read(store, deployment(), [replica_set(1)])
    store.watch_failing(NS, Kind.REPLICA_SET, feed.epochs[Kind.REPLICA_SET])
    assert store.lookup(APP) is None
    store.watch_resumed(NS, Kind.REPLICA_SET, feed.epochs[Kind.REPLICA_SET])
    assert names(store.lookup(APP)) == ("app", ["app-1"])


def test_a_failure_before_the_start_does_not_count_as_started(store, feed):
    store.want(APP)
    feed.start(Kind.DEPLOYMENT)
    epoch = feed.epochs[Kind.REPLICA_SET]
    store.watch_failing(NS, Kind.REPLICA_SET, epoch)
    store.watch_resumed(NS, Kind.REPLICA_SET, epoch)
    read(store, deployment(), [replica_set(1)])
    assert store.lookup(APP) is None


def test_gone_drops_what_the_watch_kept_and_waits_for_a_new_read(store, feed):
    store.want(APP)
    feed.start()
    read(store, deployment(revision=2), [replica_set(1), replica_set(2, rv=12)])
    epoch = feed.epochs[Kind.REPLICA_SET]
    store.watch_gone(NS, Kind.REPLICA_SET, epoch)
    assert store.lookup(APP) is None
    feed.start(Kind.REPLICA_SET)
    assert store.lookup(APP) is None
    assert store.count(Kind.REPLICA_SET) == 0  # app-1 may have gone meanwhile
    read(store, deployment(revision=2), [replica_set(2, rv=12)])
    assert names(store.lookup(APP)) == ("app", ["app-2"])


def test_a_rollout_whose_replica_set_has_not_arrived_is_not_vouched_for(store, feed):
    store.want(APP)
    feed.start()
    read(store, deployment(), [replica_set(1)])
    feed.event(Kind.DEPLOYMENT, "MODIFIED", deployment(rv=120, revision=2))
    assert store.lookup(APP) is None
    feed.event(Kind.REPLICA_SET, "ADDED", replica_set(2, rv=121))
    dep, sets = store.lookup(APP)
    assert dep["metadata"]["resourceVersion"] == "120"
    assert len(sets) == 2


def test_a_stopped_watch_cannot_vouch_for_anything(store, feed):
    store.want(APP)
    feed.start()
    read(store, deployment(), [replica_set(1)])
    store.close_watch(NS, Kind.DEPLOYMENT, feed.epochs[Kind.DEPLOYMENT])
    assert store.lookup(APP) is None


def test_an_older_watch_of_the_same_namespace_is_ignored(store, feed):
    store.want(APP)
    stale = feed.epochs[Kind.DEPLOYMENT]
    fresh = Feed(store)  # the namespace's watches were restarted
    fresh.start()
    read(store, deployment(), [replica_set(1)])
    store.watch_failing(NS, Kind.DEPLOYMENT, stale)
    store.apply(NS, Kind.DEPLOYMENT, stale, "DELETED", deployment(rv=300))
    assert names(store.lookup(APP)) == ("app", ["app-1"])


# ---------------------------------------------------------------- ordering


def test_a_seed_does_not_replace_a_newer_watched_version(store, feed):
    store.want(APP)
    feed.start()
    token = store.begin_read()
    feed.event(Kind.DEPLOYMENT, "MODIFIED", deployment(rv=150))
    store.seed(token, deployment(rv=120), [replica_set(1)])
    dep, _ = store.lookup(APP)
    assert dep["metadata"]["resourceVersion"] == "150"


def test_an_older_event_does_not_replace_a_newer_seed(store, feed):
    store.want(APP)
    feed.start()
    read(store, deployment(rv=150), [replica_set(1)])
    feed.event(Kind.DEPLOYMENT, "MODIFIED", deployment(rv=120))
    dep, _ = store.lookup(APP)
    assert dep["metadata"]["resourceVersion"] == "150"


def test_resource_versions_compare_as_numbers_not_text(store, feed):
    store.want(APP)
    feed.start()
    read(store, deployment(rv=9), [replica_set(1, rv=9)])
    feed.event(Kind.DEPLOYMENT, "MODIFIED", deployment(rv=10))
    dep, _ = store.lookup(APP)
    assert dep["metadata"]["resourceVersion"] == "10"


def test_a_deletion_seen_before_a_late_seed_is_not_undone(store, feed):
    store.want(APP)
    feed.start()
    # An evaluation read at rv 60; the Deployment was deleted at 70 and the watch said
    # so before the evaluation got to seed what it read.
    token = store.begin_read()
    feed.event(Kind.DEPLOYMENT, "DELETED", deployment(rv=70))
    store.seed(token, deployment(rv=50), [replica_set(1, rv=51)])
    assert store.lookup(APP) is None
    assert store.count(Kind.DEPLOYMENT) == 0


def test_a_deleted_replica_set_is_not_brought_back_by_a_late_seed(store, feed):
    store.want(APP)
    feed.start()
    current = deployment(revision=2)
    read(store, current, [replica_set(1), replica_set(2, rv=12)])
    token = store.begin_read()
    feed.event(Kind.REPLICA_SET, "DELETED", replica_set(1, rv=80))
    store.seed(token, current, [replica_set(1), replica_set(2, rv=12)])
    assert names(store.lookup(APP)) == ("app", ["app-2"])


def test_a_recreated_deployment_replaces_its_tombstone(store, feed):
    store.want(APP)
    feed.start()
    read(store, deployment(rv=50), [replica_set(1)])
    feed.event(Kind.DEPLOYMENT, "DELETED", deployment(rv=70))
    assert store.lookup(APP) is None
    feed.event(Kind.DEPLOYMENT, "ADDED", deployment(rv=90, uid="uid-2"))
    feed.event(Kind.REPLICA_SET, "ADDED", replica_set(1, rv=91, owner_uid="uid-2"))
    dep, sets = store.lookup(APP)
    assert dep["metadata"]["uid"] == "uid-2"
    assert [rs["metadata"]["resourceVersion"] for rs in sets] == ["91"]


def test_tombstones_expire(store, feed, clock):
    store.want(APP)
    feed.start()
    token = store.begin_read()
    feed.event(Kind.DEPLOYMENT, "DELETED", deployment(rv=70))
    clock.now += TOMBSTONE_SECONDS + 1
    feed.event(Kind.REPLICA_SET, "MODIFIED", replica_set(1, rv=71))  # any write prunes
    # A seed this late cannot happen (reads time out long before); if it did, nothing
    # would stop it any more.
    store.seed(token, deployment(rv=50), [replica_set(1, rv=71)])
    assert names(store.lookup(APP)) == ("app", ["app-1"])
