"""A local HTTP receiver for notification tests: it records every POST (time, path,
headers, body) and can be made to misbehave the ways real sinks do: down (port closed),
slow (answers after a delay), garbage (a non-HTTP answer), redirect (302 elsewhere).

It is a real server on 127.0.0.1, not a mock inside the operator: the operator's
webhook sink reaches it through the URL in a Secret, as it would reach Slack.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from waiting import wait_until

MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Received:
    at: float  # time.time()
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def signed_by(self, key: str) -> bool:
        sent = self.headers.get("X-ReleaseGuard-Signature", "")
        good = "sha256=" + hmac.new(key.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(sent, good)


class Receiver:
    """mode: "ok" (204), "slow" (answers after `delay` s), "garbage" (bytes that are not
    HTTP, then close), "redirect" (302 to itself)."""

    def __init__(self, port: int = 0) -> None:
        self.received: list[Received] = []
        self.mode = "ok"
        self.delay = 30.0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = port
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
                body = self.rfile.read(length)
                mode = receiver.mode
                if mode == "garbage":
                    self.wfile.write(b"\x00\xffthis is not HTTP\r\n\r\n")
                    self.close_connection = True
                    return
                if mode == "slow":
                    time.sleep(receiver.delay)
                with receiver._lock:
                    receiver.received.append(
                        Received(time.time(), self.path, dict(self.headers.items()), body)
                    )
                if mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", receiver.url + "/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(204)
                self.end_headers()

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, name="receiver", daemon=True).start()

    def stop(self) -> None:
        """Close the port: the sink is down (connections are refused)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def messages(self, moment: str | None = None) -> list[Received]:
        with self._lock:
            got = list(self.received)
        if moment is None:
            return got
        return [r for r in got if _moment(r) == moment]

    def wait_for(self, moment: str, timeout: float, count: int = 1) -> list[Received]:
        return wait_until(
            lambda: (got := self.messages(moment)) and len(got) >= count and got,
            timeout=timeout,
            describe=lambda: (
                f"{count} {moment} notification(s) at {self.url}; received "
                f"{[_moment(r) for r in self.messages()]}"
            ),
        )


def _moment(r: Received) -> str:
    try:
        doc = r.json()
    except ValueError:
        return ""
    return str(doc.get("moment", "")) if isinstance(doc, dict) else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
