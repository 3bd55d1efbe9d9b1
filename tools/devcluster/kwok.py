"""kwok: fake nodes that make pods Running and Ready without a kubelet.

The kwok binary has no built-in behaviour; the stage files copied from its
module (node-initialize, node heartbeat with lease, pod ready/complete/delete)
define it. They are concatenated into one multi-document config. kwok only
manages nodes annotated ``kwok.x-k8s.io/node=fake``, and ``up`` creates one
such node, big enough for any test and without taints.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

NODE_NAME = "kwok-node-0"
NODE_ANNOTATION = "kwok.x-k8s.io/node"
NODE_ANNOTATION_VALUE = "fake"
# kwokctl's default; kwok renews the node's Lease, which keeps the node-lifecycle
# controller from marking the node unreachable and evicting its pods.
NODE_LEASE_SECONDS = 40
POD_CIDR = "10.244.0.0/16"


def write_stages(stages: Sequence[Path], target: Path) -> None:
    """Concatenate the stage files into one multi-document YAML file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    docs = [stage.read_text().strip() for stage in stages]
    target.write_text("---\n" + "\n---\n".join(docs) + "\n")


def argv(kwok: Path, kubeconfig: Path, stages_file: Path) -> list[str]:
    return [
        str(kwok),
        f"--kubeconfig={kubeconfig}",
        f"--config={stages_file}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={NODE_ANNOTATION}={NODE_ANNOTATION_VALUE}",
        f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
        f"--cidr={POD_CIDR}",
    ]


def node_manifest(name: str = NODE_NAME) -> str:
    """A fake node (JSON, which kubectl reads as YAML)."""
    resources = {"cpu": "64", "memory": "256Gi", "pods": "1000"}
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                NODE_ANNOTATION: NODE_ANNOTATION_VALUE,
                "node.alpha.kubernetes.io/ttl": "0",
            },
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
        "spec": {},
        "status": {"allocatable": resources, "capacity": resources},
    }
    return json.dumps(node)


def node_is_ready(node: dict[str, object]) -> tuple[bool, object]:
    """Probe helper: Ready=True and no taints left (node-lifecycle removes not-ready)."""
    status = node.get("status")
    spec = node.get("spec")
    conditions = status.get("conditions", []) if isinstance(status, dict) else []
    taints = spec.get("taints", []) if isinstance(spec, dict) else []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return ready and not taints, {"ready": ready, "taints": taints}
