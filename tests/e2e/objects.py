"""Building and reading the objects e2e tests need: guards, Deployments, Services,
ConfigMaps, HTTPRoutes. Plain dicts through the official client, against the real API.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from waiting import wait_until

GROUP, VERSION, PLURAL = "releaseguard.io", "v1alpha1", "releaseguards"
GATEWAY = ("gateway.networking.k8s.io", "v1", "httproutes")
TIMEOUT = (3, 15)


def raw(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    response = call(*args, _preload_content=False, _request_timeout=TIMEOUT, **kwargs)
    return json.loads(response.data)


class Objects:
    """CRUD for the kinds the tests use, in one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.ns = namespace
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    # guards
    def create_guard(
        self, name: str, spec: dict[str, Any], annotations: dict | None = None
    ) -> dict:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ReleaseGuard",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": spec,
        }
        return self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, body, _request_timeout=TIMEOUT
        )

    def guard(self, name: str) -> dict[str, Any]:
        return raw(self.custom.get_namespaced_custom_object, GROUP, VERSION, self.ns, PLURAL, name)

    def status(self, name: str) -> dict[str, Any]:
        return self.guard(name).get("status") or {}

    def patch_guard(self, name: str, patch: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, name, patch, _request_timeout=TIMEOUT
        )

    def annotate_guard(self, name: str, key: str, value: str) -> None:
        self.patch_guard(name, {"metadata": {"annotations": {key: value}}})

    def create_namespace(self) -> None:
        """Create this namespace and wait for its default ServiceAccount (pods and the
        operator's objects need it)."""
        self.core.create_namespace({"metadata": {"name": self.ns}}, _request_timeout=TIMEOUT)
        wait_until(
            lambda: any(
                sa.metadata.name == "default"
                for sa in self.core.list_namespaced_service_account(
                    self.ns, _request_timeout=TIMEOUT
                ).items
            ),
            timeout=30,
            describe="the default ServiceAccount",
        )

    def events(self, name: str) -> list[dict[str, Any]]:
        items = raw(
            self.core.list_namespaced_event,
            self.ns,
            field_selector=f"involvedObject.name={name},involvedObject.kind=ReleaseGuard",
        )["items"]
        return sorted(items, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")

    def wait_event(self, name: str, reason: str, timeout: float = 30) -> list[dict[str, Any]]:
        """The guard's Events with this reason, once there is one.

        Events are posted after the status write that records the same moment,
        so a test that has just seen the status must wait for the Event.
        """
        return wait_until(
            lambda: [e for e in self.events(name) if e["reason"] == reason],
            timeout=timeout,
            describe=lambda: f"Event {reason}; have {[e['reason'] for e in self.events(name)]}",
        )

    # workloads
    def create_deployment(
        self,
        name: str,
        image: str,
        replicas: int = 1,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        revision_history_limit: int | None = None,
    ) -> dict[str, Any]:
        labels = {"app": name, **(labels or {})}
        spec: dict[str, Any] = {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        }
        if revision_history_limit is not None:
            spec["revisionHistoryLimit"] = revision_history_limit
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": spec,
        }
        return self.apps.create_namespaced_deployment(self.ns, body, _request_timeout=TIMEOUT)

    def deployment(self, name: str) -> dict[str, Any]:
        return raw(self.apps.read_namespaced_deployment, name, self.ns)

    def set_image(self, name: str, image: str) -> None:
        dep = self.deployment(name)
        patch = copy.deepcopy({"spec": {"template": dep["spec"]["template"]}})
        patch["spec"]["template"]["spec"]["containers"][0]["image"] = image
        self.apps.patch_namespaced_deployment(name, self.ns, patch, _request_timeout=TIMEOUT)

    def patch_deployment(self, name: str, patch: dict[str, Any]) -> None:
        """Strategic-merge-patch a Deployment, e.g. ``{"spec": {"minReadySeconds": 2}}``."""
        self.apps.patch_namespaced_deployment(name, self.ns, patch, _request_timeout=TIMEOUT)

    def replica_sets(self, app: str) -> list[dict[str, Any]]:
        return raw(self.apps.list_namespaced_replica_set, self.ns, label_selector=f"app={app}")[
            "items"
        ]

    def pods(self, selector: str) -> list[dict[str, Any]]:
        return raw(self.core.list_namespaced_pod, self.ns, label_selector=selector)["items"]

    def create_config_map(self, name: str, data: dict[str, str]) -> None:
        body = {"metadata": {"name": name}, "data": data}
        self.core.create_namespaced_config_map(self.ns, body, _request_timeout=TIMEOUT)

    def config_map(self, name: str) -> dict[str, Any]:
        return raw(self.core.read_namespaced_config_map, name, self.ns)

    def create_service(self, name: str, selector: dict[str, str]) -> None:
        body = {
            "metadata": {"name": name},
            "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": 8080}]},
        }
        self.core.create_namespaced_service(self.ns, body, _request_timeout=TIMEOUT)

    def service(self, name: str) -> dict[str, Any]:
        return raw(self.core.read_namespaced_service, name, self.ns)

    def create_http_route(self, name: str, backends: dict[str, int]) -> None:
        body = {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": name},
            "spec": {
                "parentRefs": [{"name": "gateway"}],
                "rules": [
                    {
                        "backendRefs": [
                            {"name": b, "port": 80, "weight": w} for b, w in backends.items()
                        ]
                    }
                ],
            },
        }
        self.custom.create_namespaced_custom_object(
            *GATEWAY[:2], self.ns, GATEWAY[2], body, _request_timeout=TIMEOUT
        )

    def http_route(self, name: str) -> dict[str, Any]:
        return raw(
            self.custom.get_namespaced_custom_object, *GATEWAY[:2], self.ns, GATEWAY[2], name
        )

    def create_job(self, name: str) -> None:
        body = {
            "metadata": {"name": name},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "migrate", "image": "registry.local/migrate:1"}],
                    }
                },
            },
        }
        self.batch.create_namespaced_job(self.ns, body, _request_timeout=TIMEOUT)

    def job(self, name: str) -> dict[str, Any]:
        return raw(self.batch.read_namespaced_job, name, self.ns)

    def exists(self, reader: Any, name: str) -> bool:
        try:
            reader(name)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), {})


def deployment_available(dep: dict[str, Any]) -> bool:
    st = dep.get("status") or {}
    return (
        st.get("observedGeneration", 0) >= dep["metadata"]["generation"]
        and st.get("updatedReplicas", 0) == dep["spec"]["replicas"]
        and st.get("availableReplicas", 0) == dep["spec"]["replicas"]
        and st.get("replicas", 0) == dep["spec"]["replicas"]
    )
