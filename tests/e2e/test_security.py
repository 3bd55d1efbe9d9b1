"""A guard can never make the operator do what its author may not (docs/security.md).

Three walls, each proven here on the real API server with RBAC on:
- the chart's ValidatingAdmissionPolicy: a user (a ServiceAccount with a Role and a real
  token) may create a guard only if they may patch every object its steps name and get
  every Secret it references (the CEL runs in the API server);
- the URL allow-list: a guard naming another URL is Invalid and a trap server sees no
  request, nor a redirect followed;
- labelled Secrets: an unlabelled Secret's token is never read, so never sent.
And the namespace boundary, under the chart's own RBAC identity.

The policy binds cluster-wide in the chart; here each test binds it to its own
namespace only (admissionPolicy.namespaceSelector), so the tests that run beside it, as
admin, are not affected.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart import render, token_kubeconfig
from objects import GROUP, PLURAL, VERSION, Objects, condition
from test_containment import bad_metric, spec, wait_phase
from test_install import install  # noqa: F401 (the fixture, shared)

from conftest import Cluster, dns_label, extra_namespace
from devcluster.launch import EVERY_EVALUATION
from waiting import wait_until

POLICY_KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
PROMETHEUS_ZERO = {"resultType": "vector", "result": [{"metric": {}, "value": [0, "0"]}]}
USABLE = {"releaseguard.io/usable-by-guards": "true"}
# RBAC and policy changes reach the API server's authorizer and admission through informers.
PROPAGATION_TIMEOUT = 30.0


# --------------------------------------------------------------------------- users


@dataclass
class User:
    """A ServiceAccount that may create, update and read guards in its namespace, and
    nothing else until granted; it acts through kubectl with its own token."""

    cluster: Cluster
    namespace: str
    name: str
    kubeconfig: Path
    grants: int = 0
    policy: str = ""  # the admission policy bound to its namespace

    def kubectl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = [
            str(self.cluster.info.kubectl),
            f"--kubeconfig={self.kubeconfig}",
            f"--namespace={self.namespace}",
            *args,
        ]
        return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=60)

    def create_guard(self, name: str, body: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        guard = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ReleaseGuard",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": body,
        }
        return self.kubectl("create", "-f", "-", input=json.dumps(guard))

    def patch_guard(self, name: str, patch: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return self.kubectl(
            "patch", f"{PLURAL}.{GROUP}", name, "-n", self.namespace, "--type=merge",
            "-p", json.dumps(patch),
        )  # fmt: skip

    def grant(self, verb: str, resource: str, name: str) -> None:
        """A Role allowing `verb` on the one object `resource`/`name`, bound to this user."""
        self.grants += 1
        role = f"{self.name}-grant-{self.grants}"
        ns = ("-n", self.namespace)
        self.cluster.kubectl(
            "create", "role", role, f"--verb={verb}", f"--resource={resource}",
            f"--resource-name={name}", *ns,
        )  # fmt: skip
        account = f"--serviceaccount={self.namespace}:{self.name}"
        self.cluster.kubectl("create", "rolebinding", role, f"--role={role}", account, *ns)


def make_user(
    cluster: Cluster,
    namespace: str,
    tmp_path: Path,
    name: str = "author",
    verbs: str = "create,get,list,watch,update,patch",
) -> User:
    ns = ("-n", namespace)
    cluster.kubectl("create", "serviceaccount", name, *ns)
    cluster.kubectl(
        "create", "role", f"{name}-guards", f"--verb={verbs}",
        f"--resource={PLURAL}.{GROUP}", *ns,
    )  # fmt: skip
    cluster.kubectl(
        "create", "rolebinding", f"{name}-guards", f"--role={name}-guards",
        f"--serviceaccount={namespace}:{name}", *ns,
    )  # fmt: skip
    path = token_kubeconfig(cluster, namespace, name, tmp_path / f"{namespace}-{name}.kubeconfig")
    return User(cluster, namespace, name, path)


def minimal(**extra: Any) -> dict[str, Any]:
    """A guard that names no object beyond its target and no Secret."""
    return {
        "target": {"deployment": "app"},
        "metrics": [{"name": "m", "query": "vector(0)", "max": 1}],
        **extra,
    }


STEPS: dict[str, tuple[dict[str, Any], str, str]] = {
    # step type: (the step, the resource kubectl names, the object)
    "FeatureFlag": (
        {"type": "FeatureFlag", "featureFlag": {"configMap": "flags", "key": "f", "value": "off"}},
        "configmaps",
        "flags",
    ),
    "CanaryWeight": (
        {"type": "CanaryWeight", "canaryWeight": {"httpRoute": "route", "canaryBackend": "v2"}},
        "httproutes.gateway.networking.k8s.io",
        "route",
    ),
    "Scale": ({"type": "Scale", "scale": {"deployment": "worker"}}, "deployments.apps", "worker"),
    "BlueGreen": (
        {
            "type": "BlueGreen",
            "blueGreen": {"service": "svc", "selectorKey": "color", "stableValue": "blue"},
        },
        "services",
        "svc",
    ),
    # Rollback acts on the target, and its settings are optional.
    "Rollback": ({"type": "Rollback"}, "deployments.apps", "app"),
}


def denial(resource: str, name: str, verb: str = "patch") -> str:
    return f'may not {verb} {resource} "{name}"'


# --------------------------------------------------------------------------- the policy


@pytest.fixture
def author(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[User]:
    """A user in `namespace` with only guard rights, and the chart's admission policy bound
    to `namespace`; returns once the API server enforces it."""
    values = {
        "crds": {"install": False},
        "admissionPolicy": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
        },
    }
    docs = [d for d in render(dns_label("sec", 30), namespace, values) if d["kind"] in POLICY_KINDS]
    assert [d["kind"] for d in docs] == list(POLICY_KINDS)
    user = make_user(cluster, namespace, tmp_path)
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    try:
        probe = minimal(steps=[STEPS["FeatureFlag"][0]])
        dry_run = ("create", "--dry-run=server", "-f", "-")
        wait_until(
            lambda: (
                "ValidatingAdmissionPolicy"
                in user.kubectl(*dry_run, input=json.dumps(guard_body("probe", probe))).stderr
            ),
            timeout=PROPAGATION_TIMEOUT,
            describe="the admission policy to deny the probe guard",
        )
        user.policy = docs[0]["metadata"]["name"]
        yield user
    finally:
        for doc in docs:
            name = doc["metadata"]["name"]
            cluster.kubectl("delete", doc["kind"], name, "--ignore-not-found", check=False)


def guard_body(name: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ReleaseGuard",
        "metadata": {"name": name},
        "spec": body,
    }


def created_after_grant(user: User, name: str, body: dict[str, Any]) -> None:
    """RBAC reaches the authorizer through an informer: retry the create until it passes."""
    last: list[str] = [""]

    def created() -> bool:
        result = user.create_guard(name, body)
        last[0] = result.stderr
        return result.returncode == 0

    wait_until(
        created,
        timeout=PROPAGATION_TIMEOUT,
        describe=lambda: f"guard {name} created after the grant (last: {last[0]})",
    )


@pytest.mark.parametrize("step_type", list(STEPS))
def test_a_step_is_denied_without_patch_on_its_object_and_allowed_after_a_grant(
    cluster, namespace, author, step_type
):
    step, resource, name = STEPS[step_type]
    body = minimal(steps=[step])
    refused = author.create_guard("g", body)
    assert refused.returncode != 0
    assert denial(resource, name) in refused.stderr, refused.stderr
    assert f"system:serviceaccount:{namespace}:author" in refused.stderr

    author.grant("patch", resource, name)
    created_after_grant(author, "g", body)
    assert Objects(cluster.api, namespace).guard("g")["spec"]["steps"][0]["type"] == step_type


def test_a_secret_the_user_cannot_get_is_denied_and_allowed_after_a_grant(
    cluster, namespace, author
):
    ref = {"name": "prom-token", "key": "token"}
    body = minimal(prometheus={"bearerTokenSecretRef": ref})
    refused = author.create_guard("g", body)
    assert refused.returncode != 0
    assert denial("secrets", "prom-token", "get") in refused.stderr, refused.stderr
    assert "spec.prometheus.bearerTokenSecretRef" in refused.stderr

    author.grant("get", "secrets", "prom-token")
    created_after_grant(author, "g", body)


def test_a_guard_that_names_nothing_needs_no_rights_beyond_guards(namespace, author):
    for name, body in {
        "bare": minimal(),
        "empty-steps": minimal(steps=[]),
        "url-only": minimal(prometheus={"url": "https://prom.example.com"}),
    }.items():
        result = author.create_guard(name, body)
        assert result.returncode == 0, (name, result.stderr)


def test_a_user_who_may_only_create_guards_can_make_the_operator_act_on_nothing(
    cluster, namespace, author, tmp_path
):
    """The issue's bar: only `create releaseguards`, and no guard that names an object or
    a Secret gets in; one that names none does."""
    creator = make_user(cluster, namespace, tmp_path, "creator", verbs="create")
    every = [STEPS[t][0] for t in STEPS]
    token = {"bearerTokenSecretRef": {"name": "prom-token", "key": "token"}}
    for i, body in enumerate(
        [minimal(steps=every), minimal(prometheus=token), *(minimal(steps=[s]) for s in every)]
    ):
        result = creator.create_guard(f"g-{i}", body)
        assert result.returncode != 0 and "may not" in result.stderr, (body, result.stderr)
    assert creator.create_guard("bare", minimal()).returncode == 0


def hostile_specs() -> dict[str, tuple[dict[str, Any], str]]:
    """Specs that try to make the operator act beyond the author, who may patch only
    Deployment "app" and nothing else; each with the denial it must get."""
    flag, route, scale, blue, _ = (STEPS[t][0] for t in STEPS)
    ok_rollback = {"type": "Rollback"}  # on the target "app": allowed
    ok_scale = {"type": "Scale", "scale": {"deployment": "app", "replicas": 1}}
    secret = {"bearerTokenSecretRef": {"name": "db-password", "key": "password"}}
    worker = denial("deployments.apps", "worker")
    return {
        "scale another deployment": (minimal(steps=[scale]), worker),
        "rollback of a target the user may not patch": (
            {**minimal(steps=[ok_rollback]), "target": {"deployment": "payments"}},
            denial("deployments.apps", "payments"),
        ),
        "rollback with settings": (
            {
                **minimal(steps=[{"type": "Rollback", "rollback": {"toRevision": "Previous"}}]),
                "target": {"deployment": "payments"},
            },
            denial("deployments.apps", "payments"),
        ),
        "a forbidden step after an allowed one": (minimal(steps=[ok_rollback, scale]), worker),
        "a forbidden step last of twenty": (minimal(steps=[ok_scale] * 19 + [scale]), worker),
        "a feature flag": (minimal(steps=[flag]), denial("configmaps", "flags")),
        "a canary route": (
            minimal(steps=[route]),
            denial("httproutes.gateway.networking.k8s.io", "route"),
        ),
        "a blue-green service": (minimal(steps=[blue]), denial("services", "svc")),
        "a token Secret": (minimal(prometheus=secret), denial("secrets", "db-password", "get")),
        "a token Secret sent to another server": (
            minimal(prometheus={"url": "https://evil.example", **secret}),
            denial("secrets", "db-password", "get"),
        ),
        "a dry run still names the objects": (
            minimal(steps=[scale], dryRun=True),
            worker,
        ),
        "a suspended guard still names the objects": (
            minimal(steps=[scale], suspend=True),
            worker,
        ),
        # The right on Deployment "app" is no right on other kinds of the same name.
        "a ConfigMap named like the allowed Deployment": (
            minimal(steps=[{**flag, "featureFlag": {**flag["featureFlag"], "configMap": "app"}}]),
            denial("configmaps", "app"),
        ),
        "a Service named like the allowed Deployment": (
            minimal(steps=[{**blue, "blueGreen": {**blue["blueGreen"], "service": "app"}}]),
            denial("services", "app"),
        ),
        "an HTTPRoute named like the allowed Deployment": (
            minimal(
                steps=[{**route, "canaryWeight": {**route["canaryWeight"], "httpRoute": "app"}}]
            ),
            denial("httproutes.gateway.networking.k8s.io", "app"),
        ),
        "a Secret named like the allowed Deployment": (
            minimal(prometheus={"bearerTokenSecretRef": {"name": "app", "key": "k"}}),
            denial("secrets", "app", "get"),
        ),
        "every step type at once": (minimal(steps=[flag, route, scale, blue]), "may not patch"),
        "an explicit cost does not skip the check": (
            minimal(steps=[{**scale, "cost": 0}]),
            worker,
        ),
    }


def test_hostile_specs_are_denied_by_the_api_server(cluster, namespace, author):
    author.grant("patch", "deployments.apps", "app")
    created_after_grant(author, "allowed", minimal(steps=[{"type": "Rollback"}]))
    for i, (what, (body, message)) in enumerate(hostile_specs().items()):
        result = author.create_guard(f"hostile-{i}", body)
        assert result.returncode != 0, f"{what}: created"
        assert message in result.stderr, (what, result.stderr)

    # UPDATE is checked too: a guard created with allowed steps cannot be turned hostile.
    updates = {
        "add a forbidden step": (
            {"spec": {"steps": [{"type": "Scale", "scale": {"deployment": "worker"}}]}},
            denial("deployments.apps", "worker"),
        ),
        "retarget the rollback": (
            {"spec": {"target": {"deployment": "payments"}}},
            denial("deployments.apps", "payments"),
        ),
        "add a token Secret": (
            {"spec": {"prometheus": {"bearerTokenSecretRef": {"name": "db", "key": "k"}}}},
            denial("secrets", "db", "get"),
        ),
    }
    for what, (patch, message) in updates.items():
        result = author.patch_guard("allowed", patch)
        assert result.returncode != 0, f"{what}: patched"
        assert message in result.stderr, (what, result.stderr)
    guard = Objects(cluster.api, namespace).guard("allowed")
    assert guard["spec"]["target"] == {"deployment": "app"}
    assert [s["type"] for s in guard["spec"]["steps"]] == ["Rollback"]


def test_the_policy_type_checks_against_the_crd_without_warnings(cluster, namespace, author):
    def status() -> dict[str, Any]:
        out = cluster.kubectl("get", POLICY_KINDS[0], author.policy, "-o", "json").stdout
        return json.loads(out).get("status") or {}

    checked = wait_until(
        lambda: (s := status()).get("observedGeneration") and s,
        timeout=PROPAGATION_TIMEOUT,
        describe=status,
    )
    assert not (checked.get("typeChecking") or {}).get("expressionWarnings"), checked


# --------------------------------------------------------------------------- runtime walls


class Trap:
    """A local HTTP server that records every request and answers like Prometheus (one
    sample, 0) under /ok, with a redirect under /ok/redirect."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []  # (path, Authorization header)
        trap = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                trap.requests.append((self.path, self.headers.get("Authorization", "")))
                if self.path.startswith("/ok/redirect"):
                    self.send_response(302)
                    self.send_header("Location", f"{trap.url}/evil/api/v1/query?query=up")
                    self.end_headers()
                    return
                body = json.dumps({"status": "success", "data": PROMETHEUS_ZERO}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def paths(self, prefix: str) -> list[str]:
        return [p for p, _ in list(self.requests) if p.startswith(prefix)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def trap() -> Iterator[Trap]:
    server = Trap()
    yield server
    server.stop()


def reason(objs: Objects, name: str) -> str:
    return (condition(objs.status(name), "Ready") or {}).get("reason", "")


def wait_reason(objs: Objects, name: str, expected: str) -> dict[str, Any]:
    return wait_until(
        lambda: (
            (s := objs.status(name)).get("phase") == "Invalid"
            and reason(objs, name) == expected
            and s
        ),
        timeout=60,
        describe=lambda: objs.status(name),
    )


def test_no_request_reaches_a_url_outside_the_allow_list_nor_a_redirect_target(
    cluster, namespace, run_operator, trap
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    ok = f"{trap.url}/ok"
    guards = {
        "allowed": ok,
        "elsewhere": f"{trap.url}/other",
        "userinfo": f"http://ok@127.0.0.1:{trap.port}/ok",
        "port-suffix": f"http://127.0.0.1:{trap.port}0/ok",
        "redirect": f"{ok}/redirect",
    }
    for name, url in guards.items():
        objs.create_guard(name, minimal(intervalSeconds=1, prometheus={"url": url}))
    allowed = rf"^http://127\.0\.0\.1:{trap.port}/ok(/|$)"
    run_operator(namespace, "--allowed-url", allowed, *EVERY_EVALUATION)

    for name in ("elsewhere", "userinfo", "port-suffix"):
        status = wait_reason(objs, name, "URLNotAllowed")
        assert guards[name] in status["message"] or "refused" in status["message"], status
    wait_until(
        lambda: len(trap.paths("/ok/api/v1/query")) >= 3,
        timeout=60,
        describe=lambda: trap.requests,
    )
    redirected = wait_until(
        lambda: (objs.status("redirect").get("lastEvaluation") or {}).get("metrics"),
        timeout=60,
        describe=lambda: objs.status("redirect"),
    )
    assert redirected[0]["verdict"] == "NoData"
    assert "redirect" in redirected[0]["message"], redirected
    assert trap.paths("/ok/redirect"), "the redirecting URL was asked"
    assert trap.paths("/evil") == [], "a redirect was followed"
    assert trap.paths("/other") == [], "a URL outside the allow-list was contacted"
    assert all(p.startswith("/ok/") for p, _ in trap.requests), trap.requests
    assert objs.status("allowed")["phase"] == "Watching"


def test_an_unlabelled_secret_is_never_read_so_its_token_is_never_sent(
    cluster, namespace, run_operator, trap
):
    objs = Objects(cluster.api, namespace)
    objs.create_deployment("app", "registry.local/app:1")
    secret = {"metadata": {"name": "prom-token"}, "stringData": {"token": "leak-me"}}
    objs.core.create_namespaced_secret(namespace, secret)
    ref = {"name": "prom-token", "key": "token"}
    url = f"{trap.url}/ok"
    objs.create_guard(
        "g", minimal(intervalSeconds=1, prometheus={"url": url, "bearerTokenSecretRef": ref})
    )
    run_operator(
        namespace, "--allowed-url", rf"^http://127\.0\.0\.1:{trap.port}/", *EVERY_EVALUATION
    )

    status = wait_reason(objs, "g", "SecretNotLabelled")
    assert "prom-token" in status["message"] and "usable-by-guards" in status["message"]
    assert trap.requests == [], "a request was sent for a guard with an unlabelled Secret"

    # The Secret's owner opts it in: now, and only now, the token goes to the server.
    objs.core.patch_namespaced_secret("prom-token", namespace, {"metadata": {"labels": USABLE}})
    wait_until(
        lambda: any(auth == "Bearer leak-me" for _, auth in list(trap.requests)),
        timeout=60,
        describe=lambda: (trap.requests, objs.status("g")),
    )
    wait_phase(objs, "g", "Watching")


# --------------------------------------------------------------------------- namespaces


def unchanged_by_others(obj: dict[str, Any]) -> Any:
    """What only a writer other than the cluster's controllers changes: the resourceVersion,
    except for a Deployment, whose controller keeps writing its status; for it, its spec,
    generation, labels and annotations (where the operator's action markers would go)."""
    meta = obj["metadata"]
    if obj.get("kind") == "Deployment" or "strategy" in (obj.get("spec") or {}):
        return (meta["generation"], meta.get("labels"), meta.get("annotations"), obj["spec"])
    return meta["resourceVersion"]


def test_a_guard_cannot_reach_objects_in_another_namespace_the_operator_may_write(
    cluster,
    namespace,
    exporter,
    install,  # noqa: F811 (the fixture imported above)
    tmp_path,
    author,
):
    """The operator, as the chart's ServiceAccount, may write in both namespaces; a guard
    in `namespace` naming objects that exist only in the other changes nothing there.
    The admission policy is on in `namespace`: the operator's own updates of the guard
    (Kopf's finalizer) pass it."""
    with extra_namespace(cluster, "other") as other:
        theirs = Objects(cluster.api, other)
        theirs.create_deployment("worker", "registry.local/worker:1")
        theirs.create_config_map("flags", {"f": "on"})
        theirs.create_http_route("route", {"v1": 90, "v2": 10})
        theirs.create_service("svc", {"color": "green"})
        readers = {
            "worker": theirs.deployment,
            "flags": theirs.config_map,
            "route": theirs.http_route,
            "svc": theirs.service,
        }
        before = {n: unchanged_by_others(read(n)) for n, read in readers.items()}

        release = install(namespace, watchNamespaces=[namespace, other])
        release.start_pod(tmp_path, "watching ReleaseGuards in")
        ours = Objects(cluster.api, namespace)
        ours.create_deployment("app", "registry.local/app:1")
        steps = [STEPS[t][0] for t in ("FeatureFlag", "CanaryWeight", "Scale", "BlueGreen")]
        ours.create_guard("g", spec(bad_metric(exporter, namespace), steps))

        status = wait_phase(ours, "g", "Exhausted")
        for missing in ("ConfigMap flags", "HTTPRoute route", "Deployment worker", "Service svc"):
            assert f"{missing} not found" in json.dumps(status), (missing, status)
        assert not status.get("actions"), status["actions"]
        after = {n: unchanged_by_others(read(n)) for n, read in readers.items()}
        assert after == before
        log = release.pods[0].process.log_text()
        assert "Forbidden" not in log and "Traceback" not in log, release.pods[0].process.log_tail()
