"""Benchmark: the operator's memory does not grow with the Deployments and ReplicaSets
that no guard names.

One namespace holds the scale benchmark's guards (default 100, intervalSeconds 10, one
target Deployment, one cheap query each, no steps), and the operator runs for that
namespace, so every object created there streams past its watches. Three readings of
the operator's VmRSS, each taken SETTLE seconds after what it follows (more than two of
the operator's malloc_trim periods, cli.py), with its CPU over the WINDOW before it:

  A. the guards alone, a fresh operator;
  B. the same process, after 2,000 unguarded Deployments with 3 ReplicaSets each were
     created next to the guards and streamed by;
  C. a fresh operator started next to them.

Requirement: B and C within +15 MiB of A. Also printed: the operator's own count of the
copies it keeps (releaseguard_target_cache_objects: one Deployment and its ReplicaSets,
whatever else is there), and how many evaluations read their target from the API server
instead (releaseguard_target_reads_total) in each window.

The unguarded Deployments are paused with 0 replicas, and their ReplicaSets (revisions
1-3, owned by them as the Deployment controller would own them) are created by this
script: the controllers would otherwise take ~10 minutes to make 6,000 ReplicaSets at
their default 20 requests/s. They still write the status of each object, slowly (the
Deployment controller managed <1 Deployment/s here), so those writes stream past the
operator during B and C: how many were still to come is printed.

Run: PYTHONPATH=tools .venv/bin/python tools/bench/unguarded.py [--unguarded 2000]
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import devcluster
from devcluster import launch, processes

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from objects import Objects
from scale import WORKERS, Bench, cpu_seconds, machine_busy, say

from waiting import wait_until

SETTLE = 150.0  # seconds from start (or from the last change) to a reading
WINDOW = 60.0  # seconds of CPU before each reading
REVISIONS = 3
BUDGET_MIB = 15.0
CACHED = "releaseguard_target_cache_objects"
READS = "releaseguard_target_reads_total"
EVALUATIONS = "releaseguard_evaluations_total"
TIMEOUT = (3, 60)


@dataclass
class Reading:
    label: str
    rss_mib: float
    hwm_mib: float
    cores: float
    machine_cores: float
    evaluations: float
    reads: float
    cached: dict[str, float]

    def line(self, base: Reading | None) -> str:
        delta = f"{self.rss_mib - base.rss_mib:+6.1f}" if base else f"{'':>6}"
        kept = ", ".join(f"{int(v)} {k}" for k, v in sorted(self.cached.items()))
        return (
            f"  {self.label:<44} {self.rss_mib:7.1f} {delta} {self.hwm_mib:8.1f} "
            f"{self.cores:6.3f} {self.machine_cores:5.2f}/2 {self.evaluations:6.0f} "
            f"{self.reads:5.0f}  {kept}"
        )


def template_hash(name: str, revision: int) -> str:
    return hashlib.sha256(f"{name}/{revision}".encode()).hexdigest()[:10]


def unguarded_deployment(name: str) -> dict[str, Any]:
    labels = {"app": name, "tier": "unguarded"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "paused": True,
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": pod_template(name, labels, REVISIONS),
        },
    }


def pod_template(name: str, labels: dict[str, str], revision: int) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": f"registry.local/{name}:{revision}",
                    "ports": [{"containerPort": 8080, "name": "http"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                }
            ]
        },
    }


def replica_set(deployment: dict[str, Any], revision: int) -> dict[str, Any]:
    """A ReplicaSet as the Deployment controller makes one for `revision`."""
    name = deployment["metadata"]["name"]
    labels = dict(deployment["spec"]["selector"]["matchLabels"])
    hashed = {**labels, "pod-template-hash": template_hash(name, revision)}
    template = pod_template(name, hashed, revision)
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{name}-{hashed['pod-template-hash']}",
            "labels": hashed,
            "annotations": {
                "deployment.kubernetes.io/revision": str(revision),
                "deployment.kubernetes.io/desired-replicas": "0",
                "deployment.kubernetes.io/max-replicas": "0",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": name,
                    "uid": deployment["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {"replicas": 0, "selector": {"matchLabels": hashed}, "template": template},
    }


class Unguarded(Bench):
    def create_unguarded(self, ns: str, count: int) -> None:
        apps = Objects(self.api, ns).apps

        def create(i: int) -> None:
            body = unguarded_deployment(f"u-{i:05d}")
            made = json.loads(
                apps.create_namespaced_deployment(
                    ns, body, _preload_content=False, _request_timeout=TIMEOUT
                ).data
            )
            for revision in range(1, REVISIONS + 1):
                apps.create_namespaced_replica_set(
                    ns, replica_set(made, revision), _request_timeout=TIMEOUT
                )

        t0 = time.monotonic()
        self.parallel(create, list(range(count)))
        say(
            f"  created {count} Deployments and {count * REVISIONS} ReplicaSets in "
            f"{time.monotonic() - t0:.0f}s ({WORKERS} workers)"
        )

    def unsettled(self, ns: str) -> str:
        """How many unguarded objects their controllers have yet to write the status of
        (observedGeneration): those writes stream past the operator too."""
        apps = Objects(self.api, ns).apps
        counts = []
        for kind, call in (
            ("Deployments", apps.list_namespaced_deployment),
            ("ReplicaSets", apps.list_namespaced_replica_set),
        ):
            pending, cont = 0, None
            while True:
                page = json.loads(
                    call(
                        ns,
                        label_selector="tier=unguarded",
                        limit=500,
                        _continue=cont,
                        _preload_content=False,
                        _request_timeout=TIMEOUT,
                    ).data
                )
                for item in page["items"]:
                    observed = (item.get("status") or {}).get("observedGeneration", 0)
                    pending += observed < item["metadata"].get("generation", 1)
                cont = page["metadata"].get("continue")
                if not cont:
                    break
            counts.append(f"{pending} {kind}")
        return " and ".join(counts)

    def start_operator(self, ns: str, n: int, tag: str) -> tuple[subprocess.Popen[bytes], str]:
        log_path = self.info.log_dir / f"{ns}-operator-{tag}.log"
        operator = launch.spawn_operator(self.info, ns, log_path, self.env, *launch.LOCAL_METRICS)
        launch.wait_operator_ready(log_path)
        url = launch.operator_metrics_url(log_path)
        wait_until(
            lambda: launch.read_metrics(url).get(EVALUATIONS, 0.0) >= 2 * n,
            timeout=120 + n,
            interval=1,
            describe=f"{2 * n} evaluations ({tag})",
        )
        return operator, url

    def read(self, label: str, pid: int, url: str, settle_until: float) -> Reading:
        """Wait until `settle_until` (monotonic), measuring CPU over its last WINDOW."""
        window_start = max(time.monotonic(), settle_until - WINDOW)
        time.sleep(max(0.0, window_start - time.monotonic()))  # a timed window, not a state
        m0, c0, busy0, w0 = launch.read_metrics(url), cpu_seconds(pid), machine_busy(), time.time()
        time.sleep(max(0.0, settle_until - time.monotonic()))
        m1, c1, busy1, w1 = launch.read_metrics(url), cpu_seconds(pid), machine_busy(), time.time()
        assert c0 is not None and c1 is not None, "the operator died"
        wall = max(1e-9, w1 - w0)
        cached = {
            key.split('"')[1]: value for key, value in m1.items() if key.startswith(CACHED + "{")
        }
        ncpu = os.cpu_count() or 1
        return Reading(
            label=label,
            rss_mib=(processes.vm_kib(pid, "VmRSS") or 0) / 1024,
            hwm_mib=(processes.vm_kib(pid) or 0) / 1024,
            cores=(c1 - c0) / wall,
            machine_cores=(busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]) * ncpu,
            evaluations=m1.get(EVALUATIONS, 0.0) - m0.get(EVALUATIONS, 0.0),
            reads=m1.get(READS, 0.0) - m0.get(READS, 0.0),
            cached=cached,
        )

    def stop_operator(self, operator: subprocess.Popen[bytes]) -> None:
        os.killpg(operator.pid, signal.SIGTERM)
        try:
            operator.wait(timeout=120)
        except subprocess.TimeoutExpired:
            say("  operator did not exit within 120s of SIGTERM")
            processes.stop_groups([operator.pid])

    def run(self, n: int, count: int) -> list[Reading]:
        ns = self.create_namespace(n)
        operator: subprocess.Popen[bytes] | None = None
        readings = []
        try:
            self.create_guards(Objects(self.api, ns), n)

            started = time.monotonic()
            operator, url = self.start_operator(ns, n, "alone")
            alone = self.read(f"A. {n} guards alone", operator.pid, url, started + SETTLE)
            readings.append(alone)
            say(alone.line(None))

            self.create_unguarded(ns, count)
            label = f"B. + {count} x (1+{REVISIONS}) streamed by"
            streamed = self.read(label, operator.pid, url, time.monotonic() + SETTLE)
            readings.append(streamed)
            say(streamed.line(alone))
            say(f"  controllers yet to write the status of {self.unsettled(ns)}")
            self.stop_operator(operator)

            started = time.monotonic()
            operator, url = self.start_operator(ns, n, "next-to")
            label = f"C. fresh, next to {count} x (1+{REVISIONS})"
            fresh = self.read(label, operator.pid, url, started + SETTLE)
            readings.append(fresh)
            say(fresh.line(alone))
            say(f"  controllers yet to write the status of {self.unsettled(ns)}")
            self.stop_operator(operator)
            operator = None
        finally:
            self.cleanup(ns, operator.pid if operator else None)
        return readings


def report(readings: list[Reading], n: int, count: int) -> None:
    say()
    say(
        f"operator memory next to unguarded objects ({n} guards, {count} Deployments x "
        f"{REVISIONS} ReplicaSets in their namespace):"
    )
    say(
        f"  {'':<44} {'RSS MiB':>7} {'vs A':>6} {'peak MiB':>8} {'cores':>6} "
        f"{'machine':>7} {'evals':>6} {'reads':>5}  kept copies"
    )
    base = readings[0]
    for r in readings:
        say(r.line(None if r is base else base))
    say(
        f"  RSS {SETTLE:g}s after start (A, C) or after the objects were created (B); cores, evals "
        f"and reads (evaluations that read their target from the API server) over the "
        f"last {WINDOW:g}s; machine = all CPUs busy, other people's tests included"
    )
    worst = max(r.rss_mib - base.rss_mib for r in readings[1:])
    verdict = "met" if worst <= BUDGET_MIB else "MISSED"
    say(
        f"unguarded objects: RSS {worst:+.1f} MiB next to {count} unguarded Deployments x "
        f"{REVISIONS} ReplicaSets vs {n} guards alone (requirement <= +{BUDGET_MIB:g} MiB): "
        f"{verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--guards", type=int, default=100)
    parser.add_argument("--unguarded", type=int, default=2000, help="Deployments (default 2000)")
    args = parser.parse_args()
    info = devcluster.ensure_up(ROOT)
    load = os.getloadavg()
    say(
        f"unguarded-objects benchmark: {args.guards} guards, {args.unguarded} unguarded "
        f"Deployments x {REVISIONS} ReplicaSets; load average {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f} ({os.cpu_count()} cores)"
    )
    bench = Unguarded(info, WINDOW, 0)
    readings = bench.run(args.guards, args.unguarded)
    report(readings, args.guards, args.unguarded)


if __name__ == "__main__":
    main()
