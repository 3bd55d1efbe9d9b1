"""Copies of what guards target: each guarded Deployment and its ReplicaSets, kept current
by this module's own watches, so that an evaluation neither GETs its target nor LISTs its
ReplicaSets every interval (two of its four API requests: tools/bench/scale.py).

Why not Kopf indexes (the first version): they held every Deployment and ReplicaSet of
the watched namespaces, and Kopf's handling of each watched object cost ~25 KiB of RSS
apiece, so memory grew with the whole cluster (README, "Measured numbers"). Here each
namespace that has a guard gets one watch per kind, in daemon threads (the client is
synchronous); every object streaming by is parsed, matched against what guards target,
and dropped unless a guard needs it. Memory grows with the guarded objects, not with the
cluster. Per namespace rather than cluster-wide: with `watchNamespaces` the chart grants
Roles in those namespaces only, and a namespace without guards then costs nothing (not
even parsing its churn); the price is two threads and two connections per namespace
that has guards.

Why no list: a watch needs a starting resourceVersion, and a list of the namespace would
give it along with every object in it, parsed page by page only to be dropped. Next to
2,000 unguarded Deployments with 3 ReplicaSets each, paginated lists (500 a page) left a
fresh operator 14-16 MiB larger for good, 35 MiB at their peak (the setup of
tools/bench/unguarded.py; 4 MiB with pages of 100).
So a watch starts from the namespace's current resourceVersion (a list of one item),
and each target's first evaluation reads it from the API server, as it would without
copies, and seeds the copies with what it read (`seed`); the watch keeps them current.

What this module must never do: hand out a copy it cannot vouch for. `TargetStore.lookup`
answers None unless the watches of both kinds are streaming and the target was seeded by
a read that began after both watches took their starting point: the read saw everything
before it, the watches deliver everything after it. Writes are ordered by
resourceVersion, compared as integers (Kubernetes 1.34 documents them as comparable:
https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions), and a
deletion leaves a tombstone for a while, so that a read that raced a deletion cannot
bring the object back.

Threads: watch threads write, evaluation threads read and seed, the event loop registers
interest; one lock guards the store. A stored object is never changed in place (a newer
version replaces it), so readers may keep what they got; they must not modify it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from releaseguard.adapters import metrics
from releaseguard.domain.changes import Obj, current_replica_set

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)

# The API server ends each watch after this long and we resume from where it ended.
WATCH_SECONDS = 300
START_TIMEOUT = (3.0, 30.0)  # (connect, read) seconds: the list that gives a watch its start
# The read timeout of a watch is the longest silence we accept: longer than the server's
# own end of the watch, so an idle namespace is not mistaken for a dead connection.
WATCH_TIMEOUT = (3.0, WATCH_SECONDS + 30.0)
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0
# A watch the server ends sooner than this without sending anything counts as a failure
# (backoff), so that a server that keeps closing at once is not asked again in a loop.
QUICK_END_SECONDS = 1.0
# How long a deletion is remembered. It only has to outlive a read that started before
# the deletion and seeds after it: two requests of at most 13 s each (kube.TIMEOUT).
TOMBSTONE_SECONDS = 120.0


class Kind(StrEnum):
    DEPLOYMENT = "Deployment"
    REPLICA_SET = "ReplicaSet"


def resource_version(obj: Obj) -> int:
    """An object's resourceVersion as an integer (0 when absent or not a number, so that
    any real version is newer)."""
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _stripped(obj: Obj) -> Obj:
    """A copy to keep, minus managedFields (most of an object's bytes)."""
    kept = dict(obj)
    meta = obj.get("metadata") or {}
    kept["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return kept


def _owner(rs: Obj) -> tuple[str, str] | None:
    """(name, uid) of the Deployment that owns a ReplicaSet, if one does."""
    for ref in (rs.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "Deployment" and ref.get("name"):
            return str(ref["name"]), str(ref.get("uid") or "")
    return None


def _key(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


@dataclass
class _Entry:
    version: int
    obj: Obj | None  # None: deleted (a tombstone, until it expires)
    owner: str = ""  # a ReplicaSet's Deployment
    owner_uid: str = ""


@dataclass
class _Interest:
    guards: int
    since: int  # when the first guard asked (a store sequence number)
    read: int = 0  # when the read that last seeded it began (likewise)


class WatchPhase(Enum):
    STARTING = "starting"  # no starting point yet: nothing can be vouched for
    STREAMING = "streaming"  # every event since its starting point is being applied
    FAILING = "failing"  # the watch broke; events may be missing until it resumes


@dataclass
class _WatchState:
    epoch: int
    phase: WatchPhase = WatchPhase.STARTING
    start: int = 0  # when it took its starting point (a store sequence number)


class TargetStore:
    """The copies and the bookkeeping that decides which to keep and which to trust.
    No I/O: the watches and the evaluations feed it (unit-tested without a cluster)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._seq = 0  # orders watch starts and evaluations' reads
        self._epochs = 0
        self._interests: dict[Key, _Interest] = {}
        self._per_namespace: Counter[str] = Counter()
        self._objects: dict[Kind, dict[Key, _Entry]] = {kind: {} for kind in Kind}
        self._sets_by_owner: dict[Key, set[str]] = {}  # (namespace, Deployment) -> names
        self._tombstones: deque[tuple[float, Kind, Key, int]] = deque()
        self._watches: dict[tuple[str, Kind], _WatchState] = {}

    # ------------------------------------------------------------ interest

    def want(self, key: Key) -> None:
        """A guard targets this Deployment (counted: guards may share a target)."""
        with self._lock:
            interest = self._interests.get(key)
            if interest is not None:
                interest.guards += 1
                return
            self._seq += 1
            self._interests[key] = _Interest(guards=1, since=self._seq)
            self._per_namespace[key[0]] += 1

    def release(self, key: Key) -> None:
        """One guard no longer targets this Deployment; the last one drops its copies."""
        with self._lock:
            interest = self._interests.get(key)
            if interest is None:
                return
            interest.guards -= 1
            if interest.guards > 0:
                return
            del self._interests[key]
            self._per_namespace[key[0]] -= 1
            if self._per_namespace[key[0]] <= 0:
                del self._per_namespace[key[0]]
            self._drop(Kind.DEPLOYMENT, key)
            for name in list(self._sets_by_owner.get(key, ())):
                self._drop(Kind.REPLICA_SET, (key[0], name))

    def wanted_in(self, namespace: str) -> bool:
        with self._lock:
            return namespace in self._per_namespace

    # ------------------------------------------------------------ watches

    def open_watch(self, namespace: str, kind: Kind) -> int:
        """A new watch of `kind` in `namespace` takes over; its epoch. Updates from any
        older watch of the same pair are ignored from now on."""
        with self._lock:
            self._epochs += 1
            self._watches[(namespace, kind)] = _WatchState(self._epochs)
            return self._epochs

    def close_watch(self, namespace: str, kind: Kind, epoch: int) -> None:
        with self._lock:
            if self._current(namespace, kind, epoch):
                del self._watches[(namespace, kind)]

    def watch_started(self, namespace: str, kind: Kind, epoch: int) -> None:
        """The watch has taken its starting point (the namespace's current version), the
        first time or again after 410 Gone: what it kept before may have missed changes,
        so its copies are dropped, and only reads that begin from now on are vouched."""
        with self._lock:
            if not self._current(namespace, kind, epoch):
                return
            self._seq += 1
            state = self._watches[(namespace, kind)]
            state.start, state.phase = self._seq, WatchPhase.STREAMING
            for key in [k for k in self._objects[kind] if k[0] == namespace]:
                self._drop(kind, key)

    def watch_failing(self, namespace: str, kind: Kind, epoch: int) -> None:
        self._set_phase(namespace, kind, epoch, WatchPhase.FAILING)

    def watch_gone(self, namespace: str, kind: Kind, epoch: int) -> None:
        """410 Gone: changes were missed; nothing is vouched for until it starts again."""
        with self._lock:
            if self._current(namespace, kind, epoch):
                self._watches[(namespace, kind)].phase = WatchPhase.STARTING

    def watch_resumed(self, namespace: str, kind: Kind, epoch: int) -> None:
        """The watch took up again where it broke off: nothing was missed."""
        self._set_phase(namespace, kind, epoch, WatchPhase.STREAMING)

    def apply(self, namespace: str, kind: Kind, epoch: int, event: str, obj: Obj) -> None:
        """One watch event: ADDED, MODIFIED or DELETED."""
        with self._lock:
            if not self._current(namespace, kind, epoch):
                return
            self._prune()
            obj.setdefault("metadata", {}).setdefault("namespace", namespace)
            if event == "DELETED":
                self._delete(kind, obj)
            else:
                self._put(kind, obj)

    # ------------------------------------------------------------ evaluations

    def lookup(self, key: Key) -> tuple[Obj, list[Obj]] | None:
        """The target and its ReplicaSets, if the store can vouch for them and they hold
        the current revision's ReplicaSet (the two kinds arrive on separate watches, so
        a rollout can show the new Deployment a moment before its ReplicaSet)."""
        with self._lock:
            interest = self._interests.get(key)
            if interest is None:
                return None
            for kind in Kind:
                state = self._watches.get((key[0], kind))
                if state is None or state.phase is not WatchPhase.STREAMING:
                    return None
                if interest.read <= state.start:  # not seeded since the watch started
                    return None
            entry = self._objects[Kind.DEPLOYMENT].get(key)
            if entry is None or entry.obj is None:
                return None
            deployment = entry.obj
            uid = (deployment.get("metadata") or {}).get("uid") or ""
            sets = self._sets_of(key, uid)
        if current_replica_set(deployment, sets) is None:
            return None
        return deployment, sets

    def begin_read(self) -> int:
        """Taken just before an evaluation reads its target from the API server, and
        handed back to `seed`: says whether the watches had started by then."""
        with self._lock:
            self._seq += 1
            return self._seq

    def seed(self, read: int, deployment: Obj, replica_sets: Iterable[Obj]) -> None:
        """What an evaluation read from the API server: the Deployment and all its
        ReplicaSets, `read` from `begin_read`. Kept where nothing newer is stored, and
        only for the kinds whose watch had started before the read began: the watch
        delivers what changes after that, but would not correct what changed before.
        Likewise a read that began before a guard asked for the target (again): what
        streamed by in between was dropped."""
        key = _key(deployment)
        with self._lock:
            interest = self._interests.get(key)
            if interest is None or read <= interest.since:
                return
            self._prune()
            started = {
                kind
                for kind in Kind
                if (state := self._watches.get((key[0], kind))) is not None
                and state.phase is not WatchPhase.STARTING
                and state.start < read
            }
            if Kind.DEPLOYMENT in started:
                self._put(Kind.DEPLOYMENT, deployment)
            if Kind.REPLICA_SET in started:
                for rs in replica_sets:
                    self._put(Kind.REPLICA_SET, rs)
            if started == set(Kind):
                interest.read = max(interest.read, read)

    def count(self, kind: Kind) -> int:
        """How many objects of `kind` are kept (tombstones not counted)."""
        with self._lock:
            return sum(1 for entry in self._objects[kind].values() if entry.obj is not None)

    # ------------------------------------------------------------ internals (locked)

    def _current(self, namespace: str, kind: Kind, epoch: int) -> bool:
        state = self._watches.get((namespace, kind))
        return state is not None and state.epoch == epoch

    def _set_phase(self, namespace: str, kind: Kind, epoch: int, phase: WatchPhase) -> None:
        with self._lock:
            if self._current(namespace, kind, epoch):
                state = self._watches[(namespace, kind)]
                if state.phase is not WatchPhase.STARTING:
                    state.phase = phase

    def _sets_of(self, owner: Key, uid: str) -> list[Obj]:
        sets = []
        for name in self._sets_by_owner.get(owner, ()):
            entry = self._objects[Kind.REPLICA_SET].get((owner[0], name))
            if entry is not None and entry.obj is not None and entry.owner_uid in ("", uid):
                sets.append(entry.obj)
        return sets

    def _wanted(self, kind: Kind, obj: Obj) -> tuple[str, str] | None:
        """(owner, owner uid) when a guard needs this object, else None."""
        ns, name = _key(obj)
        if kind is Kind.DEPLOYMENT:
            return ("", "") if (ns, name) in self._interests else None
        owner = _owner(obj)
        return owner if owner is not None and (ns, owner[0]) in self._interests else None

    def _put(self, kind: Kind, obj: Obj) -> None:
        """Store `obj` if a guard needs it and nothing newer is stored."""
        key = _key(obj)
        version = resource_version(obj)
        existing = self._objects[kind].get(key)
        if existing is not None and existing.version >= version:
            return
        wanted = self._wanted(kind, obj)
        if wanted is None:
            if existing is not None:  # no longer owned by a guarded Deployment
                self._drop(kind, key)
            return
        if existing is not None and existing.owner != wanted[0]:
            self._drop(kind, key)
        self._objects[kind][key] = _Entry(version, _stripped(obj), *wanted)
        if kind is Kind.REPLICA_SET:
            self._sets_by_owner.setdefault((key[0], wanted[0]), set()).add(key[1])

    def _delete(self, kind: Kind, obj: Obj) -> None:
        key = _key(obj)
        existing = self._objects[kind].get(key)
        if existing is None:
            if self._wanted(kind, obj) is None:
                return
            owner = _owner(obj) if kind is Kind.REPLICA_SET else None
            existing = _Entry(0, None, *(owner or ("", "")))
            self._objects[kind][key] = existing
            if owner is not None:
                self._sets_by_owner.setdefault((key[0], owner[0]), set()).add(key[1])
        version = resource_version(obj)
        if existing.version < version:
            existing.version, existing.obj = version, None
            self._tombstones.append((self._clock() + TOMBSTONE_SECONDS, kind, key, version))

    def _prune(self) -> None:
        now = self._clock()
        while self._tombstones and self._tombstones[0][0] <= now:
            _, kind, key, version = self._tombstones.popleft()
            entry = self._objects[kind].get(key)
            if entry is not None and entry.obj is None and entry.version == version:
                self._drop(kind, key)

    def _drop(self, kind: Kind, key: Key) -> None:
        entry = self._objects[kind].pop(key, None)
        if entry is None or kind is not Kind.REPLICA_SET:
            return
        owned = self._sets_by_owner.get((key[0], entry.owner))
        if owned is not None:
            owned.discard(key[1])
            if not owned:
                del self._sets_by_owner[(key[0], entry.owner)]


# ---------------------------------------------------------------- the watches


class _Gone(Exception):
    """410 Gone: the version to resume from is too old; start again."""


class _WatchError(Exception):
    pass


def _lines(response: Any) -> Iterator[bytes]:
    """The newline-delimited JSON events of a watch response, as they arrive."""
    pending = b""
    for chunk in response.stream(amt=None, decode_content=False):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield line


class Watch:
    """One watch of one kind in one namespace, in a daemon thread, feeding the store:
    started from the namespace's current resourceVersion (a consistent list of one item,
    raw JSON), with bookmarks, resumed where the server ended it, started again on 410
    Gone, retried with bounded backoff on any other failure."""

    def __init__(
        self, store: TargetStore, call: Callable[..., Any], namespace: str, kind: Kind
    ) -> None:
        self.store = store
        self.call = call  # e.g. AppsV1Api.list_namespaced_deployment
        self.namespace = namespace
        self.kind = kind
        self.epoch = store.open_watch(namespace, kind)
        self.failures = 0
        self._stopped = threading.Event()
        self._response: Any = None
        self._thread = threading.Thread(
            target=self.run, name=f"watch-{kind.value}-{namespace}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop now: a blocked read is interrupted rather than waited for."""
        self._stopped.set()
        self.store.close_watch(self.namespace, self.kind, self.epoch)
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):  # already closed: nothing to interrupt
                response.shutdown()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def run(self) -> None:
        version: str | None = None
        while not self._stopped.is_set():
            try:
                if version is None:
                    version = self._start()
                version = self._follow(version)
            except _Gone:
                self._gone()
                version = None
            except ApiException as exc:
                if exc.status == 410:
                    self._gone()
                    version = None
                else:
                    self._failed(f"{exc.status} {exc.reason}")
            except Exception as exc:  # any failure is retried; the watch must not die
                self._failed(f"{type(exc).__name__}: {exc}")

    def _gone(self) -> None:
        log.info("%s: too late to resume (410 Gone): starting again", self)
        self.store.watch_gone(self.namespace, self.kind, self.epoch)

    def _failed(self, why: str) -> None:
        if self._stopped.is_set():
            return
        self.failures += 1
        metrics.TARGET_WATCH_ERRORS.labels(self.kind.value).inc()
        self.store.watch_failing(self.namespace, self.kind, self.epoch)
        if self.failures == 1:
            log.warning(
                "%s failed (%s); retrying with backoff, and evaluations read their targets "
                "from the API server until it recovers",
                self,
                why,
            )
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self.failures - 1))
        self._stopped.wait(delay * random.uniform(0.5, 1.0))  # a backoff, not a wait for a state

    def _recovered(self) -> None:
        if self.failures:
            log.info("%s recovered after %d failed attempt(s)", self, self.failures)
            self.failures = 0

    def _start(self) -> str:
        """The namespace's current resourceVersion, to watch from."""
        response = self.call(
            self.namespace, limit=1, _preload_content=False, _request_timeout=START_TIMEOUT
        )
        version = str(json.loads(response.data)["metadata"]["resourceVersion"])
        self.store.watch_started(self.namespace, self.kind, self.epoch)
        self._recovered()
        return version

    def _follow(self, version: str) -> str:
        """Watch from `version` until the server ends the watch; the version reached."""
        opened = time.monotonic()
        response = self.call(
            self.namespace,
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_SECONDS,
            _preload_content=False,
            _request_timeout=WATCH_TIMEOUT,
        )
        self._response = response
        try:
            if self._stopped.is_set():  # stop() came before the response existed
                return version
            resumed = False
            for line in _lines(response):
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise _Gone()
                    what = f"{obj.get('code')} {obj.get('reason')}: {obj.get('message')}"
                    raise _WatchError(what)
                version = (obj.get("metadata") or {}).get("resourceVersion") or version
                if not resumed:  # the first event: the server took up where we left off
                    resumed = True
                    self.store.watch_resumed(self.namespace, self.kind, self.epoch)
                    self._recovered()
                if kind != "BOOKMARK":
                    self.store.apply(self.namespace, self.kind, self.epoch, str(kind), obj)
            if not resumed and time.monotonic() - opened < QUICK_END_SECONDS:
                raise _WatchError("the server ended the watch at once, sending nothing")
            self._recovered()
            return version
        finally:
            self._response = None
            # Closed, not returned to the pool with part of a stream unread.
            response.close()
            response.release_conn()

    def __str__(self) -> str:
        return f"watch of {self.kind.value}s in namespace {self.namespace}"


class Interest:
    """One guard's interest in its target, which its spec may change."""

    def __init__(self, cache: TargetCache, namespace: str) -> None:
        self._cache = cache
        self._namespace = namespace
        self._key: Key | None = None

    def follow(self, deployment: str | None) -> None:
        """The guard now targets `deployment` (None: nothing)."""
        key = (self._namespace, deployment) if deployment else None
        if key == self._key:
            return
        if key is not None:
            self._cache.want(key)
        if self._key is not None:
            self._cache.release(self._key)
        self._key = key

    def release(self) -> None:
        self.follow(None)


class TargetCache:
    """The store plus the watches that feed it: one per kind in each namespace where at
    least one guard targets a Deployment, started with the first and stopped with the
    last. Its own connections (an ApiClient from the same configuration): a watch holds
    one for minutes, and the evaluations' pool should not lend them."""

    def __init__(self, api: client.ApiClient, store: TargetStore | None = None) -> None:
        self._config = api.configuration
        self._apps: client.AppsV1Api | None = None
        self.store = store or TargetStore()
        self._lock = threading.Lock()
        self._watches: dict[str, list[Watch]] = {}
        self._closed = False
        for kind in Kind:
            metrics.TARGET_WATCH_ERRORS.labels(kind.value)  # exported from 0
            count = functools.partial(self.store.count, kind)
            metrics.TARGET_CACHE_OBJECTS.labels(kind.value).set_function(count)

    def interest(self, namespace: str) -> Interest:
        return Interest(self, namespace)

    def lookup(self, namespace: str, name: str) -> tuple[Obj, list[Obj]] | None:
        return self.store.lookup((namespace, name))

    def begin_read(self) -> int:
        return self.store.begin_read()

    def seed(self, read: int, deployment: Obj, replica_sets: Iterable[Obj]) -> None:
        self.store.seed(read, deployment, replica_sets)

    def want(self, key: Key) -> None:
        with self._lock:
            self.store.want(key)
            if self._closed or key[0] in self._watches:
                return
            apps = self._apps_api()
            calls = {
                Kind.DEPLOYMENT: apps.list_namespaced_deployment,
                Kind.REPLICA_SET: apps.list_namespaced_replica_set,
            }
            watches = [Watch(self.store, calls[kind], key[0], kind) for kind in Kind]
            self._watches[key[0]] = watches
            for watch in watches:
                watch.start()

    def release(self, key: Key) -> None:
        with self._lock:
            self.store.release(key)
            if self.store.wanted_in(key[0]):
                return
            for watch in self._watches.pop(key[0], []):
                watch.stop()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every watch (operator shutdown); no new ones start."""
        with self._lock:
            self._closed = True
            watches = [w for ws in self._watches.values() for w in ws]
            self._watches.clear()
        for watch in watches:
            watch.stop()
        for watch in watches:
            watch.join(timeout)

    def _apps_api(self) -> client.AppsV1Api:
        if self._apps is None:
            self._apps = client.AppsV1Api(client.ApiClient(self._config))
        return self._apps
