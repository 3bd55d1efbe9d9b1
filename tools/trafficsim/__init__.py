"""A traffic simulator that follows live routing state (HTTPRoute weights, Service
selectors, Ready pods) and exposes per-version request, latency and checkout metrics.
Used by the e2e incident stories, `make demo` and `make bench`."""

from trafficsim.routing import route_split
from trafficsim.simulator import Profile, Routing, Simulator, serve

__all__ = ["Profile", "Routing", "Simulator", "route_split", "serve"]
