"""The Helm chart's RBAC is enough, and no more than that is assumed: render the chart,
apply its ServiceAccount and roles to the RBAC-enforcing API server, and run the
operator with that ServiceAccount's token through a whole containment."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from test_containment import breaching_canary_guard, wait_phase

from devcluster.versions import helm_binary
from waiting import wait_until

CHART = Path(__file__).resolve().parents[2] / "charts" / "releaseguard"


def render(release: str, namespace: str) -> list[dict]:
    helm = helm_binary()
    if not helm.exists():
        pytest.fail(f"helm missing at {helm}: run `bash tools/devcluster/build-binaries.sh helm`")
    out = subprocess.run(
        [
            str(helm),
            "template",
            release,
            str(CHART),
            "--namespace",
            namespace,
            "--set",
            f"watchNamespaces={{{namespace}}}",
            "--include-crds",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def token_kubeconfig(cluster, namespace: str, account: str, path: Path) -> Path:
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    server = admin["clusters"][0]["cluster"]
    token = cluster.kubectl("create", "token", account, "-n", namespace, "--duration=1h").stdout
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "local", "cluster": server}],
                "users": [{"name": account, "user": {"token": token.strip()}}],
                "contexts": [{"name": "sa", "context": {"cluster": "local", "user": account}}],
                "current-context": "sa",
            }
        )
    )
    return path


def test_the_chart_renders_the_operator_for_the_watched_namespace(namespace):
    docs = render("rg-render", namespace)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        [
            "CustomResourceDefinition",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
        ]
    )
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["run", f"--namespace={namespace}"]
    assert container["env"][0]["name"] == "RELEASEGUARD_PROMETHEUS_URL"
    crd = next(d for d in docs if d["kind"] == "CustomResourceDefinition")
    repo_crd = yaml.safe_load((CHART.parents[1] / "crds" / "releaseguard.yaml").read_text())
    assert crd == repo_crd


def test_the_operator_contains_with_only_the_charts_rbac(
    cluster, namespace, exporter, run_operator, tmp_path
):
    release = f"rg-{namespace}"[:50]
    docs = [
        d
        for d in render(release, namespace)
        if d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")
    ]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    try:
        objs = breaching_canary_guard(cluster, namespace, exporter)
        denied = cluster.kubectl(
            "auth",
            "can-i",
            "delete",
            "deployments",
            "-n",
            namespace,
            f"--as=system:serviceaccount:{namespace}:{release}",
            check=False,
        )
        assert denied.stdout.strip() == "no", "the chart must not grant what it does not use"

        kubeconfig = token_kubeconfig(cluster, namespace, release, tmp_path / "sa.kubeconfig")
        operator = run_operator(namespace, env={"KUBECONFIG": str(kubeconfig)})

        status = wait_phase(objs, "g", "Contained")
        assert status["actions"][0]["result"] == "Applied"
        wait_until(
            lambda: any(e["reason"] == "StepApplied" for e in objs.events("g")),
            timeout=30,
            describe="the StepApplied Event, posted with the SA's token",
        )
        assert "Forbidden" not in operator.log_text(), operator.log_tail()
        assert "403" not in operator.log_text(), operator.log_tail()
        marker = objs.http_route("checkout")["metadata"]["annotations"]["releaseguard.io/action"]
        assert json.loads(marker)["id"] == "1-canaryweight-0"
    finally:
        cluster.kubectl(
            "delete", "clusterrole,clusterrolebinding", release, "--ignore-not-found", check=False
        )


def test_token_kubeconfig_is_not_the_admin(cluster, namespace, tmp_path):
    """Guards the test above: its kubeconfig really is the ServiceAccount, not an admin."""
    release = f"rg-sa-{namespace}"[:50]
    docs = [d for d in render(release, namespace) if d["kind"] == "ServiceAccount"]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    path = token_kubeconfig(cluster, namespace, release, tmp_path / "k")
    whoami = cluster.kubectl(f"--kubeconfig={path}", "auth", "whoami", "-o", "json")
    name = json.loads(whoami.stdout)["status"]["userInfo"]["username"]
    assert name == f"system:serviceaccount:{namespace}:{release}"
