"""A wall-clock deadline for an HTTP request, whatever the server does.

A socket timeout bounds each read, not the request: a server that trickles one byte a
second answers every read in time and never times out (the status line, the headers
and the body are all read that way by http.client). So each query arms a deadline for
its thread, the connection it uses registers its socket under that deadline just before
waiting for the answer, and one watchdog thread shuts the socket down when the deadline
passes. A read blocked on a shut-down socket returns at once (EOF or an error), so the
request ends within milliseconds of its deadline, and the connection is dropped rather
than reused (urllib3 checks a pooled connection before reusing it).

`DeadlineAdapter` is a requests HTTPAdapter whose connections register themselves;
requests, urllib3 and prometheus-api-client give no such hook of their own.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


@dataclass
class _Armed:
    deadline: float  # time.monotonic()
    sock: socket.socket | None = None
    fired: bool = False


class Watchdog:
    """Shuts down the socket of every armed request that outlives its deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: dict[int, _Armed] = {}  # by thread: a thread runs one request at once
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def armed(self, deadline: float) -> Iterator[_Armed]:
        """Bound the requests this thread makes inside the block by `deadline`
        (time.monotonic()); `.fired` tells afterwards whether the watchdog cut one."""
        entry = _Armed(deadline)
        key = threading.get_ident()
        with self._cond:
            self._armed[key] = entry
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="query-deadlines", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        try:
            yield entry
        finally:
            with self._cond:  # after this, the watchdog never touches that socket again
                self._armed.pop(key, None)

    def attach(self, sock: socket.socket | None) -> None:
        """Called by a connection, in the requesting thread, before it waits to read."""
        with self._cond:
            entry = self._armed.get(threading.get_ident())
            if entry is None or sock is None:
                return
            entry.sock = sock
            if entry.fired or time.monotonic() >= entry.deadline:
                self._fire(entry)

    def _fire(self, entry: _Armed) -> None:
        entry.fired = True
        if entry.sock is not None:
            with contextlib.suppress(OSError):
                entry.sock.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                pending = [e for e in self._armed.values() if not e.fired]
                for entry in pending:
                    if entry.deadline <= now:
                        self._fire(entry)  # no socket yet: `attach` shuts it on arrival
                waiting = [e.deadline for e in pending if not e.fired]
                self._cond.wait(timeout=max(0.01, min(waiting) - now) if waiting else None)


WATCHDOG = Watchdog()


class _DeadlineConnection(HTTPConnection):
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        WATCHDOG.attach(self.sock)
        return super().getresponse(*args, **kwargs)


class _DeadlineTLSConnection(HTTPSConnection):
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        WATCHDOG.attach(self.sock)
        return super().getresponse(*args, **kwargs)


class _Pool(HTTPConnectionPool):
    ConnectionCls = _DeadlineConnection


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineTLSConnection


class DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections obey `WATCHDOG.armed` deadlines."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(*args, **kwargs)
        manager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}
        return manager
