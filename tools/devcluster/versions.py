"""Component versions and the binary cache root, in one place.

Every other module asks here which versions to run, so a version bump is a
one-line change. Each default can be overridden through the same environment
variables that ``build-binaries.sh`` reads (K8S_VERSION, ETCD_VERSION,
KWOK_VERSION, RELEASEGUARD_CACHE), so the script and the Python agree about
which cache directory holds the binaries. Keep the defaults below in step with
the ones at the top of ``build-binaries.sh``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

K8S_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
# helm only renders charts/ for the chart test; the cluster does not use it.
HELM_VERSION = "v3.22.0"
# Gateway API standard-channel CRDs (HTTPRoute and friends). v1.4.x supports
# Kubernetes 1.30+; v1.7 needs Go >= 1.27 to even download through `go mod`.
GATEWAY_API_VERSION = "v1.4.1"
# Argo CD's Application CRD only (manifests/crds of the Go module), for spec.gitOps.argoCD.
ARGOCD_VERSION = "v3.5.7"


@dataclass(frozen=True)
class Versions:
    """The versions one cluster runs; recorded in the state so a reuse can detect a bump."""

    kubernetes: str
    etcd: str
    kwok: str
    gateway_api: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Versions:
        env = os.environ if env is None else env
        return cls(
            kubernetes=env.get("K8S_VERSION") or K8S_VERSION,
            etcd=env.get("ETCD_VERSION") or ETCD_VERSION,
            kwok=env.get("KWOK_VERSION") or KWOK_VERSION,
            gateway_api=env.get("GATEWAY_API_VERSION") or GATEWAY_API_VERSION,
        )

    def as_dict(self) -> dict[str, str]:
        return {
            "kubernetes": self.kubernetes,
            "etcd": self.etcd,
            "kwok": self.kwok,
            "gateway_api": self.gateway_api,
        }

    def build_env(self) -> dict[str, str]:
        """The environment that makes build-binaries.sh build exactly these versions."""
        return {
            "K8S_VERSION": self.kubernetes,
            "ETCD_VERSION": self.etcd,
            "KWOK_VERSION": self.kwok,
        }


def helm_binary(env: Mapping[str, str] | None = None) -> Path:
    """Where build-binaries.sh puts helm."""
    env = os.environ if env is None else env
    version = env.get("HELM_VERSION") or HELM_VERSION
    return cache_root(env) / "bin" / f"helm-{version}" / "helm"


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """$RELEASEGUARD_CACHE, else ~/.cache/releaseguard (the same rule as build-binaries.sh)."""
    env = os.environ if env is None else env
    value = env.get("RELEASEGUARD_CACHE")
    return Path(value).expanduser() if value else Path.home() / ".cache" / "releaseguard"
