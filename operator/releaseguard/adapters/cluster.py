"""The cluster as the service sees it: a `Cluster` reads and writes objects, and the
functions here read what a guard needs and write one step, exactly once.

`Kube` (adapters/kube.py) is the Cluster of a real API server; tests use an in-memory
one (tests/fakes.py). What a step writes, whether it still applies, dry run and marker
adoption are decided in the domain (domain/applicability.py); these functions only
read, ask, and write.

Exactly once: a step's write carries, in the same request, this guard's entry of the
`releaseguard.io/action` marker (domain/identity.py). If the process dies after the
write and before the status write, the next process finds the entry, records the
action from it, and does not write again.

Concurrency: writes are replaces of the object as read, so they carry its
resourceVersion; a concurrent writer makes the API server answer 409, and the write is
re-planned on a fresh read, after a short jittered pause, a bounded number of times. A
Deployment in the middle of a rollout gets a new resourceVersion with every status update
of its controller, several a second, so back-to-back retries can all lose that race (CI
saw five in a row on a loaded machine); the pauses let the controller's burst pass.
Nobody else's fields are overwritten with stale values.
"""

from __future__ import annotations

import base64
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from releaseguard.domain import applicability, changes, steps
from releaseguard.domain.applicability import Action, StepView, Surroundings
from releaseguard.domain.availability import target_facts
from releaseguard.domain.changes import Obj
from releaseguard.domain.guard import TargetFacts
from releaseguard.domain.models import (
    ActionRecord,
    ActionResult,
    GuardSpec,
    GuardStatus,
    Step,
)

log = logging.getLogger(__name__)

CONFLICT_RETRIES = 10
CONFLICT_PAUSE_FIRST = 0.05  # seconds; doubled on each conflict up to the cap
CONFLICT_PAUSE_CAP = 1.0  # the pauses of all ten attempts add up to at most 5.55 s


def conflict_pause(attempt: int, jitter: float | None = None) -> float:
    """Seconds to wait after the `attempt`-th 409 (from 0) before reading again: doubling
    from 50 ms to a 1 s cap, times a jitter in [0.5, 1) so that two writers who collided
    do not collide again in step."""
    jitter = random.random() if jitter is None else jitter
    return min(CONFLICT_PAUSE_FIRST * 2**attempt, CONFLICT_PAUSE_CAP) * (0.5 + jitter / 2)


# A Secret's owner opts it in to being read for guards (docs/security.md): without the
# label, anyone who may create a guard could have the operator read any Secret of the
# namespace and send it to a Prometheus of their choosing.
USABLE_BY_GUARDS = "releaseguard.io/usable-by-guards"


class Missing(Exception):
    """A named object does not exist: the spec cannot work (phase Invalid)."""


class SecretNotLabelled(Exception):
    """A Secret a guard names lacks the label USABLE_BY_GUARDS="true" (phase Invalid)."""


class Cluster(Protocol):
    """Reads and writes of the objects guards name. Every call is bounded in time.

    `kind` is one of ConfigMap, HTTPRoute, Service, Deployment, Secret, Application.
    Errors: Missing for an object that does not exist, ApiException otherwise (409 for
    a replace whose resourceVersion is stale)."""

    def read(self, ns: str, kind: str, name: str) -> Obj: ...

    def replace(self, ns: str, kind: str, body: Obj) -> None: ...

    def replica_sets(self, ns: str, deployment: Obj) -> list[Obj]: ...

    def ready_pods(self, ns: str, selector: Mapping[str, str]) -> int: ...

    def succeeded_jobs(self, ns: str, names: Sequence[str], since: str | None) -> list[str]: ...

    def patch_status(self, ns: str, name: str, status: dict[str, Any]) -> Obj: ...


# ------------------------------------------------------------------ reads


def target(
    cluster: Cluster, ns: str, name: str, cached: tuple[Obj, list[Obj]] | None = None
) -> tuple[Obj, list[Obj], TargetFacts]:
    """The target and its ReplicaSets, from `cached` (the operator's watch-fed copies)
    when it holds the current revision's ReplicaSet, read from the API otherwise: the
    two kinds arrive on separate watches, so a rollout can show the new Deployment a
    moment before its ReplicaSet."""
    if cached is not None:
        deployment, sets = cached
        if changes.current_replica_set(deployment, sets) is not None:
            return deployment, sets, target_facts(deployment, sets)
    deployment = cluster.read(ns, "Deployment", name)
    sets = cluster.replica_sets(ns, deployment)
    return deployment, sets, target_facts(deployment, sets)


def secret_value(cluster: Cluster, ns: str, name: str, key: str) -> str:
    secret = cluster.read(ns, "Secret", name)
    labels = (secret.get("metadata") or {}).get("labels") or {}
    if labels.get(USABLE_BY_GUARDS) != "true":
        raise SecretNotLabelled(
            f'Secret {name} does not carry the label {USABLE_BY_GUARDS}: "true"; '
            "its owner must add it before guards may use it"
        )
    data = (secret.get("data") or {}).get(key)
    if data is None:
        raise Missing(f"Secret {name} has no key {key}")
    # Binary data decodes to U+FFFD characters, which the caller rejects: never raise.
    return base64.b64decode(data).decode(errors="replace").strip()


def view_steps(
    cluster: Cluster,
    ns: str,
    spec: GuardSpec,
    status: GuardStatus,
    target_obj: Obj,
    target_sets: list[Obj],
) -> list[StepView]:
    views = []
    for index, step in enumerate(spec.steps):
        try:
            views.append(view_step(cluster, ns, spec, status, index, step, target_obj, target_sets))
        except Missing as exc:
            views.append(applicability.missing_view(index, step, spec, str(exc)))
    return views


def view_step(
    cluster: Cluster,
    ns: str,
    spec: GuardSpec,
    status: GuardStatus,
    index: int,
    step: Step,
    target_obj: Obj | None = None,
    target_sets: list[Obj] | None = None,
    pinned_hash: str | None = None,
) -> StepView:
    """Read the step's object (and what decides whether it applies) and ask the domain."""
    if steps.kind_of(step).on_target:
        if target_obj is None or target_sets is None:
            target_obj = cluster.read(ns, "Deployment", spec.target.deployment)
            target_sets = cluster.replica_sets(ns, target_obj)
        since = applicability.rollout_started(target_obj, target_sets)
        jobs = cluster.succeeded_jobs(ns, list(spec.irreversible_changes.jobs), since)
        around = Surroundings(replica_sets=target_sets, succeeded_jobs=jobs)
        return applicability.view(index, step, spec, status, target_obj, around, pinned_hash)
    kind, name = applicability.object_of(step, spec)
    obj = cluster.read(ns, kind, name)
    around = Surroundings()
    if (selector := steps.ready_pods_selector(step, obj)) is not None:
        around = Surroundings(ready_pods=cluster.ready_pods(ns, selector))
    return applicability.view(index, step, spec, status, obj, around, pinned_hash)


# ------------------------------------------------------------------ writes


def write_once(
    cluster: Cluster,
    ns: str,
    kind: str,
    action: Action,
    guard_uid: str,
    spec: GuardSpec,
    fresh: Callable[[], tuple[Obj, Any]],
    now: Callable[[], datetime],
) -> ActionRecord:
    """Write the change the domain gives for the object as `fresh()` reads it (with the
    marker), once; a 409 pauses (`conflict_pause`), re-reads and asks again, at most
    CONFLICT_RETRIES times in all.

    `fresh()`: the object and its Change | NotApplicable; Missing becomes a Failed record."""
    for attempt in range(CONFLICT_RETRIES):
        try:
            obj, change = fresh()
        except Missing as exc:
            return action.failed(now(), str(exc))
        markers = applicability.markers_of(obj)
        at = now()
        write = applicability.next_write(action, guard_uid, markers, change, spec, at)
        if isinstance(write, ActionRecord):
            return write
        try:
            cluster.replace(ns, kind, write.new_object)
        except ApiException as exc:
            if exc.status == 409 and attempt + 1 < CONFLICT_RETRIES:
                log.info("%s: conflict on %s, retrying from a fresh read", action.id, action.target)
                time.sleep(conflict_pause(attempt))
                continue
            why = f"API error {exc.status}: {exc.reason}"
            if exc.status == 409:
                why += f", {CONFLICT_RETRIES} times in a row: the object kept changing"
            return action.record(
                ActionResult.FAILED,
                now(),
                why,
                write.before,
                write.after,
            )
        return action.applied(write, at, f"after {attempt} conflict(s)" if attempt else "")
    raise AssertionError("unreachable")  # pragma: no cover


def apply_step(
    cluster: Cluster,
    ns: str,
    spec: GuardSpec,
    status: GuardStatus,
    guard_uid: str,
    index: int,
    action_id: str,
    reason: str,
    now: Callable[[], datetime],
    pinned_hash: str | None = None,
) -> ActionRecord:
    """Apply step `index` once. `status` holds the open incident (its uid goes into the
    marker); `pinned_hash`: a Rollback's target as planned, kept on every retry
    (domain/rollback_target.py)."""
    step = spec.steps[index]
    ref = applicability.object_ref(step, spec)
    action = Action(action_id, step.type, index, ref, reason, status.incident)
    kind = applicability.object_of(step, spec)[0]

    def fresh() -> tuple[Obj, Any]:
        v = view_step(cluster, ns, spec, status, index, step, pinned_hash=pinned_hash)
        assert v.obj is not None
        return v.obj, v.change

    return write_once(cluster, ns, kind, action, guard_uid, spec, fresh, now)
