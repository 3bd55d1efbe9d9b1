"""A local HTTP server that answers /api/v1/query as a broken or hostile Prometheus would.

The first path segment picks the behaviour, so one server serves every mode: a guard
whose spec.prometheus.url is `http://127.0.0.1:PORT/trickle` gets the trickle.

Modes:
- ok: a valid one-sample vector (value 1)
- trickle: a valid answer sent one byte per `trickle_interval` seconds, status line
  and headers included
- huge: 200 MB of JSON-looking bytes, no Content-Length (read until the cap)
- huge-declared: a Content-Length of 200 MB, then the bytes
- gzip-bomb: ~200 KB of gzip that inflates to 200 MB
- garbage: 4 KB of random bytes, HTTP 200
- status-error: HTTP 200, status "error" with a breaching vector in data
- matrix: a valid range-vector answer
- slow: a valid answer after `slow_seconds` (for counting concurrent requests)

`in_flight_max` records the most requests handled at once per mode; `requests`
counts them.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
import zlib
from collections import Counter
from functools import cache

OK_BODY = json.dumps(
    {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "1"]}]},
    }
).encode()
HUGE = 200 * 1024 * 1024


_BOMB_LOCK = threading.Lock()


def gzip_bomb(size: int = HUGE) -> bytes:
    """gzip of `size` bytes of '[' (inflates ~1000x); made once (a second of CPU), not by
    every request that arrives before it is ready."""
    with _BOMB_LOCK:
        return _gzip_bomb(size)


@cache
def _gzip_bomb(size: int) -> bytes:
    enc = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"[" * (1024 * 1024)
    parts = [enc.compress(block) for _ in range(size // len(block))]
    parts.append(enc.flush())
    return b"".join(parts)


class HostileServer:
    def __init__(self, trickle_interval: float = 1.0, slow_seconds: float = 1.0) -> None:
        self.trickle_interval = trickle_interval
        self.slow_seconds = slow_seconds
        self.requests: Counter[str] = Counter()
        self.in_flight_max: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                mode = self.path.lstrip("/").split("/", 1)[0]
                with owner._lock:
                    owner.requests[mode] += 1
                    owner._in_flight[mode] += 1
                    owner.in_flight_max[mode] = max(
                        owner.in_flight_max[mode], owner._in_flight[mode]
                    )
                try:
                    owner._serve(self, mode)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass  # the client gave up: that is what the operator should do
                finally:
                    with owner._lock:
                        owner._in_flight[mode] -= 1
                    self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mode}"

    def __enter__(self) -> HostileServer:
        gzip_bomb()  # ready before the first request
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, h: http.server.BaseHTTPRequestHandler, mode: str) -> None:
        if mode == "trickle":
            raw = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(OK_BODY) + OK_BODY
            )
            for i in range(len(raw)):
                h.wfile.write(raw[i : i + 1])
                h.wfile.flush()
                time.sleep(self.trickle_interval)
            return
        if mode in ("huge", "huge-declared"):
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            if mode == "huge-declared":
                h.send_header("Content-Length", str(HUGE))
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(b'{"status":"success","data":{"resultType":"vector","result":[')
            block = b'{"metric":{},"value":[1,"1"]},' * 4096
            sent = 0
            while sent < HUGE:
                h.wfile.write(block)
                sent += len(block)
            return
        if mode == "gzip-bomb":
            body = gzip_bomb()
            return self._send(h, 200, body, {"Content-Encoding": "gzip"})
        if mode == "garbage":
            return self._send(h, 200, os.urandom(4096))
        if mode == "status-error":
            body = {
                "status": "error",
                "errorType": "execution",
                "error": "x" * 40_000,
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "1e9"]}]},
            }
            return self._send(h, 200, json.dumps(body).encode())
        if mode == "matrix":
            body = {
                "status": "success",
                "data": {
                    "resultType": "matrix",
                    "result": [{"metric": {}, "values": [[1, "1"], [2, "2"]]}],
                },
            }
            return self._send(h, 200, json.dumps(body).encode())
        if mode == "slow":
            time.sleep(self.slow_seconds)
        return self._send(h, 200, OK_BODY)

    @staticmethod
    def _send(
        h: http.server.BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Connection", "close")  # one request per connection, as counted
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.end_headers()
        h.wfile.write(body)
