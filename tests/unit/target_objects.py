"""Deployments and ReplicaSets as the API server sends them, for the TargetStore tests:
only the fields the store and `current_replica_set` look at."""

from __future__ import annotations

from typing import Any

NS = "shop"
APP = (NS, "app")


def deployment(
    name: str = "app", rv: int = 10, uid: str = "uid-app", revision: int = 1, ns: str = NS
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": uid,
            "resourceVersion": str(rv),
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {"template": {"spec": {"containers": [{"image": f"app:{revision}"}]}}},
    }


def replica_set(
    revision: int = 1,
    rv: int = 11,
    owner: str | None = "app",
    owner_uid: str = "uid-app",
    ns: str = NS,
    owner_kind: str = "Deployment",
) -> dict[str, Any]:
    refs = [{"kind": owner_kind, "name": owner, "uid": owner_uid}] if owner else []
    return {
        "metadata": {
            "name": f"{owner or 'bare'}-{revision}",
            "namespace": ns,
            "resourceVersion": str(rv),
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "ownerReferences": refs,
            "managedFields": [{"manager": "kube-controller-manager"}],
        },
    }
