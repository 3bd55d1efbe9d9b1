"""Where would real traffic go right now? Split a request rate across versions exactly as
the cluster routes it.

Pure: functions of plain API objects (dicts as the API server returns them).
- An HTTPRoute splits by backendRef weight (unset weight = 1, Gateway API's default).
- A Service sends its share to the Ready pods its selector matches, evenly.
- A pod's version is its `version` label, else its first container's image tag; so a
  rollback, which changes the pods' template, changes where traffic lands.

It never looks at ReleaseGuard objects: the simulator follows the cluster, not the
operator's claims.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

Obj = Mapping[str, Any]


def pod_ready(pod: Obj) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_version(pod: Obj) -> str:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if "version" in labels:
        return str(labels["version"])
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    image = str(containers[0].get("image", ""))
    return image.rsplit(":", 1)[-1] if ":" in image else image


def matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def service_split(service: Obj, pods: Sequence[Obj]) -> dict[str, float]:
    """Fractions of the Service's traffic per version (empty: no Ready endpoint)."""
    selector = (service.get("spec") or {}).get("selector") or {}
    ready = [
        p for p in pods if pod_ready(p) and matches(selector, (p["metadata"].get("labels") or {}))
    ]
    if not ready:
        return {}
    split: dict[str, float] = defaultdict(float)
    for pod in ready:
        split[pod_version(pod)] += 1 / len(ready)
    return dict(split)


def route_split(
    route: Obj | None, services: Mapping[str, Obj], pods: Sequence[Obj], entry_service: str
) -> dict[str, float]:
    """Fractions of all traffic per version. Traffic with no Ready endpoint is `unrouted`."""
    if route is None:
        backends = [(entry_service, 1)]
    else:
        backends = [
            (str(ref.get("name")), int(ref.get("weight", 1)))
            for rule in (route.get("spec") or {}).get("rules") or []
            for ref in rule.get("backendRefs") or []
        ]
    total = sum(w for _, w in backends)
    split: dict[str, float] = defaultdict(float)
    if total <= 0:
        return {"unrouted": 1.0}
    for name, weight in backends:
        if weight <= 0:
            continue
        share = weight / total
        service = services.get(name)
        versions = service_split(service, pods) if service is not None else {}
        if not versions:
            split["unrouted"] += share
        for version, fraction in versions.items():
            split[version] += share * fraction
    return dict(split)
