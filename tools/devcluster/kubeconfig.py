"""Write the admin kubeconfig, with the CA and the client credentials inline.

Inline data (rather than file paths) keeps the kubeconfig self-contained, so it
can be copied or exported as KUBECONFIG from anywhere. JSON is valid YAML, so
no YAML library is needed to write it.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from devcluster.certs import Pki

CLUSTER_NAME = "devcluster"
USER_NAME = "devcluster-admin"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def write_kubeconfig(path: Path, server: str, pki: Pki) -> None:
    """Write (atomically, mode 0600) an admin kubeconfig for ``server``."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER_NAME,
                "cluster": {"server": server, "certificate-authority-data": _b64(pki.ca_cert)},
            }
        ],
        "users": [
            {
                "name": USER_NAME,
                "user": {
                    "client-certificate-data": _b64(pki.admin_cert),
                    "client-key-data": _b64(pki.admin_key),
                },
            }
        ],
        "contexts": [
            {"name": CLUSTER_NAME, "context": {"cluster": CLUSTER_NAME, "user": USER_NAME}}
        ],
        "current-context": CLUSTER_NAME,
        "preferences": {},
    }
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(config, handle, indent=2)
        handle.write("\n")
    tmp.replace(path)
