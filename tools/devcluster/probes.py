"""Readiness probes and deadline-bound polling.

Nothing in devcluster sleeps for a fixed time and hopes: every wait polls a
concrete condition (an HTTP health endpoint, an object in the API) until a
deadline, checks on each round that the process being waited for is still
alive, and on failure reports the last observation.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from devcluster.certs import Pki

T = TypeVar("T")

POLL_INTERVAL = 0.1
REQUEST_TIMEOUT = 2.0


class Timeout(Exception):
    """A poll hit its deadline; ``last`` is the last observation."""

    def __init__(self, what: str, timeout: float, last: object) -> None:
        self.what = what
        self.last = last
        super().__init__(f"{what}: not reached within {timeout:.0f}s (last seen: {last!r})")


def poll(
    check: Callable[[], tuple[bool, T]],
    *,
    what: str,
    timeout: float,
    interval: float = POLL_INTERVAL,
    guard: Callable[[], None] | None = None,
) -> T:
    """Call ``check`` until it returns ``(True, value)``; return ``value``.

    ``guard`` runs before every attempt and should raise when waiting is
    pointless (the process died). Raises Timeout after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        if guard is not None:
            guard()
        done, value = check()
        if done:
            return value
        last = value
        if time.monotonic() >= deadline:
            raise Timeout(what, timeout, last)
        time.sleep(interval)


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


def http_get(
    url: str, context: ssl.SSLContext | None = None, timeout: float = REQUEST_TIMEOUT
) -> HttpResult | str:
    """GET ``url``: the response (any status), or an error description string."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return HttpResult(response.status, response.read())
    except urllib.error.HTTPError as error:
        return HttpResult(error.code, error.read())
    except (OSError, ValueError) as error:  # URLError, connection refused, TLS, timeout
        return f"{type(error).__name__}: {error}"


def http_ok(url: str, context: ssl.SSLContext | None = None) -> tuple[bool, str]:
    """Probe for ``poll``: done when ``url`` answers 200."""
    result = http_get(url, context)
    if isinstance(result, str):
        return False, result
    return result.status == 200, f"HTTP {result.status}: {result.text[:300]}"


def insecure_context() -> ssl.SSLContext:
    """TLS without verification, for the self-signed health ports of cm and scheduler."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class ApiClient:
    """A minimal authenticated GET client for the apiserver (admin client cert)."""

    def __init__(self, server: str, pki: Pki) -> None:
        self.server = server.rstrip("/")
        self.context = ssl.create_default_context(cafile=str(pki.ca_cert))
        self.context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))

    def get(self, path: str) -> HttpResult | str:
        return http_get(self.server + path, self.context)

    def get_object(self, path: str) -> tuple[bool, Any]:
        """Probe helper: (True, parsed JSON) on 200, else (False, what was seen)."""
        result = self.get(path)
        if isinstance(result, str):
            return False, result
        if result.status != 200:
            return False, f"HTTP {result.status}: {result.text[:300]}"
        return True, result.json()
