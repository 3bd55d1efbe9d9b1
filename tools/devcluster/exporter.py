"""A tiny Prometheus exporter that tests control: set a value, watch it in Prometheus.

It serves the text exposition format on 127.0.0.1:<free port> from a daemon
thread (stdlib only), so a test can register it as a scrape target and make
any metric say anything, including NaN, without a real workload.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[tuple[str, str], ...]


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Exporter:
    """Serve metrics set with ``set`` until ``close``; ``port`` is where it listens."""

    def __init__(self, name: str = "exporter") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = {}
        self._kinds: dict[str, str] = {}
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"exporter-{name}", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def set(
        self,
        name: str,
        value: float,
        labels: Mapping[str, str] | None = None,
        kind: str = "gauge",
    ) -> None:
        """Set metric ``name{labels}`` to ``value`` (``kind``: "gauge" or "counter")."""
        key = tuple(sorted((labels or {}).items()))
        with self._lock:
            self._values.setdefault(name, {})[key] = float(value)
            self._kinds[name] = kind

    def remove(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        """Stop exposing one series (or, without labels, every series of ``name``)."""
        with self._lock:
            if labels is None:
                self._values.pop(name, None)
            else:
                self._values.get(name, {}).pop(tuple(sorted(labels.items())), None)

    def render(self) -> str:
        """The current metrics in Prometheus text format."""
        lines = []
        with self._lock:
            for name in sorted(self._values):
                lines.append(f"# TYPE {name} {self._kinds[name]}")
                for labels, value in sorted(self._values[name].items()):
                    text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                    series = f"{name}{{{text}}}" if text else name
                    lines.append(f"{series} {_format_value(value)}")
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
