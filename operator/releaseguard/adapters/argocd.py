"""Pause an Argo CD Application's automated sync, exactly once per incident.

The Application a guard names (spec.gitOps.argoCD) is the one object outside the guard's
namespace it may touch: another namespace is reached only when the operator runs with
--argocd-cross-namespace (off by default), and the chart's admission policy checks that
the guard's author may patch it. What is written is decided in domain/gitops.py; this
module reads the Application and writes it with the marker annotation in the same request,
as every step (adapters/cluster.py `write_once`), answering 409 with a bounded re-read.

Synchronous, every request with a timeout: the service calls it from a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from releaseguard.adapters.cluster import Cluster, Missing, write_once
from releaseguard.domain.applicability import Action
from releaseguard.domain.changes import Obj
from releaseguard.domain.gitops import application_ref, pause_change, pause_readiness
from releaseguard.domain.models import (
    ActionRecord,
    GuardSpec,
    GuardStatus,
    StepReadiness,
    StepType,
)

log = logging.getLogger(__name__)
CROSS_NAMESPACE_FLAG = "--argocd-cross-namespace"


class ArgoCD:
    def __init__(self, cluster: Cluster, cross_namespace: bool = False) -> None:
        self.cluster = cluster
        self.cross_namespace = cross_namespace

    def _read(self, ns: str, spec: GuardSpec) -> tuple[Obj | None, str]:
        argo = spec.git_ops.argo_cd
        assert argo is not None
        where = f"Application {argo.namespace}/{argo.application}"
        if argo.namespace != ns and not self.cross_namespace:
            return None, (
                f"{where} is outside the guard's namespace: the operator must run with "
                f"{CROSS_NAMESPACE_FLAG} to pause it"
            )
        try:
            app = self.cluster.read(argo.namespace, "Application", argo.application)
        except Missing:
            return None, f"{where} not found"
        except ApiException as exc:
            return None, f"reading {where}: API error {exc.status}: {exc.reason}"
        return app, ""

    def readiness(self, ns: str, spec: GuardSpec) -> StepReadiness | None:
        """The GitOpsPause line of status.readiness; None without spec.gitOps.argoCD."""
        if spec.git_ops.argo_cd is None:
            return None
        app, problem = self._read(ns, spec)
        return pause_readiness(pause_change(app) if app is not None else None, problem)

    def pause(
        self,
        ns: str,
        spec: GuardSpec,
        status: GuardStatus,
        guard_uid: str,
        action_id: str,
        reason: str,
        now: Callable[[], datetime],
    ) -> ActionRecord:
        """Remove the Application's automated sync once (a marker entry of ours with this
        id means a previous process did: recorded, not written again)."""
        argo = spec.git_ops.argo_cd
        assert argo is not None
        ref = application_ref(spec)
        action = Action(action_id, StepType.GITOPS_PAUSE, -1, ref, reason, status.incident)

        def fresh() -> tuple[Obj, Any]:
            app, problem = self._read(ns, spec)
            if app is None:
                raise Missing(problem)
            return app, pause_change(app)

        return write_once(
            self.cluster, argo.namespace, "Application", action, guard_uid, spec, fresh, now
        )
