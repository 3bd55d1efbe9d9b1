"""Shared pytest setup for every test layer: repository paths and common fixtures.

Cluster-specific fixtures live in tests/e2e/conftest.py so unit tests never
import or start anything heavy. Helpers are plain modules (``waiting``,
``exporter``) importable because pytest's pythonpath includes ``tests``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (where .devcluster/ and crds/ live)."""
    return REPO_ROOT
