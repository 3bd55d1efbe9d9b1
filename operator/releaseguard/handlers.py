"""Kopf wiring: one daemon per ReleaseGuard that evaluates it every intervalSeconds
(sooner while a breach is being confirmed: `domain.confirmation` decides).

Thin on purpose: parse what Kopf hands us, run `GuardService.tick` in a worker thread
(the clients are synchronous; the event loop must never block), post the Events it
returns. Why a daemon and not a timer: the interval is per guard and changes while a
breach is being confirmed, and a timer's interval is fixed per decorator; a Kopf
timer's idle countdown is also reset by our own status patches.
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


def _target_name(spec: Any) -> str | None:
    name = (spec.get("target") or {}).get("deployment")
    return name if isinstance(name, str) and name else None


@kopf.on.cleanup()
def _stop_watching_targets(memo: kopf.Memo, **_: Any) -> None:
    service: GuardService = memo.service
    service.targets.stop()


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
    stored: Stored | None = Stored(status)  # as found: its write time is unknown
    loop = asyncio.get_running_loop()
    # The target's copies are kept while some guard names it: asked for before the first
    # evaluation, so that its namespace's watches are listing by then.
    interest = service.targets.interest(namespace)
    try:
        interest.follow(_target_name(spec))
        # Spread guards over their interval so a thousand of them do not query at once.
        await stopped.wait(random.uniform(0, _interval(spec)))
        due = loop.time()
        while not stopped:
            guard = GuardRef(namespace, name, uid, int(meta.get("generation") or 0))
            try:
                # spec and annotations are snapshot here, on the loop that updates them.
                interest.follow(_target_name(spec))
                work = functools.partial(
                    service.tick, guard, dict(spec), dict(meta.annotations), status, stored
                )
                metrics.EVALUATIONS.inc()
                result = await asyncio.to_thread(_timed, loop.time, due, work)
            except Exception:  # one bad guard or a flaky API must not kill its daemon
                metrics.EVALUATION_ERRORS.inc()
                logger.exception("evaluation failed; retrying next interval")
                delay: float | None = None
            else:
                status, stored, delay = result.status, result.stored, result.next_delay
                for event in result.events:
                    kopf.event(body, type=event.type, reason=event.reason, message=event.message)
            # Sooner while a breach is being confirmed: domain.confirmation decides.
            due += _interval(spec) if delay is None else delay
            if due < loop.time():  # running late: skip the missed ticks instead of bursting
                due = loop.time()
            await stopped.wait(max(0.0, due - loop.time()))
    finally:
        interest.release()
