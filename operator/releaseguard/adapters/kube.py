"""Read the facts a guard needs from the API server, and apply one step, exactly once.

Synchronous (the official client is): the service calls these from a worker thread.
Every request carries an explicit timeout. Everything is in the guard's own namespace.

Exactly once: a step's write carries, in the same request, the annotation
`releaseguard.io/action` with this guard's entry {"id": <action id>, "incident": <incident
uid>, "before": ..., "after": ..., "time": ...} (one entry per guard; format and rules in
domain/identity.py) on the object it changes. If the process dies after the write and
before the status write, the next process finds the entry, records the action from it,
and does not write again. An entry of another incident is never taken as applied.

Concurrency: writes are PUTs of the object as read, so they carry its resourceVersion;
a concurrent writer makes the API server answer 409, and the step is re-planned on a
fresh read (bounded). Nobody else's fields are ever overwritten with stale values.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from releaseguard.domain import changes
from releaseguard.domain.changes import Change, NotApplicable, Obj
from releaseguard.domain.gitops import with_flux_paused
from releaseguard.domain.guard import TargetFacts
from releaseguard.domain.identity import (
    MARKER,
    MarkerEntry,
    belongs_to,
    parse_markers,
    with_marker,
)
from releaseguard.domain.models import (
    GROUP,
    PLURAL,
    VERSION,
    ActionRecord,
    ActionResult,
    GuardSpec,
    GuardStatus,
    Incident,
    Step,
    StepReadiness,
    StepType,
)
from releaseguard.domain.rollback_target import breached_templates

log = logging.getLogger(__name__)

# Every write carries this field manager, so managedFields shows who contained, and
# Argo CD can be told to leave these fields alone (README, "GitOps").
FIELD_MANAGER = "releaseguard"
TIMEOUT = (3.0, 10.0)  # (connect, read) seconds for every API request
CONFLICT_RETRIES = 5
GATEWAY = ("gateway.networking.k8s.io", "v1", "httproutes")

# Test-only fault seams, off unless the environment sets them (see tests/e2e):
#   RELEASEGUARD_FAULT_KILL_AFTER_PATCH=1   die (SIGKILL) right after a step's write
#   RELEASEGUARD_FAULT_CONFLICT_ONCE=1      touch the object between read and write once,
#                                           as a concurrent writer would, to provoke a 409
#   RELEASEGUARD_FAULT_CONFLICT_IMAGE=IMG   with CONFLICT_ONCE on a Deployment: that writer
#                                           also sets the first container's image to IMG
FAULT_KILL_AFTER_PATCH = "RELEASEGUARD_FAULT_KILL_AFTER_PATCH"
FAULT_CONFLICT_ONCE = "RELEASEGUARD_FAULT_CONFLICT_ONCE"
FAULT_CONFLICT_IMAGE = "RELEASEGUARD_FAULT_CONFLICT_IMAGE"


class Missing(Exception):
    """A named object does not exist: the spec cannot work (phase Invalid)."""


# A Secret's owner opts it in to being read for guards (docs/security.md): without the
# label, anyone who may create a guard could have the operator read any Secret of the
# namespace and send it to a Prometheus of their choosing.
USABLE_BY_GUARDS = "releaseguard.io/usable-by-guards"


class SecretNotLabelled(Exception):
    """A Secret a guard names lacks the label USABLE_BY_GUARDS="true" (phase Invalid)."""


@dataclass(frozen=True)
class StepView:
    """One step as seen now: whether it is usable, and what it would change."""

    index: int
    step: Step
    object_ref: str
    obj: Obj | None
    change: Change | NotApplicable
    markers: dict[str, MarkerEntry]  # the object's marker entries, by guard uid

    @property
    def readiness(self) -> StepReadiness:
        if isinstance(self.change, NotApplicable):
            return StepReadiness(
                type=self.step.type, index=self.index, ready=False, reason=self.change.reason
            )
        return StepReadiness(type=self.step.type, index=self.index, ready=True)


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self._conflict_fault_armed = os.environ.get(FAULT_CONFLICT_ONCE) == "1"

    # ------------------------------------------------------------ reads

    @staticmethod
    def _raw(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Obj:
        response = call(*args, _preload_content=False, _request_timeout=TIMEOUT, **kwargs)
        return json.loads(response.data)

    def _get(self, call: Callable[..., Any], *args: Any, what: str) -> Obj:
        try:
            return self._raw(call, *args)
        except ApiException as exc:
            if exc.status == 404:
                raise Missing(f"{what} not found") from exc
            raise

    def deployment(self, ns: str, name: str) -> Obj:
        return self._get(self.apps.read_namespaced_deployment, name, ns, what=f"Deployment {name}")

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

    def target_facts(
        self, ns: str, name: str, cached: tuple[Obj, list[Obj]] | None = None
    ) -> tuple[Obj, list[Obj], TargetFacts]:
        """The target and its ReplicaSets, from `cached` (the operator's watch-fed copies)
        when it holds the current revision's ReplicaSet, read from the API otherwise:
        the two kinds arrive on separate watches, so a rollout can show the new
        Deployment a moment before its ReplicaSet."""
        current = None
        if cached is not None:
            deployment, sets = cached
            current = changes.current_replica_set(deployment, sets)
        if current is None:
            deployment = self.deployment(ns, name)
            sets = self.replica_sets(ns, deployment)
            current = changes.current_replica_set(deployment, sets)
        status = deployment.get("status") or {}
        wanted = (deployment.get("spec") or {}).get("replicas", 1)
        # The release is available once its rollout is complete (as `kubectl rollout
        # status` judges it). Mid-rollout the Deployment is Available on the old pods, and
        # healthy metrics then say nothing about the new release: it must not start
        # counting towards lastKnownGood before it serves the traffic.
        available = (
            any(
                c.get("type") == "Available" and c.get("status") == "True"
                for c in status.get("conditions") or []
            )
            and status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
            and status.get("updatedReplicas", 0) >= wanted
            and status.get("replicas", 0) <= status.get("updatedReplicas", 0)
            and status.get("availableReplicas", 0) >= status.get("updatedReplicas", 0)
        )
        facts = TargetFacts(
            revision=str(changes.revision_of(deployment)),
            pod_template_hash=changes.template_hash(current) if current else "",
            images=tuple(changes.images_of(deployment["spec"]["template"])),
            available=available,
        )
        return deployment, sets, facts

    def secret_value(self, ns: str, name: str, key: str) -> str:
        import base64

        secret = self._get(self.core.read_namespaced_secret, name, ns, what=f"Secret {name}")
        labels = (secret.get("metadata") or {}).get("labels") or {}
        if labels.get(USABLE_BY_GUARDS) != "true":
            raise SecretNotLabelled(
                f'Secret {name} does not carry the label {USABLE_BY_GUARDS}: "true"; '
                "its owner must add it before guards may use it"
            )
        data = (secret.get("data") or {}).get(key)
        if data is None:
            raise Missing(f"Secret {name} has no key {key}")
        # Binary data decodes to U+FFFD characters, which the caller rejects: never raise.
        return base64.b64decode(data).decode(errors="replace").strip()

    def _succeeded_jobs(self, ns: str, names: list[str], since: str | None) -> list[str]:
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

    def _ready_pods(self, ns: str, selector: dict[str, str]) -> int:
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

    # ------------------------------------------------------------ steps

    def view_steps(
        self,
        ns: str,
        spec: GuardSpec,
        status: GuardStatus,
        target: Obj,
        target_sets: list[Obj],
    ) -> list[StepView]:
        views = []
        for index, step in enumerate(spec.steps):
            try:
                views.append(self.view_step(ns, spec, status, index, step, target, target_sets))
            except Missing as exc:
                ref = _ref(step, spec)
                views.append(StepView(index, step, ref, None, NotApplicable(str(exc)), {}))
        return views

    def view_step(
        self,
        ns: str,
        spec: GuardSpec,
        status: GuardStatus,
        index: int,
        step: Step,
        target: Obj | None = None,
        target_sets: list[Obj] | None = None,
        pinned_hash: str | None = None,
    ) -> StepView:
        """`pinned_hash`: for a Rollback being applied, the target fixed when it was
        planned (domain/rollback_target.py)."""
        ref = _ref(step, spec)
        obj: Obj
        change: Change | NotApplicable
        if step.type is StepType.FEATURE_FLAG:
            assert step.feature_flag is not None
            name = step.feature_flag.config_map
            obj = self._get(
                self.core.read_namespaced_config_map, name, ns, what=f"ConfigMap {name}"
            )
            change = changes.feature_flag_change(step.feature_flag, obj)
        elif step.type is StepType.CANARY_WEIGHT:
            assert step.canary_weight is not None
            name = step.canary_weight.http_route
            obj = self._get(
                self.custom.get_namespaced_custom_object,
                *GATEWAY[:2],
                ns,
                GATEWAY[2],
                name,
                what=f"HTTPRoute {name}",
            )
            change = changes.canary_weight_change(step.canary_weight, obj)
        elif step.type is StepType.SCALE:
            assert step.scale is not None
            obj = self.deployment(ns, step.scale.deployment)
            change = changes.scale_change(step.scale, obj)
        elif step.type is StepType.BLUE_GREEN:
            assert step.blue_green is not None
            bg = step.blue_green
            obj = self._get(
                self.core.read_namespaced_service, bg.service, ns, what=f"Service {bg.service}"
            )
            selector = dict((obj.get("spec") or {}).get("selector") or {})
            selector[bg.selector_key] = bg.stable_value
            change = changes.blue_green_change(bg, obj, self._ready_pods(ns, selector))
        else:
            assert step.rollback is not None
            if target is None or target_sets is None:
                target = self.deployment(ns, spec.target.deployment)
                target_sets = self.replica_sets(ns, target)
            obj = target
            current = changes.current_replica_set(target, target_sets)
            since = current["metadata"].get("creationTimestamp") if current else None
            jobs = self._succeeded_jobs(ns, list(spec.irreversible_changes.jobs), since)
            change = changes.rollback_change(
                step.rollback,
                target,
                target_sets,
                status.last_known_good,
                changes.irreversible_reason(target, jobs),
                avoid=breached_templates(status, changes.template_hash(current) if current else ""),
                pinned_hash=pinned_hash,
            )
        markers = parse_markers(((obj.get("metadata") or {}).get("annotations") or {}).get(MARKER))
        return StepView(index, step, ref, obj, change, markers)

    def apply_step(
        self,
        ns: str,
        spec: GuardSpec,
        status: GuardStatus,
        guard_uid: str,
        index: int,
        action_id: str,
        reason: str,
        now: Callable[[], datetime],
        pinned_hash: str | None = None,
    ) -> ActionRecord:
        """Apply step `index` once; retry a 409 from a fresh read, a bounded number of times.

        `status` holds the open incident (its uid goes into the marker); `pinned_hash`: a
        Rollback's target as planned, kept on every retry (domain/rollback_target.py)."""
        step = spec.steps[index]
        record = {"id": action_id, "type": step.type, "step_index": index, "reason": reason}
        ref = _ref(step, spec)
        incident = status.incident
        for attempt in range(CONFLICT_RETRIES):
            try:
                view = self.view_step(ns, spec, status, index, step, pinned_hash=pinned_hash)
            except Missing as exc:
                return ActionRecord(
                    **record, target=ref, result=ActionResult.FAILED, time=now(), message=str(exc)
                )
            mine = view.markers.get(guard_uid)
            if mine is not None and mine.id == action_id and belongs_to(mine, incident):
                return recovered_record(view, guard_uid, incident) or _unreachable()
            if isinstance(view.change, NotApplicable):
                return ActionRecord(
                    **record,
                    target=ref,
                    result=ActionResult.FAILED,
                    time=now(),
                    message=f"no longer applicable: {view.change.reason}",
                )
            change = view.change
            if spec.git_ops.flux:
                change = with_flux_paused(change)
            if spec.dry_run:
                return ActionRecord(
                    **record,
                    target=ref,
                    result=ActionResult.DRY_RUN,
                    time=now(),
                    before=change.before,
                    after=change.after,
                    patch=change.patch,
                    message="dry run: nothing was changed",
                )
            at = now()
            body = change.new_object
            annotations = body["metadata"].setdefault("annotations", {})
            entry = MarkerEntry(
                id=action_id,
                time=at,
                incident=(incident.uid or "") if incident is not None else "",
                before=change.before,
                after=change.after,
            )
            annotations[MARKER] = with_marker(annotations.get(MARKER), guard_uid, entry)
            try:
                self._maybe_conflict(ns, step, view)
                self._replace(ns, step, body)
            except ApiException as exc:
                if exc.status == 409 and attempt + 1 < CONFLICT_RETRIES:
                    log.info("%s: conflict on %s, retrying from a fresh read", action_id, ref)
                    continue
                return ActionRecord(
                    **record,
                    target=ref,
                    result=ActionResult.FAILED,
                    time=now(),
                    before=change.before,
                    after=change.after,
                    message=f"API error {exc.status}: {exc.reason}",
                )
            if os.environ.get(FAULT_KILL_AFTER_PATCH) == "1":
                os.kill(os.getpid(), 9)
            message = f"after {attempt} conflict(s)" if attempt else ""
            return ActionRecord(
                **record,
                target=ref,
                result=ActionResult.APPLIED,
                time=at,
                before=change.before,
                after=change.after,
                patch=change.patch,
                message=message,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _replace(self, ns: str, step: Step, body: Obj) -> None:
        name = body["metadata"]["name"]
        kw = {"_request_timeout": TIMEOUT, "field_manager": FIELD_MANAGER}
        if step.type is StepType.FEATURE_FLAG:
            self.core.replace_namespaced_config_map(name, ns, body, **kw)
        elif step.type is StepType.CANARY_WEIGHT:
            self.custom.replace_namespaced_custom_object(
                *GATEWAY[:2], ns, GATEWAY[2], name, body, **kw
            )
        elif step.type is StepType.BLUE_GREEN:
            self.core.replace_namespaced_service(name, ns, body, **kw)
        else:  # Scale and Rollback both write a Deployment
            self.apps.replace_namespaced_deployment(name, ns, body, **kw)

    def _maybe_conflict(self, ns: str, step: Step, view: StepView) -> None:
        """Fault seam: act as a concurrent writer once, so the real API server says 409."""
        if not self._conflict_fault_armed or view.obj is None:
            return
        self._conflict_fault_armed = False
        touched = json.loads(json.dumps(view.obj))
        touched["metadata"].setdefault("annotations", {})[
            "test.releaseguard.io/concurrent-writer"
        ] = datetime.now(UTC).isoformat()
        image = os.environ.get(FAULT_CONFLICT_IMAGE)
        if image and touched.get("kind") == "Deployment":
            touched["spec"]["template"]["spec"]["containers"][0]["image"] = image
        self._replace(ns, step, touched)

    # ------------------------------------------------------------ status

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


def _unreachable() -> ActionRecord:
    raise AssertionError("a marker with our id always gives a record")


def recovered_record(
    view: StepView, guard_uid: str, incident: Incident | None
) -> ActionRecord | None:
    """The action this guard's marker entry says it applied in `incident` (possibly by a
    process that then died); None for no entry or one of another incident."""
    entry = view.markers.get(guard_uid)
    if entry is None or not belongs_to(entry, incident):
        return None
    return ActionRecord(
        id=entry.id,
        type=view.step.type,
        step_index=view.index,
        target=view.object_ref,
        result=ActionResult.APPLIED,
        time=entry.time,
        before=entry.before,
        after=entry.after,
        message="recorded from the object's releaseguard.io/action marker",
    )


def _ref(step: Step, spec: GuardSpec) -> str:
    if step.feature_flag is not None:
        return f"ConfigMap/{step.feature_flag.config_map}"
    if step.canary_weight is not None:
        return f"HTTPRoute/{step.canary_weight.http_route}"
    if step.scale is not None:
        return f"Deployment/{step.scale.deployment}"
    if step.blue_green is not None:
        return f"Service/{step.blue_green.service}"
    return f"Deployment/{spec.target.deployment}"
