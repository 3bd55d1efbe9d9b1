"""Render the Helm chart the way a user installs it, and act as its ServiceAccount.

Shared by the chart tests (what the chart renders and grants) and the install tests
(the operator started with exactly the rendered args, env and RBAC identity). Also
what a test needs to let a release own the CRD that every test shares
(crd_owned_by_a_release); installs that need not should set crds.install=false.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster.versions import helm_binary
from waiting import wait_until

CHART = Path(__file__).resolve().parents[2] / "charts" / "releaseguard"


def helm(*args: str, stdin: str | None = None, timeout: float = 120) -> str:
    """Run the built helm; its stdout. Fails the test (with its output) on a non-zero exit."""
    result = helm_result(*args, stdin=stdin, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def helm_result(
    *args: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the built helm and return its result whatever the exit code (for the tests
    that expect helm to refuse something)."""
    binary = helm_binary()
    if not binary.exists():
        pytest.fail(f"helm missing at {binary}: run `bash tools/devcluster/build-binaries.sh helm`")
    return subprocess.run(
        [str(binary), *args], input=stdin, capture_output=True, text=True, timeout=timeout
    )


def render(
    release: str,
    namespace: str,
    values: Mapping[str, Any] | None = None,
    extra: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The chart's objects as `helm template` renders them with these values."""
    args = ["template", release, str(CHART), "--namespace", namespace, *extra]
    if values:
        args += ["--values", "-"]
    out = helm(*args, stdin=yaml.safe_dump(dict(values)) if values else None)
    return [doc for doc in yaml.safe_load_all(out) if doc]


def token_kubeconfig(cluster: Any, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as ServiceAccount `namespace/account` (a token)."""
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


def of_kind(docs: Sequence[Mapping[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The rendered objects of one kind, in rendering order."""
    return [dict(d) for d in docs if d["kind"] == kind]


def one(docs: Sequence[Mapping[str, Any]], kind: str) -> dict[str, Any]:
    """The only rendered object of ``kind`` (fails the test if there are none or several)."""
    found = of_kind(docs, kind)
    if len(found) != 1:
        pytest.fail(f"expected one {kind}, rendered {len(found)}: {[d['metadata'] for d in found]}")
    return found[0]


# --------------------------------------------------------------------------- the shared CRD

REPO_CRD = CHART.parents[1] / "crds" / "releaseguard.yaml"
CRD_NAME = "releaseguards.releaseguard.io"
CRD_LOCK_TIMEOUT = 300.0


def live_crd(cluster: Any) -> dict[str, Any]:
    """The cluster's ReleaseGuard CRD."""
    return json.loads(cluster.kubectl("get", "crd", CRD_NAME, "-o", "json").stdout)


def crd_differences(live: Mapping[str, Any], repo: Mapping[str, Any]) -> list[str]:
    """How the cluster's CRD differs from crds/releaseguard.yaml, in what that file sets
    (the API server adds defaults, such as spec.conversion, that the file leaves out)."""
    diffs = [f"spec.{k}" for k in ("group", "names", "scope") if live["spec"][k] != repo["spec"][k]]
    if len(live["spec"]["versions"]) != len(repo["spec"]["versions"]):
        diffs.append("spec.versions (count)")
    for got, want in zip(live["spec"]["versions"], repo["spec"]["versions"], strict=False):
        diffs += [f"spec.versions[{want['name']}].{k}" for k, v in want.items() if got.get(k) != v]
    for field in ("labels", "annotations"):
        if (live["metadata"].get(field) or {}) != (repo["metadata"].get(field) or {}):
            diffs.append(f"metadata.{field}: {live['metadata'].get(field)}")
    return diffs


def restore_crd(cluster: Any) -> None:
    """Put crds/releaseguard.yaml back: the spec by server-side apply (as devcluster
    applies it; spec.versions is an atomic list, so it is replaced whole), and the labels
    and annotations that Helm and the chart added removed."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_CRD))
    repo = yaml.safe_load(REPO_CRD.read_text())["metadata"]
    live = live_crd(cluster)["metadata"]
    for field, verb in (("labels", "label"), ("annotations", "annotate")):
        extra = [f"{k}-" for k in live.get(field) or {} if k not in (repo.get(field) or {})]
        if extra:
            cluster.kubectl(verb, "crd", CRD_NAME, *extra)


@contextmanager
def crd_owned_by_a_release(cluster: Any) -> Iterator[None]:
    """For a test that lets a Helm release own the CRD every test shares.

    One such test at a time (a file lock, across pytest-xdist workers: `--take-ownership`
    would take the CRD from another test's release), and afterwards the CRD is
    crds/releaseguard.yaml again, or the test fails. Tests that only need the CRD to
    exist install with `crds.install=false` and need none of this.
    """
    path = Path(cluster.log_dir).parent / "chart-crd-owner.lock"
    with path.open("a") as lock:

        def acquired() -> bool:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        wait_until(acquired, timeout=CRD_LOCK_TIMEOUT, interval=0.5, describe=f"lock {path}")
        try:
            repo = yaml.safe_load(REPO_CRD.read_text())
            before = crd_differences(live_crd(cluster), repo)
            assert before == [], f"the cluster's CRD is not crds/releaseguard.yaml: {before}"
            try:
                yield
            finally:
                restore_crd(cluster)
            after = crd_differences(live_crd(cluster), repo)
            assert after == [], f"the CRD was not restored: {after}"
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
