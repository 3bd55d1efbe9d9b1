"""Prometheus for the tests: a 1 s scrape of whatever targets the tests register.

Tests register an exporter by writing ``<targets_dir>/<name>.json`` (file-based
service discovery re-read every second); nothing else is scraped, so queries
see only what the tests put there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from devcluster.layout import Layout

JOB_NAME = "devcluster"


def config_text(targets_dir: Path) -> str:
    """prometheus.yml (JSON is valid YAML)."""
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": JOB_NAME,
                "file_sd_configs": [
                    {"files": [str(targets_dir / "*.json")], "refresh_interval": "1s"}
                ],
            }
        ],
    }
    return json.dumps(config, indent=2) + "\n"


def write_config(layout: Layout) -> None:
    layout.targets_dir.mkdir(parents=True, exist_ok=True)
    layout.prometheus_data.mkdir(parents=True, exist_ok=True)
    layout.prometheus_config.write_text(config_text(layout.targets_dir))


def argv(prometheus: Path, layout: Layout, port: int) -> list[str]:
    return [
        str(prometheus),
        f"--config.file={layout.prometheus_config}",
        f"--storage.tsdb.path={layout.prometheus_data}",
        "--storage.tsdb.retention.time=1d",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
    ]


def write_target(
    targets_dir: Path, name: str, port: int, labels: Mapping[str, str] | None = None
) -> Path:
    """Register ``127.0.0.1:port`` as ``<name>.json`` (atomically: write, then rename)."""
    path = targets_dir / f"{name}.json"
    tmp = targets_dir / f".{name}.json.tmp"
    tmp.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"], "labels": dict(labels or {})}]))
    tmp.replace(path)
    return path
