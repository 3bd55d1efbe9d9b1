"""The `Cluster` of a real API server (adapters/cluster.py): reads and writes, nothing else.

Synchronous (the official client is): the service calls these from a worker thread.
Every request carries an explicit timeout. What is written, and when, is decided
elsewhere (domain/applicability.py, through adapters/cluster.py); writes are PUTs of
the object as read, so a concurrent writer makes the API server answer 409.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from releaseguard.adapters import cluster as _cluster
from releaseguard.adapters.cluster import (
    CONFLICT_RETRIES,
    USABLE_BY_GUARDS,
    Missing,
    SecretNotLabelled,
)
from releaseguard.domain.changes import Obj
from releaseguard.domain.gitops import ARGOCD
from releaseguard.domain.models import GROUP, PLURAL, VERSION

__all__ = [
    "CONFLICT_RETRIES",
    "FIELD_MANAGER",
    "TIMEOUT",
    "USABLE_BY_GUARDS",
    "Kube",
    "Missing",
    "SecretNotLabelled",
]

log = logging.getLogger(__name__)

# Every write carries this field manager, so managedFields shows who contained, and
# Argo CD can be told to leave these fields alone (README, "GitOps: when someone undoes a step").
FIELD_MANAGER = "releaseguard"
TIMEOUT = (3.0, 10.0)  # (connect, read) seconds for every API request
GATEWAY = ("gateway.networking.k8s.io", "v1", "httproutes")


@dataclass(frozen=True)
class _Resource:
    """How one kind of object is read and replaced."""

    read: Callable[[str, str], Any]  # (ns, name) -> response
    replace: Callable[..., Any]  # (ns, name, body, **kw)


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.custom = client.CustomObjectsApi(api)

        def custom(group: str, version: str, plural: str) -> _Resource:
            return _Resource(
                lambda ns, name, **kw: self.custom.get_namespaced_custom_object(
                    group, version, ns, plural, name, **kw
                ),
                lambda ns, name, body, **kw: self.custom.replace_namespaced_custom_object(
                    group, version, ns, plural, name, body, **kw
                ),
            )

        def typed(api: Any, kind: str) -> _Resource:
            """A typed API's read_namespaced_<kind> and replace_namespaced_<kind>."""
            read = getattr(api, f"read_namespaced_{kind}")
            replace = getattr(api, f"replace_namespaced_{kind}")
            return _Resource(
                lambda ns, name, **kw: read(name, ns, **kw),
                lambda ns, name, body, **kw: replace(name, ns, body, **kw),
            )

        # One read/replace per resource kind: every step kind writes one of these.
        self._kinds: dict[str, _Resource] = {
            "ConfigMap": typed(self.core, "config_map"),
            "Service": typed(self.core, "service"),
            "Deployment": typed(self.apps, "deployment"),
            "Secret": typed(self.core, "secret"),
            "HTTPRoute": custom(*GATEWAY),
            "Application": custom(*ARGOCD),
        }

    # ------------------------------------------------------------ reads

    @staticmethod
    def _raw(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Obj:
        response = call(*args, _preload_content=False, _request_timeout=TIMEOUT, **kwargs)
        return json.loads(response.data)

    def read(self, ns: str, kind: str, name: str) -> Obj:
        try:
            return self._raw(self._kinds[kind].read, ns, name)
        except ApiException as exc:
            if exc.status == 404:
                raise Missing(f"{kind} {name} not found") from exc
            raise

    def deployment(self, ns: str, name: str) -> Obj:
        return self.read(ns, "Deployment", name)

    def replica_sets(self, ns: str, deployment: Obj) -> list[Obj]:
        uid = deployment["metadata"]["uid"]
        selector = (deployment["spec"].get("selector") or {}).get("matchLabels") or {}
        label_selector = ",".join(f"{k}={v}" for k, v in selector.items())
        # At least as new as the Deployment just read, which is all a guard needs: the
        # Deployment controller writes a ReplicaSet's revision before the Deployment's, so
        # such a list always holds the current ReplicaSet. The API server answers it from
        # its watch cache at once. A consistent list (no resourceVersion) waits for that
        # cache to catch up with etcd: ~90 ms per call whenever anything else is written,
        # which capped one operator at ~50 evaluations/s (tools/bench/scale.py).
        version = deployment["metadata"].get("resourceVersion")
        fresh = {"resource_version": version, "resource_version_match": "NotOlderThan"}
        items = self._raw(
            self.apps.list_namespaced_replica_set,
            ns,
            label_selector=label_selector,
            **(fresh if version else {}),
        )["items"]
        return [
            rs
            for rs in items
            if any(o.get("uid") == uid for o in rs["metadata"].get("ownerReferences") or [])
        ]

    def secret_value(self, ns: str, name: str, key: str) -> str:
        return _cluster.secret_value(self, ns, name, key)

    def succeeded_jobs(self, ns: str, names: Sequence[str], since: str | None) -> list[str]:
        done = []
        for name in names:
            try:
                job = self._raw(self.batch.read_namespaced_job, name, ns)
            except ApiException as exc:
                if exc.status == 404:
                    continue
                raise
            status = job.get("status") or {}
            finished = status.get("completionTime") or ""
            if status.get("succeeded", 0) >= 1 and (since is None or finished >= since):
                done.append(name)
        return done

    def ready_pods(self, ns: str, selector: Mapping[str, str]) -> int:
        label_selector = ",".join(f"{k}={v}" for k, v in selector.items())
        # resourceVersion "0" is served from the API server's watch cache. A consistent
        # list makes the API server wait for its cache to catch up with etcd, which cost
        # ~90 ms per call on the local cluster (tools/bench/steps.py); a Ready count that
        # is a moment old is good enough to judge the stable colour.
        pods = self._raw(
            self.core.list_namespaced_pod, ns, label_selector=label_selector, resource_version="0"
        )["items"]
        return sum(
            1
            for p in pods
            if p["metadata"].get("deletionTimestamp") is None
            and any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
        )

    # ------------------------------------------------------------ writes

    def replace(self, ns: str, kind: str, body: Obj) -> None:
        """PUT the object as read (it carries its resourceVersion): 409 on a stale one."""
        name = body["metadata"]["name"]
        self._kinds[kind].replace(
            ns, name, body, _request_timeout=TIMEOUT, field_manager=FIELD_MANAGER
        )

    def patch_status(self, ns: str, name: str, status: dict[str, Any]) -> Obj:
        return self._raw(
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            ns,
            PLURAL,
            name,
            {"status": status},
            field_manager=FIELD_MANAGER,
        )
