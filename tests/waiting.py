"""Polling with a deadline: the only way tests wait for anything.

A fixed ``sleep`` is either too short on a loaded machine or wastes time on a
fast one; ``wait_until`` polls a condition instead and, when the deadline
passes, fails with the last value it saw so the failure explains itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    fn: Callable[[], T],
    timeout: float,
    interval: float = 0.2,
    describe: str | Callable[[], str] | None = None,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``fn`` until it returns something truthy, and return that.

    Exceptions of the types in ``ignore`` count as "not yet" (and are reported
    as the last value). After ``timeout`` seconds raise AssertionError naming
    ``describe`` (a string, or a callable producing extra context such as a log
    tail) and the last value seen.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    attempts = 0
    while True:
        attempts += 1
        try:
            value = fn()
        except ignore as error:
            last = error
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            what = describe() if callable(describe) else describe
            what = what or getattr(fn, "__name__", repr(fn))
            raise AssertionError(
                f"timed out after {timeout:g}s ({attempts} attempts) waiting for {what}; "
                f"last value seen: {last!r}"
            )
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
