"""Pause an Argo CD Application's automated sync, exactly once per incident.

The Application a guard names (spec.gitOps.argoCD) is the one object outside the guard's
namespace it may touch: another namespace is reached only when the operator runs with
--argocd-cross-namespace (off by default), and the chart's admission policy checks that
the guard's author may patch it. What is written is decided in domain/gitops.py; this
module reads the Application, writes it with the marker annotation in the same request
(as every step, see adapters/kube.py) and answers 409 with a bounded re-read.

Synchronous, every request with a timeout: the service calls it from a worker thread.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime

from kubernetes.client.exceptions import ApiException

from releaseguard.adapters.kube import (
    CONFLICT_RETRIES,
    FAULT_KILL_AFTER_PATCH,
    FIELD_MANAGER,
    MARKER,
    TIMEOUT,
    Kube,
    Missing,
)
from releaseguard.domain.changes import Change, NotApplicable, Obj
from releaseguard.domain.gitops import (
    ARGOCD,
    application_ref,
    pause_change,
    pause_readiness,
)
from releaseguard.domain.identity import MarkerEntry, belongs_to, parse_markers, with_marker
from releaseguard.domain.models import (
    ActionRecord,
    ActionResult,
    GuardSpec,
    GuardStatus,
    StepReadiness,
    StepType,
)

log = logging.getLogger(__name__)
CROSS_NAMESPACE_FLAG = "--argocd-cross-namespace"


class ArgoCD:
    def __init__(self, kube: Kube, cross_namespace: bool = False) -> None:
        self.kube = kube
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
            app = self.kube._get(
                self.kube.custom.get_namespaced_custom_object,
                *ARGOCD[:2],
                argo.namespace,
                ARGOCD[2],
                argo.application,
                what=where,
            )
        except Missing as exc:
            return None, str(exc)
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
        ref = application_ref(spec)
        record = {
            "id": action_id,
            "type": StepType.GITOPS_PAUSE,
            "step_index": -1,
            "reason": reason,
            "target": ref,
        }
        incident = status.incident
        for attempt in range(CONFLICT_RETRIES):
            app, problem = self._read(ns, spec)
            if app is None:
                return ActionRecord(
                    **record, result=ActionResult.FAILED, time=now(), message=problem
                )
            annotations = (app.get("metadata") or {}).get("annotations") or {}
            mine = parse_markers(annotations.get(MARKER)).get(guard_uid)
            if mine is not None and mine.id == action_id and belongs_to(mine, incident):
                return ActionRecord(
                    **record,
                    result=ActionResult.APPLIED,
                    time=mine.time,
                    before=mine.before,
                    after=mine.after,
                    message="recorded from the object's releaseguard.io/action marker",
                )
            change: Change | NotApplicable = pause_change(app)
            if isinstance(change, NotApplicable):
                return ActionRecord(
                    **record,
                    result=ActionResult.FAILED,
                    time=now(),
                    message=f"no longer applicable: {change.reason}",
                )
            if spec.dry_run:
                return ActionRecord(
                    **record,
                    result=ActionResult.DRY_RUN,
                    time=now(),
                    before=change.before,
                    after=change.after,
                    patch=change.patch,
                    message="dry run: nothing was changed",
                )
            at = now()
            body = change.new_object
            marks = body["metadata"].setdefault("annotations", {})
            entry = MarkerEntry(
                id=action_id,
                time=at,
                incident=(incident.uid or "") if incident is not None else "",
                before=change.before,
                after=change.after,
            )
            marks[MARKER] = with_marker(marks.get(MARKER), guard_uid, entry)
            argo = spec.git_ops.argo_cd
            assert argo is not None
            try:
                # A PUT of the object as read: a concurrent writer makes it a 409.
                self.kube.custom.replace_namespaced_custom_object(
                    *ARGOCD[:2],
                    argo.namespace,
                    ARGOCD[2],
                    argo.application,
                    body,
                    field_manager=FIELD_MANAGER,
                    _request_timeout=TIMEOUT,
                )
            except ApiException as exc:
                if exc.status == 409 and attempt + 1 < CONFLICT_RETRIES:
                    log.info("%s: conflict on %s, retrying from a fresh read", action_id, ref)
                    continue
                return ActionRecord(
                    **record,
                    result=ActionResult.FAILED,
                    time=now(),
                    before=change.before,
                    after=change.after,
                    message=f"API error {exc.status}: {exc.reason}",
                )
            if os.environ.get(FAULT_KILL_AFTER_PATCH) == "1":
                os.kill(os.getpid(), 9)
            return ActionRecord(
                **record,
                result=ActionResult.APPLIED,
                time=at,
                before=change.before,
                after=change.after,
                patch=change.patch,
            )
        raise AssertionError("unreachable")  # pragma: no cover
