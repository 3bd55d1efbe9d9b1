"""What a step's write adds so that a GitOps reconciler stops undoing it.

Flux: the annotation `kustomize.toolkit.fluxcd.io/reconcile: disabled` on an object makes
Flux's kustomize-controller stop applying it (Flux documents it as the way to pause one
object). With `spec.gitOps.flux` every object a step changes gets it in the same write,
and the action's before/after show it, so a human knows to take it off again.

Argo CD: with `spec.gitOps.argoCD`, the first step of an incident that is applied comes
with an action of type GitOpsPause that removes the Application's
`spec.syncPolicy.automated` (Argo CD then stops syncing, self-heal included); its
`before` keeps the old value so a human can put it back. Like a step it has a stable id,
readiness and a dry run, and is applied exactly once. A pause that failed (the API server
refused the write, or the Application could not be read) is tried again, PAUSE_TRIES
times in all per incident, each try after intervalSeconds x 2^(n-1) and with its own id;
one that found no automated sync to remove is not (there is nothing to pause).

Pure: functions of the step's Change, the Application as a dict, spec and status. No I/O.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta

from releaseguard.domain.changes import NO_LONGER_APPLICABLE, Change, NotApplicable, Obj
from releaseguard.domain.models import (
    ActionResult,
    Blocker,
    GuardSpec,
    GuardStatus,
    StepReadiness,
    StepType,
)
from releaseguard.domain.plan import incident_actions

FLUX_RECONCILE = "kustomize.toolkit.fluxcd.io/reconcile"
FLUX_DISABLED = "disabled"


def with_flux_paused(change: Change) -> Change:
    """`change`, also setting the Flux reconcile annotation to disabled."""
    new = copy.deepcopy(change.new_object)
    annotations = new.setdefault("metadata", {}).setdefault("annotations", {}) or {}
    new["metadata"]["annotations"] = annotations
    old = annotations.get(FLUX_RECONCILE)
    annotations[FLUX_RECONCILE] = FLUX_DISABLED
    patch = copy.deepcopy(change.patch)
    patch.setdefault("metadata", {}).setdefault("annotations", {})[FLUX_RECONCILE] = FLUX_DISABLED
    return Change(
        before={**change.before, FLUX_RECONCILE: old or ""},
        after={**change.after, FLUX_RECONCILE: FLUX_DISABLED},
        new_object=new,
        patch=patch,
    )


# ---------------------------------------------------------------- Argo CD

ARGOCD = ("argoproj.io", "v1alpha1", "applications")
PAUSE_FIELD = "spec.syncPolicy.automated"
REMOVED = "(removed)"
PAUSE_TAKEN = (ActionResult.APPLIED, ActionResult.DRY_RUN)
PAUSE_TRIES = 3  # per incident, the first included


def pause_id(incident_number: int, attempt: int = 1) -> str:
    """The stable id of an incident's GitOpsPause: `<n>-gitopspause-0`, and for the
    attempt-th try after failed ones `<n>-gitopspause-0-t<attempt>`."""
    first = f"{incident_number}-{StepType.GITOPS_PAUSE.value.lower()}-0"
    return first if attempt == 1 else f"{first}-t{attempt}"


def application_ref(spec: GuardSpec) -> str:
    argo = spec.git_ops.argo_cd
    return f"Application/{argo.namespace}/{argo.application}" if argo else ""


def pause_due(spec: GuardSpec, status: GuardStatus, now: datetime) -> str | None:
    """The id of the GitOpsPause to take now, if any: with the first step of the open
    incident that was applied (or, in dry run, recorded), once per incident; after a
    failed try, again once its backoff has passed (see the module's docstring)."""
    incident = status.incident
    if spec.git_ops.argo_cd is None or incident is None or incident.closed:
        return None
    taken = incident_actions(status.actions, incident.number)
    steps = [a for a in taken if a.type is not StepType.GITOPS_PAUSE and a.result in PAUSE_TAKEN]
    if not steps:
        return None
    tries = [a for a in taken if a.type is StepType.GITOPS_PAUSE]
    if not tries:
        return pause_id(incident.number)
    last = tries[-1]
    if last.result is not ActionResult.FAILED or len(tries) >= PAUSE_TRIES:
        return None
    if last.message.startswith(NO_LONGER_APPLICABLE):
        return None
    backoff = timedelta(seconds=spec.interval_seconds * 2 ** (len(tries) - 1))
    return pause_id(incident.number, len(tries) + 1) if now >= last.time + backoff else None


def pause_change(application: Obj) -> Change | NotApplicable:
    """Remove the Application's automated sync; `before` keeps it for a human to restore."""
    name = (application.get("metadata") or {}).get("name", "")
    policy = (application.get("spec") or {}).get("syncPolicy") or {}
    automated = policy.get("automated")
    if automated is None:
        return NotApplicable(
            f"Application {name} has no automated sync: nothing to pause", Blocker.NOTHING_TO_PAUSE
        )
    new = copy.deepcopy(application)
    del new["spec"]["syncPolicy"]["automated"]
    return Change(
        before={PAUSE_FIELD: automated},
        after={PAUSE_FIELD: REMOVED},
        new_object=new,
        patch={"spec": {"syncPolicy": {"automated": None}}},
    )


def pause_readiness(change: Change | NotApplicable | None, problem: str = "") -> StepReadiness:
    """The GitOpsPause line of status.readiness (index -1: not a step of spec.steps)."""
    if problem:
        return StepReadiness(
            type=StepType.GITOPS_PAUSE,
            index=-1,
            ready=False,
            reason=problem,
            code=Blocker.UNUSABLE,
        )
    if isinstance(change, NotApplicable):
        return StepReadiness(
            type=StepType.GITOPS_PAUSE,
            index=-1,
            ready=False,
            reason=change.reason,
            code=change.code,
        )
    return StepReadiness(type=StepType.GITOPS_PAUSE, index=-1, ready=True)
