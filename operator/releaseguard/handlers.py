"""Kopf wiring: one daemon per ReleaseGuard that evaluates it every intervalSeconds.

Thin on purpose: parse what Kopf hands us, run `GuardService.tick` in a worker thread
(the clients are synchronous; the event loop must never block), post the Events it
returns. Why a daemon and not a timer: the interval is per guard (spec.intervalSeconds),
and a timer's interval is fixed per decorator; a Kopf timer's idle countdown is also
reset by our own status patches.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Callable
from typing import Any

import kopf

from releaseguard.adapters import metrics
from releaseguard.domain.models import GROUP, PLURAL, VERSION, GuardStatus
from releaseguard.domain.writes import Stored
from releaseguard.service import GuardRef, GuardService, TickResult, parse_status

log = logging.getLogger(__name__)
DEFAULT_INTERVAL = 15


def _interval(spec: Any) -> float:
    try:
        return max(1.0, float(spec.get("intervalSeconds", DEFAULT_INTERVAL)))
    except (TypeError, ValueError):
        return DEFAULT_INTERVAL


def _timed(clock: Callable[[], float], due: float, work: Callable[[], TickResult]) -> TickResult:
    """Run `work` in its worker thread, counting lateness from when it really starts: with
    many guards, waiting for a free thread is most of the lateness."""
    started = clock()
    metrics.LATENESS.observe(max(0.0, started - due))
    try:
        return work()
    finally:
        metrics.DURATION.observe(clock() - started)


def _without_managed_fields(body: kopf.Body) -> dict[str, Any]:
    """A plain copy of the object to keep, minus managedFields (most of its bytes)."""
    obj = dict(body)
    obj["metadata"] = {k: v for k, v in body.get("metadata", {}).items() if k != "managedFields"}
    return obj


# Watch-fed copies of the Deployments and ReplicaSets in the watched namespaces, so an
# evaluation does not GET its target and LIST its ReplicaSets every interval (two of its
# four API requests: tools/bench/scale.py). Kopf fills every index before any daemon
# starts, and keeps it current from its watches.
@kopf.index("apps", "v1", "deployments")
def deployments_by_name(namespace: str, name: str, body: kopf.Body, **_: Any) -> Any:
    return {(namespace, name): _without_managed_fields(body)}


@kopf.index("apps", "v1", "replicasets")
def replica_sets_by_owner(namespace: str, meta: kopf.Meta, body: kopf.Body, **_: Any) -> Any:
    owners = [o["uid"] for o in meta.get("ownerReferences") or [] if o.get("kind") == "Deployment"]
    if not owners:
        return None
    kept = _without_managed_fields(body)
    return {(namespace, uid): kept for uid in owners}


def _cached_target(
    deployments: kopf.Index[Any, Any], replica_sets: kopf.Index[Any, Any], ns: str, spec: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The guard's target and its ReplicaSets as last watched (None if not seen).
    Read on the event loop, which is the only writer of the indexes."""
    name = (spec.get("target") or {}).get("deployment")
    found = list(deployments.get((ns, name), ()))
    if len(found) != 1:
        return None
    deployment = found[0]
    uid = deployment["metadata"].get("uid")
    return deployment, list(replica_sets.get((ns, uid), ()))


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)
async def guard_daemon(
    stopped: kopf.DaemonStopped,
    name: str,
    namespace: str,
    uid: str,
    body: kopf.Body,
    spec: kopf.Spec,
    meta: kopf.Meta,
    memo: kopf.Memo,
    logger: kopf.Logger,
    deployments_by_name: kopf.Index[Any, Any],
    replica_sets_by_owner: kopf.Index[Any, Any],
    **_: Any,
) -> None:
    service: GuardService = memo.service
    status: GuardStatus = parse_status(body.get("status"))
    stored: Stored | None = Stored(status)  # as found: its write time is unknown
    loop = asyncio.get_running_loop()
    # Spread guards over their interval so a thousand of them do not query at once.
    await stopped.wait(random.uniform(0, _interval(spec)))
    due = loop.time()
    while not stopped:
        guard = GuardRef(namespace, name, uid, int(meta.get("generation") or 0))
        try:
            # spec and annotations are snapshot here, on the loop that updates them.
            cached = _cached_target(deployments_by_name, replica_sets_by_owner, namespace, spec)
            work = functools.partial(
                service.tick, guard, dict(spec), dict(meta.annotations), status, stored, cached
            )
            metrics.EVALUATIONS.inc()
            result = await asyncio.to_thread(_timed, loop.time, due, work)
        except Exception:  # one bad guard or a flaky API must not kill its daemon
            metrics.EVALUATION_ERRORS.inc()
            logger.exception("evaluation failed; retrying next interval")
        else:
            status, stored = result.status, result.stored
            for event in result.events:
                kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        due += _interval(spec)
        if due < loop.time():  # running late: skip the missed ticks instead of bursting
            due = loop.time()
        await stopped.wait(max(0.0, due - loop.time()))
