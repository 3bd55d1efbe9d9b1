"""devcluster: a local Kubernetes control plane plus Prometheus for ReleaseGuard's tests.

It runs etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok
(fake nodes that make pods Ready) and Prometheus as plain local processes on
free 127.0.0.1 ports, with their state in ``.devcluster/`` of the repository.
Use it from the command line (``python -m devcluster up|down|status|env``)
or from Python: ``ensure_up(root)`` returns a ClusterInfo and reuses a
running cluster.
"""

from devcluster.cluster import ClusterInfo, Deadlines, current, down, ensure_up, status
from devcluster.errors import ComponentError, DevclusterError, MissingBinaryError
from devcluster.layout import Layout
from devcluster.prometheus import write_target
from devcluster.versions import Versions

__all__ = [
    "ClusterInfo",
    "ComponentError",
    "Deadlines",
    "DevclusterError",
    "Layout",
    "MissingBinaryError",
    "Versions",
    "current",
    "down",
    "ensure_up",
    "status",
    "write_target",
]
