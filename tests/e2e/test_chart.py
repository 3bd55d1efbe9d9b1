"""The Helm chart: what it renders, what it grants, and that it installs, upgrades and
uninstalls for real.

- Rendering tests run `helm template`/`helm lint`/`helm package` only; they need no
  cluster.
- RBAC tests apply the rendered ServiceAccount and roles to the RBAC-enforcing API
  server, then ask it (`kubectl auth can-i`) or run the operator with that
  ServiceAccount's token through a whole containment.
- Install tests `helm install` into fresh namespaces of the local cluster; kwok makes
  the Pods Ready although the image does not exist, so `--wait` means what it says for
  everything but the operator process itself (tests/e2e/test_install.py runs that).

The CRD releaseguards.releaseguard.io is shared by every test running in parallel.
Installs leave it alone (crds.install=false) except in the two tests that let a release
own it: they run one at a time, change nothing but a printer column's description, and
put crds/releaseguard.yaml back (chart.crd_owned_by_a_release).
"""

from __future__ import annotations

import copy
import io
import json
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart import (
    CHART,
    REPO_CRD,
    crd_owned_by_a_release,
    helm,
    helm_result,
    live_crd,
    of_kind,
    one,
    render,
    token_kubeconfig,
)
from test_containment import breaching_canary_guard, wait_phase

from conftest import extra_namespace

# A release namespace for the rendering tests (they create nothing).
RELEASE_NS = "rg-system"
# What the operator is allowed in a namespace it watches: chart 0.1.0's ClusterRole
# (least privilege already; see charts/releaseguard/templates/_helpers.tpl) without its
# two cluster-scoped reads.
NAMESPACED_RULES = [
    {
        "apiGroups": ["releaseguard.io"],
        "resources": ["releaseguards"],
        "verbs": ["get", "list", "watch", "patch", "update"],
    },
    {
        "apiGroups": ["releaseguard.io"],
        "resources": ["releaseguards/status"],
        "verbs": ["get", "patch", "update"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    {
        "apiGroups": ["apps"],
        "resources": ["deployments"],
        "verbs": ["get", "list", "watch", "update", "patch"],
    },
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": [""],
        "resources": ["configmaps", "services"],
        "verbs": ["get", "update", "patch"],
    },
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get"]},
    {
        "apiGroups": ["gateway.networking.k8s.io"],
        "resources": ["httproutes"],
        "verbs": ["get", "update", "patch"],
    },
]
CLUSTER_RULES = [
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["list", "watch"],
    },
]
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
POLICY_KINDS = ("validatingadmissionpolicy", "validatingadmissionpolicybinding")
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/warn-version": "latest",
}
# For installs: kwok readies any image; the CRD stays the cluster's (see the docstring).
# The admission policy is installed but bound to no namespace of other tests: it would
# check every guard of the shared cluster (tests/e2e/test_security.py tests it).
INSTALL_VALUES: dict[str, Any] = {
    "image": {"repository": "registry.local/releaseguard", "tag": "test"},
    "crds": {"install": False},
    "admissionPolicy": {
        "namespaceSelector": {"matchLabels": {"releaseguard.dev/chart-install-policy": "true"}}
    },
}
HELM_WAIT = ("--wait", "--timeout", "150s")
HELM_TIMEOUT = 200.0


def operator_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def fullname(docs: list[dict[str, Any]]) -> str:
    return one(docs, "Deployment")["metadata"]["name"]


def restrict(cluster: Any, namespace: str) -> None:
    """Enforce (and warn about) the `restricted` Pod Security Standard in ``namespace``."""
    labels = [f"{k}={v}" for k, v in RESTRICTED.items()]
    cluster.kubectl("label", "namespace", namespace, *labels, "--overwrite")


def can_i(cluster: Any, account: str, *args: str) -> bool:
    result = cluster.kubectl("auth", "can-i", *args, f"--as={account}", check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl auth can-i {args}: {result.stdout}{result.stderr}"
    return answer == "yes"


def delete_cluster_scoped(cluster: Any, docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            name = doc["metadata"]["name"]
            cluster.kubectl("delete", doc["kind"].lower(), name, "--ignore-not-found")


# --------------------------------------------------------------------------- rendering


def test_the_chart_renders_the_operator_for_the_watched_namespace():
    docs = render("rg-render", RELEASE_NS, {"watchNamespaces": ["team-a"]})
    assert sorted(d["kind"] for d in docs) == sorted(
        [
            "CustomResourceDefinition",
            "ServiceAccount",
            "Role",  # in team-a
            "RoleBinding",
            "Role",  # the Lease, in the release namespace
            "RoleBinding",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ]
    )
    name = fullname(docs)
    assert name == "rg-render-releaseguard"
    container = operator_container(docs)
    assert container["args"] == [
        "run",
        "--namespace=team-a",
        "--leader-election",
        f"--leader-election-name={name}",
    ]
    env = {e["name"]: e for e in container["env"]}
    assert env["RELEASEGUARD_PROMETHEUS_URL"]["value"].startswith("http://")
    assert env["RELEASEGUARD_ALLOWED_URLS"]["value"] == "^https://"
    assert env["RELEASEGUARD_STATUS_HEARTBEAT"]["value"] == "60"
    assert env["RELEASEGUARD_METRICS_PORT"]["value"] == "8080"
    assert env["RELEASEGUARD_HEALTH_PORT"]["value"] == "8081"
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_default_values_watch_every_namespace_with_two_replicas_and_one_leader():
    docs = render("releaseguard", RELEASE_NS)
    deployment = one(docs, "Deployment")
    assert deployment["metadata"]["name"] == "releaseguard"  # the release name says it
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert operator_container(docs)["args"] == [
        "run",
        "--all-namespaces",
        "--leader-election",
        "--leader-election-name=releaseguard",
    ]
    assert one(docs, "ClusterRole")["rules"] == NAMESPACED_RULES + CLUSTER_RULES
    binding = one(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "releaseguard", "namespace": RELEASE_NS}
    ]
    assert one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    lease_role = one(docs, "Role")
    assert lease_role["metadata"]["namespace"] == RELEASE_NS
    assert lease_role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["releaseguard"],
            "verbs": ["get", "update"],
        },
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]


def test_one_replica_without_leader_election_is_recreated_not_rolled():
    docs = render("rg", RELEASE_NS, {"replicas": 1, "leaderElection": {"enabled": False}})
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert operator_container(docs)["args"] == ["run", "--all-namespaces"]
    assert of_kind(docs, "Role") == []
    assert one(docs, "PodDisruptionBudget")["spec"] == {
        "maxUnavailable": 1,
        "selector": deployment["spec"]["selector"],
    }


def test_cluster_scoped_names_are_qualified_by_release_namespace_and_name():
    """The same release name in two namespaces, both watching every namespace or both
    watching one namespace: no two ClusterRoles, ClusterRoleBindings or Roles in
    `shared` may share a name."""
    values = {"watchNamespaces": ["shared"]}
    a = render("releaseguard", "team-a") + render("releaseguard", "team-a", values)
    b = render("releaseguard", "team-b") + render("releaseguard", "team-b", values)

    def names(docs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
        return {
            (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])
            for d in docs
            if d["kind"] in ("ClusterRole", "ClusterRoleBinding")
            or d["metadata"].get("namespace") == "shared"
        }

    assert names(a).isdisjoint(names(b)), (names(a), names(b))
    assert one(a, "ClusterRole")["metadata"]["name"] == "team-a:releaseguard"
    # Admission policies take DNS-subdomain names, without ":".
    policies = {d["metadata"]["name"] for d in a + b if d["kind"].startswith("ValidatingAdmission")}
    assert policies == {"team-a.releaseguard", "team-b.releaseguard"}
    shared_role = next(r for r in of_kind(a, "Role") if r["metadata"]["namespace"] == "shared")
    assert shared_role["metadata"]["name"] == "team-a:releaseguard"


def test_the_admission_policy_binds_every_namespace_by_default_and_can_be_turned_off():
    docs = render("rg", RELEASE_NS)
    policy = one(docs, "ValidatingAdmissionPolicy")
    binding = one(docs, "ValidatingAdmissionPolicyBinding")
    assert (
        policy["metadata"]["name"]
        == binding["spec"]["policyName"]
        == f"{RELEASE_NS}.rg-releaseguard"
    )
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["matchResources"]["namespaceSelector"] == {}
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert not any("$" in v["expression"] for v in policy["spec"]["validations"])
    off = render("rg", RELEASE_NS, {"admissionPolicy": {"enabled": False}})
    assert not [d for d in off if d["kind"].startswith("ValidatingAdmission")]


def test_the_pod_is_locked_down_and_probed_on_its_health_port():
    docs = render("rg", RELEASE_NS)
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]
    spec = pod["spec"]
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = spec["containers"][0]
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "8080"

    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    service = one(docs, "Service")
    assert service["spec"]["selector"] == selector
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    anti = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert anti[0]["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector


def test_the_crd_is_the_repositorys_and_is_kept_on_uninstall():
    crd = one(render("rg", RELEASE_NS), "CustomResourceDefinition")
    repo_crd = yaml.safe_load(REPO_CRD.read_text())
    assert crd["spec"] == repo_crd["spec"]
    assert crd["metadata"]["name"] == repo_crd["metadata"]["name"]
    assert repo_crd["metadata"]["labels"].items() <= crd["metadata"]["labels"].items()
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_crds_install_false_leaves_the_crd_to_the_user():
    docs = render("rg", RELEASE_NS, {"crds": {"install": False}})
    assert of_kind(docs, "CustomResourceDefinition") == []


# Values helm must refuse, and what its message must name (the schema's JSON pointer,
# or the chart's own `fail` message).
WRONG_VALUES = [
    (["--set", "replicas=two"], "'/replicas'"),
    (["--set", "watchNamespaces=team-a"], "'/watchNamespaces'"),  # a string, not a list
    (["--set", "watchNamespaces={Team_A}"], "'/watchNamespaces/0'"),  # not a DNS label
    (["--set", "watchNamespaces={a,a}"], "'/watchNamespaces'"),  # twice: two Roles, one name
    (["--set-string", "leaderElection.enabled=yes"], "'/leaderElection/enabled'"),
    (["--set", "healthPort=70000"], "'/healthPort'"),
    (["--set", "prometheusUrl=prometheus:9090"], "'/prometheusUrl'"),
    (["--set", "replica=3"], "'replica' not allowed"),  # a typo of an existing key
    (["--set", "replicas=3,leaderElection.enabled=false"], "needs leaderElection.enabled"),
    (["--set", "healthPort=8080"], "metricsPort and healthPort must differ"),
]


@pytest.mark.parametrize(("args", "message"), WRONG_VALUES)
def test_helm_template_refuses_wrong_values_with_a_message_naming_them(args, message):
    result = helm_result("template", "rg", str(CHART), "--namespace", RELEASE_NS, *args)
    assert result.returncode != 0, f"helm template {args} succeeded:\n{result.stdout[:2000]}"
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize(("args", "message"), WRONG_VALUES)
def test_helm_install_refuses_wrong_values_and_installs_nothing(cluster, namespace, args, message):
    kube = ("--kubeconfig", str(cluster.kubeconfig), "--namespace", namespace)
    result = helm_result("install", "rg", str(CHART), *kube, *args)
    assert result.returncode != 0, f"helm install {args} succeeded:\n{result.stdout[:2000]}"
    assert message in result.stderr, result.stderr
    releases = helm("list", *kube, "--all", "--short")
    assert releases.strip() == "", releases


def test_right_values_of_the_same_keys_render():
    """The control for the test above: the same keys with good values pass."""
    docs = render(
        "rg",
        RELEASE_NS,
        {
            "replicas": 3,
            "watchNamespaces": ["team-a", "team-b"],
            "leaderElection": {"enabled": True},
            "healthPort": 9000,
            "prometheusUrl": "https://prometheus.example:9090",
        },
    )
    assert one(docs, "Deployment")["spec"]["replicas"] == 3
    assert sorted(r["metadata"]["namespace"] for r in of_kind(docs, "Role")) == [
        RELEASE_NS,
        "team-a",
        "team-b",
    ]


@pytest.mark.parametrize("values", [[], ["--set", "watchNamespaces={team-a,team-b}"]])
def test_helm_lint_is_clean(values):
    result = helm_result("lint", "--strict", str(CHART), *values)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "0 chart(s) failed" in output, output
    assert "[WARNING]" not in output and "[ERROR]" not in output, output


def test_the_packaged_chart_carries_the_crd_file_itself(tmp_path):
    """files/releaseguard.yaml is a symlink to crds/releaseguard.yaml; a packaged chart
    must hold the file's content, not a link that points out of the archive."""
    helm("package", str(CHART), "--destination", str(tmp_path))
    (archive,) = tmp_path.glob("releaseguard-*.tgz")
    with tarfile.open(archive) as tar:
        member = tar.getmember("releaseguard/files/releaseguard.yaml")
        assert member.isfile(), f"{member.name} is not a regular file (type {member.type!r})"
        content = tar.extractfile(member)
        assert content is not None
        assert content.read() == REPO_CRD.read_bytes()
    out = helm("template", "rg", str(archive), "--namespace", RELEASE_NS)
    crd = one([d for d in yaml.safe_load_all(out) if d], "CustomResourceDefinition")
    assert crd["spec"] == yaml.safe_load(REPO_CRD.read_text())["spec"]


# --------------------------------------------------------------------------- on the cluster


def dry_run(cluster: Any, obj: Mapping[str, Any]) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(dict(obj)), check=False
    )


def test_the_deployment_passes_the_restricted_pod_security_standard(cluster, namespace):
    """Server-side dry runs in a namespace that enforces and warns about `restricted`:
    the Deployment (PodSecurity warns about workload templates) and a Pod made from its
    template (PodSecurity enforces on Pods). A bare Pod and Deployment are the controls
    that show the namespace really refuses and warns."""
    restrict(cluster, namespace)
    docs = render("rg-pss", namespace)
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(one(docs, "ServiceAccount")))
    deployment = one(docs, "Deployment")
    template = deployment["spec"]["template"]
    from_template = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "pss-operator", "namespace": namespace, **template["metadata"]},
        "spec": template["spec"],
    }
    bare_spec = {"containers": [{"name": "c", "image": "registry.local/app:1"}]}
    bare_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "pss-control", "namespace": namespace},
        "spec": bare_spec,
    }
    bare_deployment = copy.deepcopy(deployment)
    bare_deployment["metadata"]["name"] = "pss-control"
    bare_deployment["spec"]["template"]["spec"] = bare_spec

    refused = dry_run(cluster, bare_pod)
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr, refused
    warned = dry_run(cluster, bare_deployment)
    assert "Warning" in warned.stderr and "restricted" in warned.stderr, warned

    for obj in (deployment, from_template):
        result = dry_run(cluster, obj)
        assert result.returncode == 0, f"{obj['kind']}: {result.stderr}"
        assert "Warning" not in result.stderr, f"{obj['kind']}: {result.stderr}"


def test_watched_namespaces_get_roles_there_and_no_cluster_wide_access(cluster, namespace):
    """The operator in `namespace` watching another namespace: it may read that
    namespace's Secrets (a step's Prometheus credentials) and nothing of the kind
    anywhere else; it may hold its own Lease and nobody else's."""
    with extra_namespace(cluster, f"{namespace}-watched") as watched:
        docs = render("rg", namespace, {"watchNamespaces": [watched]})
        rbac = [d for d in docs if d["kind"] in RBAC_KINDS]
        account = f"system:serviceaccount:{namespace}:{fullname(docs)}"
        lease = f"leases.coordination.k8s.io/{fullname(docs)}"
        try:
            cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rbac))

            def can(*args: str) -> bool:
                return can_i(cluster, account, *args)

            assert can("get", "secrets", "-n", watched)
            assert not can("get", "secrets", "-A")
            assert not can("get", "secrets", "-n", namespace)
            assert can("patch", "releaseguards.releaseguard.io/status", "-n", watched)
            assert can("watch", "deployments.apps", "-n", watched)
            assert not can("list", "releaseguards.releaseguard.io", "-A")
            assert not can("list", "deployments.apps", "-A")
            assert not can("delete", "deployments.apps", "-n", watched)
            assert can("create", "leases.coordination.k8s.io", "-n", namespace)
            assert can("update", lease, "-n", namespace)
            assert not can("update", "leases.coordination.k8s.io/another", "-n", namespace)
            assert not can("create", "leases.coordination.k8s.io", "-n", watched)
            # Nothing cluster-wide: the operator does not scan the cluster then.
            assert of_kind(docs, "ClusterRole") == []
            assert not can("watch", "customresourcedefinitions.apiextensions.k8s.io")
            assert not can("list", "namespaces")
        finally:
            delete_cluster_scoped(cluster, docs)


def test_the_operator_contains_with_only_the_charts_rbac(
    cluster, namespace, exporter, run_operator, tmp_path
):
    """The operator as the chart runs it (its leader-election args and Pod env), with the
    chart's RBAC identity: it takes the Lease and contains a breach, never refused."""
    release = f"rg-{namespace}"[:40].rstrip("-")
    docs = render(release, namespace, {"watchNamespaces": [namespace]})
    account = fullname(docs)
    cluster.kubectl(
        "apply", "-f", "-", input=yaml.safe_dump_all(d for d in docs if d["kind"] in RBAC_KINDS)
    )
    try:
        objs = breaching_canary_guard(cluster, namespace, exporter)
        denied = can_i(
            cluster,
            f"system:serviceaccount:{namespace}:{account}",
            "delete",
            "deployments",
            "-n",
            namespace,
        )
        assert not denied, "the chart must not grant what it does not use"

        # run_operator passes `run --namespace NS` itself; the rest is the chart's.
        args = operator_container(docs)["args"]
        assert args[:2] == ["run", f"--namespace={namespace}"]
        kubeconfig = token_kubeconfig(cluster, namespace, account, tmp_path / "sa.kubeconfig")
        env = {"KUBECONFIG": str(kubeconfig), "POD_NAMESPACE": namespace, "POD_NAME": "rg-0"}
        operator = run_operator(namespace, *args[2:], env=env)

        status = wait_phase(objs, "g", "Contained")
        assert status["actions"][0]["result"] == "Applied"
        objs.wait_event("g", "StepApplied")  # posted with the SA's token
        holder = cluster.kubectl(
            "get", "lease", account, "-n", namespace, "-o", "jsonpath={.spec.holderIdentity}"
        )
        assert holder.stdout.startswith("rg-0"), holder.stdout
        assert "Forbidden" not in operator.log_text(), operator.log_tail()
        assert "403" not in operator.log_text(), operator.log_tail()
        assert "Not enough permissions" not in operator.log_text(), operator.log_tail()
        marker = objs.http_route("checkout")["metadata"]["annotations"]["releaseguard.io/action"]
        assert json.loads(marker)["id"] == "1-canaryweight-0"
    finally:
        delete_cluster_scoped(cluster, docs)


def test_token_kubeconfig_is_not_the_admin(cluster, namespace, tmp_path):
    """Guards the test above: its kubeconfig really is the ServiceAccount, not an admin."""
    docs = render(f"rg-sa-{namespace}"[:40].rstrip("-"), namespace)
    account = one(docs, "ServiceAccount")
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(account))
    name = account["metadata"]["name"]
    path = token_kubeconfig(cluster, namespace, name, tmp_path / "k")
    whoami = cluster.kubectl(f"--kubeconfig={path}", "auth", "whoami", "-o", "json")
    user = json.loads(whoami.stdout)["status"]["userInfo"]["username"]
    assert user == f"system:serviceaccount:{namespace}:{name}"


def test_two_releases_install_side_by_side_in_two_namespaces(cluster, namespace):
    """`helm install` of one release name into two namespaces, both watching every
    namespace (the case with cluster-scoped objects), under the `restricted` Pod Security
    Standard. Both install (no cluster-scoped name collides), their Pods are admitted and
    Ready, each ServiceAccount gets its own grants, and uninstall removes the
    cluster-scoped objects again."""
    release = "releaseguard"  # the same in both: only the namespace tells them apart
    kube = ("--kubeconfig", str(cluster.kubeconfig))
    with extra_namespace(cluster, f"{namespace}-b", RESTRICTED) as other:
        restrict(cluster, namespace)
        installs: dict[str, dict[str, Any]] = {namespace: {}, other: {}}
        try:
            for ns, values in installs.items():
                helm(
                    "install",
                    release,
                    str(CHART),
                    *kube,
                    "--namespace",
                    ns,
                    "--values",
                    "-",
                    *HELM_WAIT,
                    stdin=yaml.safe_dump({**INSTALL_VALUES, **values}),
                    timeout=HELM_TIMEOUT,
                )
            for ns in installs:
                got = cluster.kubectl("get", "deployment", release, "-n", ns, "-o", "json")
                status = json.loads(got.stdout)["status"]
                assert status.get("readyReplicas") == 2, status
                for kind in ("clusterrole", "clusterrolebinding"):
                    cluster.kubectl("get", kind, f"{ns}:{release}")
                for kind in POLICY_KINDS:
                    cluster.kubectl("get", kind, f"{ns}.{release}")

            def account(ns: str) -> str:
                return f"system:serviceaccount:{ns}:{release}"

            for ns in installs:
                assert can_i(cluster, account(ns), "list", "releaseguards.releaseguard.io", "-A")

            for ns in installs:
                helm("uninstall", release, *kube, "--namespace", ns, "--wait", timeout=HELM_TIMEOUT)
                for kind in ("clusterrole", "clusterrolebinding"):
                    gone = cluster.kubectl("get", kind, f"{ns}:{release}", check=False)
                    assert "NotFound" in gone.stderr, gone
                for kind in POLICY_KINDS:
                    gone = cluster.kubectl("get", kind, f"{ns}.{release}", check=False)
                    assert "NotFound" in gone.stderr, gone
        finally:
            for ns in installs:
                helm_result("uninstall", release, *kube, "--namespace", ns, "--ignore-not-found")


# --------------------------------------------------------------------------- CRD upgrades


def target_column(crd: Mapping[str, Any]) -> dict[str, Any]:
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    return next(c for c in columns if c["name"] == "Target")


def test_helm_install_and_upgrade_update_the_crd_and_uninstall_keeps_it(
    cluster, namespace, tmp_path
):
    """The CRD is a template, so Helm changes it on install and upgrade, and leaves it on
    uninstall.

    The real path, on the real (shared) CRD: it already exists without Helm's ownership
    metadata, exactly as after a `kubectl apply` by a platform team, so the release
    adopts it with `--take-ownership` (docs/install.md; Helm >= 3.18 then also applies
    the chart's CRD to the adopted one). The install renders from a copy of the chart
    whose CRD differs only in one printer column's description, a change no other test
    can notice or be hurt by; the upgrade, to the real chart, changes it back. Other
    tests use the CRD meanwhile, so nothing here may make it invalid or drop a field;
    crd_owned_by_a_release puts crds/releaseguard.yaml back and checks it did.
    """
    repo = yaml.safe_load(REPO_CRD.read_text())
    release = f"rg-crd-{uuid.uuid4().hex[:6]}"
    kube = ("--kubeconfig", str(cluster.kubeconfig), "--namespace", namespace)
    values = yaml.safe_dump({**INSTALL_VALUES, "crds": {"install": True}})

    changed = tmp_path / "releaseguard"
    shutil.copytree(CHART, changed, symlinks=False)  # the CRD file's content, not a link
    changed_crd = copy.deepcopy(repo)
    description = f"{target_column(repo)['description']} (upgrade test {release})"
    target_column(changed_crd)["description"] = description
    (changed / "files" / "releaseguard.yaml").write_text(yaml.safe_dump(changed_crd))

    def deploy(command: str, chart: Path, *flags: str) -> None:
        helm(
            command,
            release,
            str(chart),
            *kube,
            *flags,
            "--values",
            "-",
            *HELM_WAIT,
            stdin=values,
            timeout=HELM_TIMEOUT,
        )

    with crd_owned_by_a_release(cluster):
        uid = live_crd(cluster)["metadata"]["uid"]
        try:
            deploy("install", changed, "--take-ownership")
            owned = live_crd(cluster)
            assert owned["metadata"]["annotations"]["meta.helm.sh/release-name"] == release
            assert owned["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
            assert target_column(owned)["description"] == description
            assert owned["spec"]["versions"][0]["schema"] == repo["spec"]["versions"][0]["schema"]

            deploy("upgrade", CHART)
            assert target_column(live_crd(cluster)) == target_column(repo)

            out = helm("uninstall", release, *kube, "--wait", timeout=HELM_TIMEOUT)
            assert "kept due to the resource policy" in out, out
            kept = live_crd(cluster)
            assert kept["metadata"]["uid"] == uid, "the CRD was deleted and created again"
            assert "deletionTimestamp" not in kept["metadata"]
        finally:
            helm_result("uninstall", release, *kube, "--ignore-not-found")


# The last commit that changed chart 0.1.0: the CRD in crds/ (installed once, never
# upgraded, no Helm ownership), objects named after the release, one replica.
CHART_0_1_0 = "8a891a927bd5407a6d715fe4d5eee1de0ec29974"


def chart_0_1_0(repo_root: Path, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(repo_root), "archive", CHART_0_1_0, "charts/releaseguard", "crds"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if archive.returncode != 0:
        pytest.skip(f"chart 0.1.0 is not in this clone (shallow?): {archive.stderr[:300]!r}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into / "charts" / "releaseguard"


def test_upgrading_a_0_1_0_release_takes_over_the_crd_and_renames_its_objects(
    cluster, namespace, repo_root, tmp_path
):
    """The upgrade docs/install.md describes, from a real chart 0.1.0 release: a plain
    `helm upgrade` stops before changing anything, because the CRD that 0.1.0 installed
    from crds/ has no Helm ownership; with `--take-ownership` the release takes the CRD
    and replaces its 0.1.0 objects (named after the release) with the new ones."""
    old = chart_0_1_0(repo_root, tmp_path)
    release = f"rg-old-{uuid.uuid4().hex[:6]}"
    kube = ("--kubeconfig", str(cluster.kubeconfig), "--namespace", namespace)
    image = ("--set", "image.repository=registry.local/releaseguard")
    new = {**INSTALL_VALUES, "crds": {"install": True}}

    with crd_owned_by_a_release(cluster):
        try:
            # 0.1.0 finds the CRD in place and skips it, as on any cluster that has it.
            helm("install", release, str(old), *kube, *image, *HELM_WAIT, timeout=HELM_TIMEOUT)
            refused = helm_result(
                "upgrade", release, str(CHART), *kube, "--values", "-", stdin=yaml.safe_dump(new)
            )
            assert refused.returncode != 0, refused.stdout
            assert "invalid ownership metadata" in refused.stderr, refused.stderr
            assert cluster.kubectl("get", "deployment", release, "-n", namespace).returncode == 0

            helm(
                "upgrade",
                release,
                str(CHART),
                *kube,
                "--take-ownership",
                "--values",
                "-",
                *HELM_WAIT,
                stdin=yaml.safe_dump(new),
                timeout=HELM_TIMEOUT,
            )
            crd = live_crd(cluster)
            assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == release
            deployment = json.loads(
                cluster.kubectl(
                    "get", "deployment", f"{release}-releaseguard", "-n", namespace, "-o", "json"
                ).stdout
            )
            assert deployment["status"].get("readyReplicas") == 2, deployment["status"]
            for kind, name in (
                ("deployment", release),
                ("clusterrole", release),
                ("clusterrolebinding", release),
            ):
                gone = cluster.kubectl("get", kind, name, "-n", namespace, check=False)
                assert "NotFound" in gone.stderr, f"0.1.0's {kind} {name} is left: {gone}"
            cluster.kubectl("get", "clusterrole", f"{namespace}:{release}-releaseguard")
        finally:
            helm_result("uninstall", release, *kube, "--ignore-not-found", "--wait")
            for kind in ("clusterrole", "clusterrolebinding"):  # 0.1.0's, if it failed early
                cluster.kubectl("delete", kind, release, "--ignore-not-found")
