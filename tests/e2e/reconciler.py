"""A stand-in for a GitOps reconciler, for tests: NOT Argo CD, NOT Flux.

Argo CD and Flux's controllers cannot run here (they need their own images and, for
Flux, a Git source). What ReleaseGuard must cope with is only their documented effect on
the objects it changes, so this simulates exactly that and nothing more:

- every `period` seconds it writes "the Git version" of each tracked object back, as a
  patch with its own field manager (Argo CD self-heal and Flux's kustomize-controller
  both re-apply the desired state on their interval, and managedFields then name them);
- it skips an object annotated `kustomize.toolkit.fluxcd.io/reconcile: disabled` when it
  plays Flux (`flux=True`), as Flux documents;
- it stops syncing while the Argo CD Application it plays (`application=(ns, name)`) has
  no `spec.syncPolicy.automated`, as Argo CD documents for automated sync.

Writes are counted, so a test can tell how often the fight went each way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

TIMEOUT = (3, 10)
FLUX_RECONCILE = "kustomize.toolkit.fluxcd.io/reconcile"
GATEWAY = ("gateway.networking.k8s.io", "v1", "httproutes")
ARGO = ("argoproj.io", "v1alpha1", "applications")


@dataclass
class Tracked:
    kind: str  # HTTPRoute | Deployment | ConfigMap | Service
    name: str
    desired: dict[str, Any]  # the Git version, as a patch of the live object


class Reconciler:
    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        period: float,
        manager: str = "gitops-sim",
        flux: bool = False,
        application: tuple[str, str] | None = None,
    ) -> None:
        self.ns = namespace
        self.period = period
        self.manager = manager
        self.flux = flux
        self.application = application
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.tracked: list[Tracked] = []
        self.writes = 0  # patches sent
        self.skipped = 0  # objects left alone (Flux annotation, Application paused)
        self.syncs = 0  # completed passes
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def track(self, kind: str, name: str, desired: dict[str, Any]) -> None:
        self.tracked.append(Tracked(kind, name, desired))

    # -------------------------------------------------------------- one pass

    def _read(self, t: Tracked) -> dict[str, Any]:
        if t.kind == "HTTPRoute":
            return self.custom.get_namespaced_custom_object(
                *GATEWAY[:2], self.ns, GATEWAY[2], t.name, _request_timeout=TIMEOUT
            )
        if t.kind == "Deployment":
            return self.apps.read_namespaced_deployment(
                t.name, self.ns, _request_timeout=TIMEOUT
            ).to_dict()
        if t.kind == "ConfigMap":
            return self.core.read_namespaced_config_map(
                t.name, self.ns, _request_timeout=TIMEOUT
            ).to_dict()
        return self.core.read_namespaced_service(
            t.name, self.ns, _request_timeout=TIMEOUT
        ).to_dict()

    def _patch(self, t: Tracked) -> None:
        kw = {"field_manager": self.manager, "_request_timeout": TIMEOUT}
        call: Callable[..., Any]
        if t.kind == "HTTPRoute":
            self.custom.patch_namespaced_custom_object(
                *GATEWAY[:2], self.ns, GATEWAY[2], t.name, t.desired, **kw
            )
            return
        call = {
            "Deployment": self.apps.patch_namespaced_deployment,
            "ConfigMap": self.core.patch_namespaced_config_map,
            "Service": self.core.patch_namespaced_service,
        }[t.kind]
        call(t.name, self.ns, t.desired, **kw)

    def _automated(self) -> bool:
        if self.application is None:
            return True
        ns, name = self.application
        app = self.custom.get_namespaced_custom_object(
            *ARGO[:2], ns, ARGO[2], name, _request_timeout=TIMEOUT
        )
        return bool(((app.get("spec") or {}).get("syncPolicy") or {}).get("automated"))

    def sync(self) -> int:
        """One reconcile pass; returns how many objects it wrote."""
        wrote = 0
        if not self._automated():
            self.skipped += len(self.tracked)
            self.syncs += 1
            return 0
        for t in self.tracked:
            obj = self._read(t)
            meta = obj.get("metadata") or {}
            annotations = meta.get("annotations") or {}
            if self.flux and annotations.get(FLUX_RECONCILE) == "disabled":
                self.skipped += 1
                continue
            self._patch(t)
            self.writes += 1
            wrote += 1
        self.syncs += 1
        return wrote

    # -------------------------------------------------------------- the loop

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
            except ApiException as exc:  # recorded, never silent: tests assert on it
                self.errors.append(f"{exc.status} {exc.reason}")
            self._stop.wait(self.period)

    def start(self) -> Reconciler:
        self._thread = threading.Thread(target=self._run, name="gitops-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def __enter__(self) -> Reconciler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
