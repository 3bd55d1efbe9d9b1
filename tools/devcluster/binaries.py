"""Locate the executables a cluster needs, and say how to get the missing ones.

The Go-built binaries live in the per-machine cache that build-binaries.sh
fills, one directory per component and version, valid only once its
``.complete`` marker exists. Prometheus and openssl come from the system.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from devcluster.errors import MissingBinaryError
from devcluster.versions import Versions, cache_root

PROMETHEUS_CANDIDATES = ("/usr/bin/prometheus",)
BUILD_SCRIPT = "tools/devcluster/build-binaries.sh"


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of every executable and data file the cluster runs."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    kwok: Path
    kwok_stages: tuple[Path, ...]
    prometheus: Path
    openssl: Path


def _component_dir(cache: Path, component: str, version: str, versions: Versions) -> Path:
    directory = cache / "bin" / f"{component}-{version}"
    if not (directory / ".complete").is_file():
        env = " ".join(f"{k}={v}" for k, v in versions.build_env().items())
        raise MissingBinaryError(
            f"{component} {version} is not built: {directory}/.complete is missing.\n"
            f"  build it with: {env} bash {BUILD_SCRIPT} {component}"
        )
    return directory


def _executable(path: Path, component: str) -> Path:
    if not path.is_file():
        raise MissingBinaryError(f"{component}: {path} is missing although .complete exists")
    return path


def _system(name: str, candidates: tuple[str, ...], hint: str) -> Path:
    for candidate in candidates:
        if Path(candidate).is_file():
            return Path(candidate)
    found = shutil.which(name)
    if found:
        return Path(found)
    raise MissingBinaryError(f"{name} not found; {hint}")


def find_binaries(versions: Versions, cache: Path | None = None) -> Binaries:
    """Every binary, or a MissingBinaryError naming what is missing and how to build it."""
    cache = cache_root() if cache is None else cache
    k8s = _component_dir(cache, "kubernetes", versions.kubernetes, versions)
    etcd = _component_dir(cache, "etcd", versions.etcd, versions)
    kwok = _component_dir(cache, "kwok", versions.kwok, versions)
    stages = tuple(sorted((kwok / "stages").glob("*.yaml")))
    if not stages:
        raise MissingBinaryError(f"kwok: no stage files in {kwok / 'stages'}; rebuild kwok")
    return Binaries(
        etcd=_executable(etcd / "etcd", "etcd"),
        kube_apiserver=_executable(k8s / "kube-apiserver", "kube-apiserver"),
        kube_controller_manager=_executable(
            k8s / "kube-controller-manager", "kube-controller-manager"
        ),
        kube_scheduler=_executable(k8s / "kube-scheduler", "kube-scheduler"),
        kubectl=_executable(k8s / "kubectl", "kubectl"),
        kwok=_executable(kwok / "kwok", "kwok"),
        kwok_stages=stages,
        prometheus=_system(
            "prometheus",
            PROMETHEUS_CANDIDATES,
            "install it with: apt-get install -y --no-install-recommends prometheus "
            "(or `make prometheus`)",
        ),
        openssl=_system("openssl", (), "install it with: apt-get install -y openssl"),
    )
