"""The objects and fields each running guard's steps write, per namespace, in memory.

The operator runs one daemon per guard; each registers its claims here when it starts
and on every evaluation, and forgets them when it stops, so every guard can see which
other guards of its namespace write the same field (domain/ownership.py decides who
acts). Thread-safe: evaluations run in worker threads.

A guard is known here from its daemon's start, before its first evaluation (daemons
start together when the operator lists the guards, and each waits a random part of its
interval before it evaluates), so two overlapping guards see each other before either
acts.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from releaseguard.domain.ownership import Claim, GuardIdentity


class ClaimRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_ns: dict[str, dict[str, tuple[GuardIdentity, dict[int, Claim]]]] = {}

    def register(self, namespace: str, guard: GuardIdentity, claims: Mapping[int, Claim]) -> None:
        with self._lock:
            self._by_ns.setdefault(namespace, {})[guard.uid] = (guard, dict(claims))

    def forget(self, namespace: str, uid: str) -> None:
        with self._lock:
            guards = self._by_ns.get(namespace)
            if guards is not None:
                guards.pop(uid, None)
                if not guards:
                    del self._by_ns[namespace]

    def others(self, namespace: str, uid: str) -> list[tuple[GuardIdentity, dict[int, Claim]]]:
        with self._lock:
            guards = self._by_ns.get(namespace) or {}
            return [entry for key, entry in guards.items() if key != uid]
