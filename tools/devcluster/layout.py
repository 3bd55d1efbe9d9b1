"""Where a cluster keeps its runtime state: the ``.devcluster/`` directory.

All paths live here so that ``up``, ``down``, ``status`` and the pytest
fixtures agree on them. Everything under ``.devcluster/`` is throwaway except
``logs/`` (kept after ``down`` for post-mortems) and ``.lock`` (kept because
other processes may hold or wait on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STATE_DIR_NAME = ".devcluster"


@dataclass(frozen=True)
class Layout:
    """The paths of one cluster's runtime state below ``root`` (the repository root)."""

    root: Path

    @classmethod
    def for_root(cls, root: Path) -> Layout:
        return cls(root=root.resolve())

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR_NAME

    @property
    def lock_file(self) -> Path:
        return self.state_dir / ".lock"

    @property
    def state_file(self) -> Path:
        """JSON record of the running components: pids, ports, versions."""
        return self.state_dir / "state.json"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def log(self, component: str) -> Path:
        return self.log_dir / f"{component}.log"

    @property
    def pki_dir(self) -> Path:
        return self.state_dir / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def etcd_data(self) -> Path:
        return self.state_dir / "etcd"

    @property
    def kwok_dir(self) -> Path:
        return self.state_dir / "kwok"

    @property
    def prometheus_dir(self) -> Path:
        return self.state_dir / "prometheus"

    @property
    def prometheus_config(self) -> Path:
        return self.prometheus_dir / "prometheus.yml"

    @property
    def prometheus_data(self) -> Path:
        return self.prometheus_dir / "data"

    @property
    def targets_dir(self) -> Path:
        """file_sd directory: drop ``<name>.json`` here and Prometheus scrapes it within ~1 s."""
        return self.prometheus_dir / "targets"

    @property
    def prometheus_url_file(self) -> Path:
        return self.state_dir / "prometheus.url"

    @property
    def env_file(self) -> Path:
        """``export KUBECONFIG=... PROMETHEUS_URL=...`` for humans (``source .devcluster/env``)."""
        return self.state_dir / "env"

    @property
    def crds_dir(self) -> Path:
        """The repository's own CRDs, applied on every ``up``."""
        return self.root / "crds"

    def runtime_entries(self) -> list[Path]:
        """Everything ``down`` removes: all of the state dir except logs and the lock."""
        if not self.state_dir.is_dir():
            return []
        keep = {self.log_dir.name, self.lock_file.name}
        return sorted(p for p in self.state_dir.iterdir() if p.name not in keep)
