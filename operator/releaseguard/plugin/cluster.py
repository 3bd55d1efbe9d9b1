"""The plugin's reads and writes, through the official client, with kubectl's conventions.

Kubeconfig as kubectl finds it (--kubeconfig, else KUBECONFIG, which may list several
files, else ~/.kube/config), --context, and the context's namespace by default. Every
request carries a timeout; lists are paged and capped.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from releaseguard.adapters.kube import GATEWAY, Kube
from releaseguard.domain.models import GROUP, KIND, PLURAL, VERSION

TIMEOUT = (3.0, 15.0)  # (connect, read) seconds for every request
PAGE = 250
MAX_ITEMS = 5000  # guards listed, Events read: enough for any screen, bounded memory
FIELD_MANAGER = "kubectl-releaseguard"
COMPONENT = "kubectl-releaseguard"
CRD_NAME = f"{PLURAL}.{GROUP}"

Obj = dict[str, Any]


class PluginError(Exception):
    """A failure to report in one sentence (exit 1)."""


@dataclass
class Session:
    api: client.ApiClient
    namespace: str

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def kube(self) -> Kube:
        return Kube(self.api)


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Session:
    try:
        contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)
        chosen = next((c for c in contexts if c["name"] == context), None) if context else current
        if context and chosen is None:
            raise PluginError(f"context {context!r} not found in the kubeconfig")
        api = config.new_client_from_config(config_file=kubeconfig, context=context)
    except config.ConfigException as exc:
        raise PluginError(f"kubeconfig: {exc}") from exc
    default = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    return Session(api, namespace or default)


def raw(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Obj:
    response = call(*args, _preload_content=False, _request_timeout=TIMEOUT, **kwargs)
    return json.loads(response.data)


def api_error(exc: ApiException, what: str) -> PluginError:
    detail = exc.reason
    with contextlib.suppress(ValueError, AttributeError):
        detail = json.loads(exc.body or "{}").get("message") or detail
    return PluginError(f"{what}: {exc.status} {detail}")


def get_guard(s: Session, name: str, namespace: str | None = None) -> Obj:
    ns = namespace or s.namespace
    try:
        return raw(s.custom.get_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, name)
    except ApiException as exc:
        if exc.status == 404:
            raise PluginError(f'releaseguard "{name}" not found in namespace {ns}') from exc
        raise api_error(exc, f"reading releaseguard {ns}/{name}") from exc


def _paged(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Iterator[Obj]:
    token, seen = None, 0
    while True:
        page = raw(call, *args, limit=PAGE, **({"_continue": token} if token else {}), **kwargs)
        for item in page.get("items") or []:
            seen += 1
            if seen > MAX_ITEMS:
                return
            yield item
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


def list_guards(s: Session, all_namespaces: bool) -> list[Obj]:
    try:
        if all_namespaces:
            return list(_paged(s.custom.list_cluster_custom_object, GROUP, VERSION, PLURAL))
        return list(
            _paged(s.custom.list_namespaced_custom_object, GROUP, VERSION, s.namespace, PLURAL)
        )
    except ApiException as exc:
        raise api_error(exc, "listing releaseguards") from exc


def guard_events(s: Session, guard: Obj) -> list[Obj]:
    meta = guard["metadata"]
    selector = f"involvedObject.name={meta['name']},involvedObject.kind={KIND}"
    try:
        items = list(
            _paged(s.core.list_namespaced_event, meta["namespace"], field_selector=selector)
        )
    except ApiException as exc:
        raise api_error(exc, "listing the guard's Events") from exc
    # A deleted guard's Events outlive it: keep the ones about this guard (its uid).
    uid = meta.get("uid")
    return [e for e in items if (e.get("involvedObject") or {}).get("uid") in (uid, None)]


def annotate(s: Session, guard: Obj, key: str, value: str) -> None:
    meta = guard["metadata"]
    patch = {"metadata": {"annotations": {key: value}}}
    try:
        s.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            meta["namespace"],
            PLURAL,
            meta["name"],
            patch,
            field_manager=FIELD_MANAGER,
            _request_timeout=TIMEOUT,
        )
    except ApiException as exc:
        raise api_error(exc, f"annotating releaseguard {meta['name']}") from exc


def post_event(s: Session, guard: Obj, type_: str, reason: str, message: str) -> None:
    meta = guard["metadata"]
    now = datetime.now(UTC)
    body = {
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "action": reason,
        "firstTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lastTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "count": 1,
    }
    try:
        s.core.create_namespaced_event(meta["namespace"], body, _request_timeout=TIMEOUT)
    except ApiException as exc:
        raise api_error(exc, "posting the Event") from exc


# ------------------------------------------------------------ the objects steps write


def read_object(s: Session, ns: str, kind: str, name: str) -> Obj:
    readers: dict[str, Callable[[], Obj]] = {
        "Deployment": lambda: raw(client.AppsV1Api(s.api).read_namespaced_deployment, name, ns),
        "ConfigMap": lambda: raw(s.core.read_namespaced_config_map, name, ns),
        "Service": lambda: raw(s.core.read_namespaced_service, name, ns),
        "HTTPRoute": lambda: raw(
            s.custom.get_namespaced_custom_object, *GATEWAY[:2], ns, GATEWAY[2], name
        ),
    }
    if kind not in readers:
        raise PluginError(f"undo does not know how to read a {kind}")
    try:
        return readers[kind]()
    except ApiException as exc:
        raise api_error(exc, f"reading {kind}/{name}") from exc


def replace_object(s: Session, ns: str, kind: str, body: Obj) -> Obj:
    """PUT the object as read: its resourceVersion makes a concurrent change a 409."""
    name = body["metadata"]["name"]
    kw = {"field_manager": FIELD_MANAGER, "_request_timeout": TIMEOUT, "_preload_content": False}
    if kind == "Deployment":
        response = client.AppsV1Api(s.api).replace_namespaced_deployment(name, ns, body, **kw)
    elif kind == "ConfigMap":
        response = s.core.replace_namespaced_config_map(name, ns, body, **kw)
    elif kind == "Service":
        response = s.core.replace_namespaced_service(name, ns, body, **kw)
    else:
        response = s.custom.replace_namespaced_custom_object(
            *GATEWAY[:2], ns, GATEWAY[2], name, body, **kw
        )
    return json.loads(response.data)


# ------------------------------------------------------------ check -f


def dry_run_create(s: Session, ns: str, guard: Obj) -> str | None:
    """Ask the API server to validate the guard as a create (schema, CEL rules, admission
    policies) without storing it; None when it would be accepted, else its message."""
    body = json.loads(json.dumps(guard))
    body.setdefault("metadata", {}).pop("namespace", None)
    for attempt in range(2):
        try:
            s.custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                ns,
                PLURAL,
                body,
                dry_run="All",
                field_validation="Strict",
                field_manager=FIELD_MANAGER,
                _request_timeout=TIMEOUT,
            )
            return None
        except ApiException as exc:
            if exc.status == 409 and attempt == 0:
                # A guard of that name exists: validate the same content under a
                # generated name instead (a dry run stores nothing either way).
                name = body["metadata"].pop("name", "guard")
                body["metadata"]["generateName"] = f"{name}-"
                continue
            return str(api_error(exc, "server-side dry run"))
    return None


def crd_schema_from_cluster(s: Session) -> Obj:
    try:
        crd = raw(client.ApiextensionsV1Api(s.api).read_custom_resource_definition, CRD_NAME)
    except ApiException as exc:
        raise api_error(exc, f"reading CustomResourceDefinition {CRD_NAME}") from exc
    version = next(v for v in crd["spec"]["versions"] if v["name"] == VERSION)
    return version["schema"]["openAPIV3Schema"]
