"""Logging set-up: what the operator's log keeps and drops."""

from __future__ import annotations

import logging

from releaseguard.adapters.logs import _not_a_watch_event_echo


def record(name: str, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, logging.INFO, __file__, 1, message, None, None)


def test_the_deletion_watchers_success_line_is_dropped_and_nothing_else():
    assert not _not_a_watch_event_echo(
        record("kopf.objects", "Handler '_notice_deletion' succeeded.")
    )
    assert _not_a_watch_event_echo(record("kopf.objects", "Handler 'other' succeeded."))
    assert _not_a_watch_event_echo(record("kopf.objects", "Handler '_notice_deletion' failed."))
    assert _not_a_watch_event_echo(record("releaseguard", "Handler '_notice_deletion' succeeded."))
