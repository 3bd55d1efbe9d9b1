"""CustomResourceDefinitions every cluster gets: Gateway API, Argo CD's Application
and the repo's own.

The Gateway API standard channel (HTTPRoute et al.) comes from the Go module
``sigs.k8s.io/gateway-api``, downloaded once with ``go mod download`` and
cached as a single YAML file under $RELEASEGUARD_CACHE, so later cold starts
need neither Go nor the network. The repository's ``crds/`` folder is applied
on every ``up`` whose content digest changed, so an edited CRD reaches a
reused cluster too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from devcluster.errors import DevclusterError
from devcluster.probes import ApiClient, poll

GATEWAY_MODULE = "sigs.k8s.io/gateway-api"
GATEWAY_CRD_DIR = "config/crd/standard"
ARGOCD_MODULE = "github.com/argoproj/argo-cd/v3"
ARGOCD_CRD = "manifests/crds/application-crd.yaml"
CRD_PREFIX = "customresourcedefinition.apiextensions.k8s.io/"
KUBECTL_TIMEOUT = 120.0


def gateway_api_crds(cache: Path, version: str) -> Path:
    """The cached standard-channel CRDs of ``version`` (fetched with ``go`` on first use)."""
    target = cache / "gateway-api" / version / "standard-crds.yaml"
    if target.is_file():
        return target
    docs = _gateway_documents(version)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(f"---\n{doc.strip()}\n" for doc in docs))
    tmp.replace(target)
    return target


def _go_mod_download(what: str, module: str, version: str) -> dict[str, str]:
    """`go mod download -json module@version` (from the module proxy, into Go's module
    cache), outside any go.mod: its JSON answer, with Dir or Zip. Raises when it failed."""
    go = shutil.which("go")
    if go is None:
        raise DevclusterError(f"{what}: `go` is needed once to download {module}@{version}")
    env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-mod=mod")
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run(
            [go, "mod", "download", "-json", f"{module}@{version}"],
            capture_output=True,
            text=True,
            cwd=scratch,
            env=env,
            timeout=300,
            check=False,
        )
    try:
        info = json.loads(result.stdout)
    except json.JSONDecodeError:
        info = {}
    if not isinstance(info, dict) or not (info.get("Dir") or info.get("Zip")):
        raise DevclusterError(
            f"{what}: `go mod download {module}@{version}` failed:\n{result.stdout}{result.stderr}"
        )
    return info


def _gateway_documents(version: str) -> list[str]:
    info = _go_mod_download("gateway-api", GATEWAY_MODULE, version)
    if info.get("Dir"):
        files = sorted((Path(info["Dir"]) / GATEWAY_CRD_DIR).glob("*.yaml"))
        docs = [path.read_text() for path in files]
    elif info.get("Zip"):  # e.g. the module's go directive is newer than our toolchain
        prefix = f"{GATEWAY_MODULE}@{version}/{GATEWAY_CRD_DIR}/"
        with zipfile.ZipFile(info["Zip"]) as archive:
            names = sorted(
                n
                for n in archive.namelist()
                if n.startswith(prefix) and n.endswith(".yaml") and "/" not in n[len(prefix) :]
            )
            docs = [archive.read(n).decode() for n in names]
    else:
        raise DevclusterError(f"gateway-api: `go mod download` gave no Dir or Zip: {info}")
    if not docs:
        raise DevclusterError(f"gateway-api: no CRDs under {GATEWAY_CRD_DIR} in {version}")
    return docs


def argocd_application_crd(cache: Path, version: str) -> Path:
    """Argo CD's real Application CRD of ``version``, from the Go module's manifests
    (fetched with ``go`` on first use, cached as one file): tests of spec.gitOps.argoCD
    patch real Applications. Argo CD's controllers do not run here."""
    target = cache / "argo-cd" / version / "application-crd.yaml"
    if target.is_file():
        return target
    info = _go_mod_download("argo-cd", ARGOCD_MODULE, version)
    if info.get("Dir") and (Path(info["Dir"]) / ARGOCD_CRD).is_file():
        text = (Path(info["Dir"]) / ARGOCD_CRD).read_text()
    elif info.get("Zip"):
        with zipfile.ZipFile(info["Zip"]) as archive:
            text = archive.read(f"{ARGOCD_MODULE}@{version}/{ARGOCD_CRD}").decode()
    else:
        raise DevclusterError(f"argo-cd: `go mod download` gave no Dir or Zip: {info}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(target)
    return target


def repo_crd_files(crds_dir: Path) -> list[Path]:
    if not crds_dir.is_dir():
        return []
    return sorted(p for p in crds_dir.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def digest(files: Sequence[Path]) -> str:
    """Content digest of ``files`` (names and bytes), to notice edits."""
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def apply(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], files: Sequence[Path]
) -> list[str]:
    """Server-side apply ``files``; returns the names of the CRDs among the applied objects."""
    args = ["apply", "--server-side", "--force-conflicts", "-o", "name"]
    for path in files:
        args += ["-f", str(path)]
    try:
        result = kubectl(*args)
    except DevclusterError as error:
        raise DevclusterError(f"applying CRDs failed: {error}") from None
    return [
        line.strip()[len(CRD_PREFIX) :]
        for line in result.stdout.splitlines()
        if line.strip().startswith(CRD_PREFIX)
    ]


def wait_established(api: ApiClient, names: Sequence[str], timeout: float) -> None:
    """Poll until every named CRD has condition Established=True."""
    for name in names:

        def established(name: str = name) -> tuple[bool, object]:
            ok, crd = api.get_object(
                f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
            )
            if not ok:
                return False, crd
            conditions = crd.get("status", {}).get("conditions", [])
            done = any(
                c.get("type") == "Established" and c.get("status") == "True" for c in conditions
            )
            return done, conditions

        poll(established, what=f"CRD {name} Established", timeout=timeout)
