"""The same kind of check on a real kind cluster (Docker), for when kwok is not enough.

pytest-kind's ``kind_cluster`` fixture creates the cluster; it is only
requested once Docker and the kind binary are known to work, otherwise the
test is skipped with the reason.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

pytestmark = pytest.mark.kind

DOCKER_INFO_TIMEOUT = 10


def kind_unavailable_reason() -> str | None:
    """Why kind cannot run here, or None when Docker and kind are usable."""
    docker = shutil.which("docker")
    if docker is None:
        return "Docker engine not reachable (docker CLI not found)"
    try:
        result = subprocess.run(
            [docker, "info"], capture_output=True, text=True, timeout=DOCKER_INFO_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        return f"Docker engine not reachable (`docker info` timed out after {DOCKER_INFO_TIMEOUT}s)"
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"Docker engine not reachable ({detail})"
    if shutil.which("kind") is None:
        return "kind binary not found on PATH"
    return None


@pytest.fixture(scope="session")
def kind_usable() -> None:
    reason = kind_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def kind_cluster(kind_usable: None, kind_cluster):
    """pytest-kind's fixture, requested only after ``kind_usable`` passed."""
    return kind_cluster


def test_kind_cluster_has_a_ready_node(kind_cluster) -> None:
    ready = "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}"
    out = kind_cluster.kubectl("get", "nodes", "-o", ready)
    assert "True" in out.split()
