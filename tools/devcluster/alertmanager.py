"""Alertmanager for the notification tests: Debian's prometheus-alertmanager, started
by ``up`` next to Prometheus (on a reused cluster too, when it is not running yet).

It routes every alert to a receiver that sends nothing: the tests read what it holds
through its API (/api/v2/alerts). Gossip clustering is off (no port 9094 to collide).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from devcluster.layout import Layout

NAME = "alertmanager"
CANDIDATES = ("prometheus-alertmanager", "alertmanager")
INSTALL_HINT = (
    "apt-get install -y --no-install-recommends prometheus-alertmanager (or `make alertmanager`)"
)


def binary() -> Path | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def directory(layout: Layout) -> Path:
    return layout.state_dir / NAME


def config_text() -> str:
    """alertmanager.yml (JSON is valid YAML): group fast, notify nobody."""
    config = {
        "route": {
            "receiver": "none",
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [{"name": "none"}],
    }
    return json.dumps(config, indent=2) + "\n"


def write_config(layout: Layout) -> Path:
    root = directory(layout)
    (root / "data").mkdir(parents=True, exist_ok=True)
    path = root / "alertmanager.yml"
    path.write_text(config_text())
    return path


def argv(alertmanager: Path, layout: Layout, port: int) -> list[str]:
    root = directory(layout)
    return [
        str(alertmanager),
        f"--config.file={root / 'alertmanager.yml'}",
        f"--storage.path={root / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
