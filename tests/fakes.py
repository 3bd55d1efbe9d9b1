"""In-memory stand-ins at the adapters' boundary, so GuardService runs without a cluster.

`FakeCluster` implements adapters/cluster.py's `Cluster` Protocol as an API server
would for what guards use: objects by (namespace, kind, name), a resourceVersion that
makes a stale replace answer 409, ReplicaSets by owner, Ready pods by label, Jobs,
and the guard's status subresource (a JSON merge patch). Hooks let a test act as a
concurrent writer or crash the "process" between a write and the next.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from releaseguard.adapters.cluster import Missing
from releaseguard.domain.announce import Announcement
from releaseguard.domain.observations import QueryResult

Obj = dict[str, Any]


class Crash(BaseException):
    """The operator process died (raised by a hook; BaseException so nothing catches it)."""


def _merge(target: Obj, patch: Mapping[str, Any]) -> Obj:
    """RFC 7386 JSON merge patch."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


class FakeCluster:
    def __init__(self, guard: str = "g") -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.guard = guard  # the ReleaseGuard whose status patch_status writes
        self.status: Obj = {}
        self.writes: list[tuple[str, str, Obj]] = []  # (kind, name, body) of each replace
        self.status_writes: list[Obj] = []
        self._versions = itertools.count(100)
        # Called with (ns, kind, body) before a replace is checked and stored.
        self.before_replace: Callable[[str, str, Obj], None] | None = None
        # Called with (ns, kind, body) after a replace is stored.
        self.after_replace: Callable[[str, str, Obj], None] | None = None
        # Called with the status patch before it is stored; may raise.
        self.before_status: Callable[[Obj], None] | None = None

    # ------------------------------------------------------------ test set-up

    def put(self, ns: str, obj: Obj) -> Obj:
        """Create or overwrite an object (as another writer would), with a new version."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(next(self._versions))
        meta.setdefault("uid", f"uid-{meta['name']}")
        self.objects[(ns, obj["kind"], meta["name"])] = obj
        return copy.deepcopy(obj)

    def get(self, ns: str, kind: str, name: str) -> Obj:
        return copy.deepcopy(self.objects[(ns, kind, name)])

    def delete(self, ns: str, kind: str, name: str) -> None:
        del self.objects[(ns, kind, name)]

    # ------------------------------------------------------------ Cluster

    def read(self, ns: str, kind: str, name: str) -> Obj:
        obj = self.objects.get((ns, kind, name))
        if obj is None:
            raise Missing(f"{kind} {name} not found")
        return copy.deepcopy(obj)

    def replace(self, ns: str, kind: str, body: Obj) -> None:
        if self.before_replace is not None:
            self.before_replace(ns, kind, body)
        name = body["metadata"]["name"]
        stored = self.objects.get((ns, kind, name))
        if stored is None:
            raise ApiException(status=404, reason="Not Found")
        if stored["metadata"]["resourceVersion"] != body["metadata"].get("resourceVersion"):
            raise ApiException(status=409, reason="Conflict")
        self.writes.append((kind, name, copy.deepcopy(body)))
        self.put(ns, body)
        if self.after_replace is not None:
            self.after_replace(ns, kind, body)

    def replica_sets(self, ns: str, deployment: Obj) -> list[Obj]:
        uid = deployment["metadata"]["uid"]
        return [
            copy.deepcopy(o)
            for (n, kind, _), o in self.objects.items()
            if n == ns
            and kind == "ReplicaSet"
            and any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])
        ]

    def ready_pods(self, ns: str, selector: Mapping[str, str]) -> int:
        return sum(
            1
            for (n, kind, _), o in self.objects.items()
            if n == ns
            and kind == "Pod"
            and all(o["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
            and o.get("ready", True)
        )

    def succeeded_jobs(self, ns: str, names: Sequence[str], since: str | None) -> list[str]:
        return [
            name
            for name in names
            if (job := self.objects.get((ns, "Job", name))) is not None
            and (job.get("status") or {}).get("succeeded", 0) >= 1
        ]

    def patch_status(self, ns: str, name: str, status: dict[str, Any]) -> Obj:
        assert name == self.guard, name
        if self.before_status is not None:
            self.before_status(status)
        self.status_writes.append(copy.deepcopy(status))
        _merge(self.status, status)
        return {"status": copy.deepcopy(self.status)}


class FakePrometheus:
    """Answers every query with what `answers` holds for its text (default: 0)."""

    def __init__(self, answers: dict[str, QueryResult] | None = None) -> None:
        self.answers: dict[str, QueryResult] = answers or {}
        self.asked: list[str] = []

    def query_many(self, queries: Mapping[str, str], namespace: str = "") -> dict[str, Any]:
        self.asked.extend(queries.values())
        return {
            key: self.answers.get(text, QueryResult.number(0.0)) for key, text in queries.items()
        }


class FakePool:
    def __init__(self, prometheus: FakePrometheus) -> None:
        self.prometheus = prometheus

    def get(self, url: str, timeout: float, token: str | None) -> FakePrometheus:
        return self.prometheus


class NoTargetCopies:
    """The watch-fed copies, empty: every evaluation reads its target."""

    def lookup(self, ns: str, name: str) -> tuple[Obj, list[Obj]] | None:
        return None

    def begin_read(self) -> int:
        return 0

    def seed(self, read: int, deployment: Obj, replica_sets: Any) -> None:
        pass


class FakeEvents:
    def __init__(self) -> None:
        self.posted: list[Announcement] = []

    def post(
        self, namespace: str, name: str, uid: str, announcement: Announcement, now: datetime
    ) -> bool:
        self.posted.append(announcement)
        return True
