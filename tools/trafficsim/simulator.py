"""The traffic simulator: each tick, read routing state from the API server, split a
configured request rate across versions as the cluster would, and count requests,
errors, latencies and checkouts per version in Prometheus metrics.

Fault profiles are per version and change at run time (`set_profile`, or HTTP
`PUT /profiles/<version>` with a JSON body), so a test can inject a fault at a known
instant. Counts are deterministic: fractional requests carry over to the next tick, so
a 5% error ratio is exactly 5% of requests, with no random noise.

Metrics (served at /metrics):
- http_requests_total{app,version,code}
- http_request_duration_seconds{app,version} (histogram)
- checkout_started_total{app,version}, checkout_completed_total{app,version}
- trafficsim_route_share{app,version}: the share of traffic each version got last tick
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kubernetes import client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from trafficsim.routing import route_split

log = logging.getLogger("trafficsim")
TIMEOUT = (3, 5)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class Profile:
    """How one version behaves: share of 5xx, request latency, checkout conversion."""

    error_ratio: float = 0.0
    latency_seconds: float = 0.02
    conversion: float = 0.1
    checkout_share: float = 0.2  # share of requests that start a checkout

    @classmethod
    def from_json(cls, data: dict[str, Any], base: Profile | None = None) -> Profile:
        names = {
            "errorRatio": "error_ratio",
            "latencySeconds": "latency_seconds",
            "conversion": "conversion",
            "checkoutShare": "checkout_share",
        }
        unknown = set(data) - set(names)
        if unknown:
            raise ValueError(f"unknown profile fields: {sorted(unknown)}")
        return replace(base or cls(), **{names[k]: float(v) for k, v in data.items()})


@dataclass
class Routing:
    """Where the simulator sends traffic: an HTTPRoute, or one Service when there is none."""

    namespace: str
    app: str
    http_route: str | None = None
    service: str = ""


@dataclass
class _Carry:
    requests: float = 0.0
    errors: float = 0.0
    started: float = 0.0
    completed: float = 0.0


@dataclass
class Simulator:
    api: client.ApiClient
    routing: Routing
    rate: float = 100.0  # requests per second, all versions together
    tick_seconds: float = 0.25
    profiles: dict[str, Profile] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.registry = CollectorRegistry()
        labels = ["app", "version"]
        self.requests = Counter(
            "http_requests", "Requests served", [*labels, "code"], registry=self.registry
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Request latency",
            labels,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.started = Counter(
            "checkout_started", "Checkouts started", labels, registry=self.registry
        )
        self.completed = Counter(
            "checkout_completed", "Checkouts completed", labels, registry=self.registry
        )
        self.share = Gauge(
            "trafficsim_route_share", "Share of traffic per version", labels, registry=self.registry
        )
        self._carry: dict[str, _Carry] = defaultdict(_Carry)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_split: dict[str, float] = {}
        self.ticks = 0

    # ------------------------------------------------------------ control

    def set_profile(self, version: str, **changes: float) -> Profile:
        with self._lock:
            profile = replace(self.profiles.get(version, Profile()), **changes)
            self.profiles[version] = profile
        log.info("profile %s = %s", version, profile)
        return profile

    def profile(self, version: str) -> Profile:
        with self._lock:
            return self.profiles.get(version, Profile())

    # ------------------------------------------------------------ the loop

    def read_split(self) -> dict[str, float]:
        ns = self.routing.namespace
        route = None
        if self.routing.http_route:
            route = json.loads(
                self.custom.get_namespaced_custom_object(
                    "gateway.networking.k8s.io",
                    "v1",
                    ns,
                    "httproutes",
                    self.routing.http_route,
                    _preload_content=False,
                    _request_timeout=TIMEOUT,
                ).data
            )
        services = {
            s["metadata"]["name"]: s
            for s in json.loads(
                self.core.list_namespaced_service(
                    ns, _preload_content=False, _request_timeout=TIMEOUT
                ).data
            )["items"]
        }
        pods = json.loads(
            self.core.list_namespaced_pod(
                ns,
                resource_version="0",
                _preload_content=False,
                _request_timeout=TIMEOUT,
            ).data
        )["items"]
        return route_split(route, services, pods, self.routing.service)

    def step(self, seconds: float) -> None:
        """Serve `seconds` worth of traffic along the current routing state."""
        split = self.read_split()
        app = self.routing.app
        for version in set(self.last_split) - set(split):
            self.share.labels(app, version).set(0)
        for version, fraction in split.items():
            self.share.labels(app, version).set(fraction)
            if version == "unrouted":
                continue
            profile = self.profile(version)
            carry = self._carry[version]
            carry.requests += self.rate * seconds * fraction
            n = int(carry.requests)
            carry.requests -= n
            carry.errors += n * profile.error_ratio
            errors = min(n, int(carry.errors))
            carry.errors -= errors
            carry.started += n * profile.checkout_share
            started = int(carry.started)
            carry.started -= started
            carry.completed += started * profile.conversion
            completed = min(started, int(carry.completed))
            carry.completed -= completed
            self.requests.labels(app, version, "500").inc(errors)
            self.requests.labels(app, version, "200").inc(n - errors)
            for _ in range(n):
                self.duration.labels(app, version).observe(profile.latency_seconds)
            self.started.labels(app, version).inc(started)
            self.completed.labels(app, version).inc(completed)
        self.last_split = split
        self.ticks += 1

    def run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(max(0.0, last + self.tick_seconds - time.monotonic())):
            now = time.monotonic()
            try:
                self.step(now - last)
            except Exception as exc:  # a blip in the API must not stop the traffic
                log.warning("tick failed: %s", exc)
            last = now

    def start(self) -> Simulator:
        self._thread = threading.Thread(target=self.run, name="trafficsim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def serve(sim: Simulator, port: int = 0) -> ThreadingHTTPServer:
    """/metrics for Prometheus; GET/PUT /profiles[/<version>] to read or inject faults."""

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, sim.exposition(), CONTENT_TYPE_LATEST)
            elif self.path == "/profiles":
                with sim._lock:
                    data = {v: asdict(p) for v, p in sim.profiles.items()}
                self._send(200, json.dumps({"profiles": data, "split": sim.last_split}).encode())
            else:
                self._send(404, b'{"error": "not found"}')

        def do_PUT(self) -> None:
            if not self.path.startswith("/profiles/"):
                self._send(404, b'{"error": "not found"}')
                return
            version = self.path.removeprefix("/profiles/")
            length = int(self.headers.get("Content-Length", "0"))
            try:
                profile = Profile.from_json(
                    json.loads(self.rfile.read(length) or b"{}"), sim.profile(version)
                )
            except (ValueError, TypeError) as exc:
                self._send(400, json.dumps({"error": str(exc)}).encode())
                return
            with sim._lock:
                sim.profiles[version] = profile
            log.info("profile %s = %s", version, profile)
            self._send(200, json.dumps(asdict(profile)).encode())

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="trafficsim-http", daemon=True).start()
    return server
