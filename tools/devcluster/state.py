"""The persisted record of a running cluster, and the lock that guards it.

``state.json`` is what lets a later ``up`` reuse the cluster, ``down`` stop
it, and ``status`` describe it, from any process. The exclusive flock on
``.devcluster/.lock`` makes check-and-start atomic, so several pytest-xdist
workers can call ``up`` at once and exactly one of them starts the cluster.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from devcluster.errors import DevclusterError
from devcluster.layout import Layout

LOCK_TIMEOUT = 900.0  # a cold start takes well under a minute; this only catches a hung holder
STATE_FORMAT = 1


@dataclass(frozen=True)
class ComponentRecord:
    """One running component: its process identity, ports and log."""

    name: str
    pid: int
    start_ticks: int
    ports: dict[str, int]
    log: str
    argv: list[str]


@dataclass
class ClusterState:
    """Everything ``state.json`` holds."""

    root: str
    versions: dict[str, str]
    components: dict[str, ComponentRecord]
    apiserver_url: str = ""
    prometheus_url: str = ""
    alertmanager_url: str = ""  # "" when prometheus-alertmanager is not installed
    kubectl: str = ""
    crds_digest: str = ""
    started_at: float = field(default_factory=time.time)
    startup_seconds: float = 0.0
    format: int = STATE_FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ClusterState:
        data: dict[str, Any] = json.loads(text)
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"unknown state format {data.get('format')!r}")
        data["components"] = {
            name: ComponentRecord(**record) for name, record in data["components"].items()
        }
        return cls(**data)


def load_state(layout: Layout) -> ClusterState | None:
    """The recorded state, or None when there is none (or it is unreadable)."""
    try:
        return ClusterState.from_json(layout.state_file.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError) as error:
        print(f"devcluster: ignoring unreadable {layout.state_file}: {error}", file=sys.stderr)
        return None


def save_state(layout: Layout, state: ClusterState) -> None:
    """Write state.json atomically (readers never see a partial file)."""
    tmp = layout.state_file.with_name(layout.state_file.name + ".tmp")
    tmp.write_text(state.to_json())
    tmp.replace(layout.state_file)


@contextmanager
def exclusive_lock(layout: Layout, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold an exclusive flock on ``.devcluster/.lock`` (waiting up to ``timeout``)."""
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(
                f"devcluster: waiting for another devcluster command ({layout.lock_file})",
                file=sys.stderr,
            )
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise DevclusterError(
                            f"lock {layout.lock_file} still held after {timeout:.0f}s"
                        ) from None
                    time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
