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
import dataclasses
import functools
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from releaseguard.adapters import metrics
from releaseguard.domain.conditions import EventReason, EventType
from releaseguard.domain.models import GROUP, PLURAL, VERSION, GuardSpec, GuardStatus
from releaseguard.domain.writes import Stored
from releaseguard.service import (
    GuardRef,
    GuardService,
    InvalidSpec,
    TickResult,
    parse_spec,
    read_status,
)

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


class ParsedSpec:
    """A guard's spec, parsed and validated once per change: again only when
    metadata.generation (which the API server bumps on every spec change) moves."""

    def __init__(self) -> None:
        self._generation = 0
        self._spec: GuardSpec | InvalidSpec | None = None
        self.parses = 0

    def get(self, generation: int, raw: Mapping[str, Any]) -> GuardSpec | InvalidSpec:
        # Generation 0 (unknown): nothing tells a change apart, so parse every time.
        if self._spec is None or generation != self._generation or not generation:
            self._spec, self._generation = parse_spec(raw), generation
            self.parses += 1
        return self._spec


class _Evaluations:
    """One guard's evaluations, with its spec parsed once per change."""

    def __init__(self, service: GuardService) -> None:
        self.service = service
        self.spec = ParsedSpec()

    def register(self, guard: GuardRef, raw_spec: Mapping[str, Any]) -> None:
        self.service.register(guard, self.spec.get(guard.generation, raw_spec))

    def __call__(
        self,
        guard: GuardRef,
        raw_spec: Mapping[str, Any],
        annotations: Mapping[str, str],
        status: GuardStatus,
        stored: Stored | None,
    ) -> TickResult:
        """One evaluation, in the worker thread (where the spec is parsed, if it changed)."""
        spec = self.spec.get(guard.generation, raw_spec)
        return self.service.tick(guard, spec, annotations, status, stored)


def _generation(meta: kopf.Meta) -> int:
    return int(meta.get("generation") or 0)


def _target_name(spec: Any) -> str | None:
    """The Deployment a spec names; None for anything else (never raises: it runs on
    the daemon's loop, outside the evaluation's error handling)."""
    target = spec.get("target")
    name = target.get("deployment") if isinstance(target, Mapping) else None
    return name if isinstance(name, str) and name else None


@kopf.on.cleanup()
def _stop_watching_targets(memo: kopf.Memo, **_: Any) -> None:
    service: GuardService = memo.service
    service.targets.stop()


# Set when a guard is deleted, by uid: its daemon stops on it (see _no_finalizer).
_DELETED: dict[str, asyncio.Event] = {}


@kopf.on.event(GROUP, VERSION, PLURAL)
async def _notice_deletion(type: str, uid: str, **_: Any) -> None:
    # async: on the loop, as Kopf would run a plain function in a worker thread.
    if type == "DELETED" and (deleted := _DELETED.get(uid)) is not None:
        deleted.set()


async def _pause(stopped: kopf.DaemonStopped, deleted: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, waking early when Kopf stops the daemon or the guard is deleted."""
    waits = [asyncio.ensure_future(stopped.wait(seconds)), asyncio.ensure_future(deleted.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def _evaluate_once(
    work: Callable[[], TickResult],
    clock: Callable[[], float],
    due: float,
    body: kopf.Body,
    logger: kopf.Logger,
) -> TickResult | None:
    """One evaluation in a worker thread, its Events posted; None when it failed (one
    bad guard or a flaky API must not kill its daemon: the next interval retries)."""
    metrics.EVALUATIONS.inc()
    try:
        result = await asyncio.to_thread(_timed, clock, due, work)
    except Exception:
        metrics.EVALUATION_ERRORS.inc()
        logger.exception("evaluation failed; retrying next interval")
        return None
    for event in result.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
    return result


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
    status, unreadable = read_status(body.get("status"))  # never reset silently
    if unreadable:
        kopf.event(
            body, type=EventType.WARNING, reason=EventReason.STATUS_UNREADABLE, message=unreadable
        )
    stored: Stored | None = Stored(status)  # as found: its write time is unknown
    created = str(meta.get("creationTimestamp") or "")
    loop = asyncio.get_running_loop()
    # The target's copies are kept while some guard names it: asked for before the first
    # evaluation, so that its namespace's watches are listing by then.
    interest = service.targets.interest(namespace)
    deleted = _DELETED.setdefault(uid, asyncio.Event())
    evaluate = _Evaluations(service)
    try:
        interest.follow(_target_name(spec))
        # Known to overlapping guards before either evaluates (domain/ownership.py).
        evaluate.register(GuardRef(namespace, name, uid, _generation(meta), created), dict(spec))
        # Spread guards over their interval so a thousand of them do not query at once.
        await _pause(stopped, deleted, random.uniform(0, _interval(spec)))
        due = loop.time()
        while not stopped and not deleted.is_set():
            guard = GuardRef(namespace, name, uid, _generation(meta), created)
            # spec and annotations are snapshot here, on the loop that updates them.
            interest.follow(_target_name(spec))
            work = functools.partial(
                evaluate, guard, dict(spec), dict(meta.annotations), status, stored
            )
            result = await _evaluate_once(work, loop.time, due, body, logger)
            delay: float | None = None
            if result is not None:
                status, stored, delay = result.status, result.stored, result.next_delay
            # Sooner while a breach is being confirmed: domain.confirmation decides.
            due += _interval(spec) if delay is None else delay
            if due < loop.time():  # running late: skip the missed ticks instead of bursting
                due = loop.time()
            await _pause(stopped, deleted, max(0.0, due - loop.time()))
    finally:
        _DELETED.pop(uid, None)
        interest.release()
        # A deleted guard leaves no metric series and no undelivered outcomes behind.
        service.forget(GuardRef(namespace, name, uid, 0))


def _no_finalizer(registry: kopf.OperatorRegistry) -> None:
    """Let a guard, and its namespace, be deleted whether or not the operator runs.

    Kopf puts a finalizer on every object a daemon serves, to stop the daemon before
    the object goes (https://github.com/nolar/kopf/issues/833), and has no option to
    do without: a guard owns nothing and needs no cleanup, yet with the finalizer its
    deletion, and its namespace's, waited for a running operator. So the daemon's
    handler is registered as not requiring one; the daemon stops on the DELETED event
    instead (_notice_deletion), or on Kopf's own stop when the object is marked for
    deletion. Kopf removes a finalizer that no handler requires the first time it sees
    the object, so guards finalized by an older operator are released at startup.
    Touches Kopf's registry (private): tests/unit/test_no_finalizer.py catches a change.
    """
    spawning = registry._spawning
    spawning._handlers = [
        dataclasses.replace(h, requires_finalizer=False) if h.fn is guard_daemon else h
        for h in spawning._handlers
    ]


_no_finalizer(kopf.get_default_registry())
