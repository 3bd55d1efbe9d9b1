"""Liveness and readiness endpoints for the kubelet's probes (`--health-port`).

`/healthz` fails when the process can no longer do its job (the event loop stalled,
the election thread died); `/readyz` fails while the process is starting. A standby
replica is live and ready: it is doing its job, which is to wait, and a rolling update
must be able to proceed past it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Check = Callable[[], str | None]  # None when healthy, else why not


def serve(port: int, address: str, checks: dict[str, Check]) -> int:
    """Serve each path in `checks` (200 "ok", or 503 with the reason) from a daemon
    thread; return the port (useful with port 0)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            check = checks.get(self.path.split("?", 1)[0])
            if check is None:
                self._answer(404, "not found")
                return
            problem = check()
            self._answer(200 if problem is None else 503, problem or "ok")

        def _answer(self, code: int, text: str) -> None:
            body = (text + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # probes are not news
            return

    server = ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return int(server.server_port)
