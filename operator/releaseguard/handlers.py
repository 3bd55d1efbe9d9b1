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

from releaseguard.domain.models import GROUP, PLURAL, VERSION, GuardStatus
from releaseguard.service import GuardRef, GuardService, TickResult, parse_status

log = logging.getLogger(__name__)
DEFAULT_INTERVAL = 15


def _interval(spec: Any) -> float:
    try:
        return max(1.0, float(spec.get("intervalSeconds", DEFAULT_INTERVAL)))
    except (TypeError, ValueError):
        return DEFAULT_INTERVAL


def _started_late(
    stats: Any, clock: Callable[[], float], due: float, work: Callable[[], TickResult]
) -> TickResult:
    """Run `work` in its worker thread, counting lateness from when it really starts: with
    many guards, waiting for a free thread is most of the lateness."""
    stats.record_lateness(clock() - due)
    return work()


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
    **_: Any,
) -> None:
    service: GuardService = memo.service
    status: GuardStatus = parse_status(body.get("status"))
    loop = asyncio.get_running_loop()
    # Spread guards over their interval so a thousand of them do not query at once.
    await stopped.wait(random.uniform(0, _interval(spec)))
    due = loop.time()
    while not stopped:
        guard = GuardRef(namespace, name, uid, int(meta.get("generation") or 0))
        try:
            # spec and annotations are snapshot here, on the loop that updates them.
            work = functools.partial(
                service.tick, guard, dict(spec), dict(meta.annotations), status
            )
            result = await asyncio.to_thread(_started_late, memo.stats, loop.time, due, work)
        except Exception:  # one bad guard or a flaky API must not kill its daemon
            logger.exception("evaluation failed; retrying next interval")
        else:
            status = result.status
            for event in result.events:
                kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        due += _interval(spec)
        if due < loop.time():  # running late: skip the missed ticks instead of bursting
            due = loop.time()
        await stopped.wait(max(0.0, due - loop.time()))
