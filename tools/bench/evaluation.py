"""Benchmark: CPU per evaluation of a 3-metric guard (no I/O), and query latency
against the local Prometheus through the operator's own adapter.

Run with `make bench` (starts the local cluster if needed). Prints numbers; asserts
nothing. CPU time is process time, so other load on the machine does not inflate it.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import devcluster
from devcluster.exporter import Exporter
from releaseguard.adapters.prometheus import Prometheus
from releaseguard.domain.evaluate import evaluate
from releaseguard.domain.guard import TargetFacts, TickInput, decide
from releaseguard.domain.models import GuardSpec, GuardStatus, StepReadiness, StepType
from releaseguard.domain.observations import Observations, QueryResult

SPEC = GuardSpec.model_validate(
    {
        "target": {"deployment": "checkout"},
        "intervalSeconds": 2,
        "consecutiveBreaches": 2,
        "minTraffic": {"query": "sum(rate(http_requests_total[1m]))", "min": 1},
        "metrics": [
            {"name": "error-rate", "query": "q1", "max": 0.05},
            {"name": "p99-latency", "query": "q2", "baselineQuery": "b2", "maxRatio": 1.5},
            {"name": "conversion", "query": "q3", "min": 0.02},
        ],
        "steps": [
            {"type": "FeatureFlag", "featureFlag": {"configMap": "f", "key": "k", "value": "off"}},
            {"type": "CanaryWeight", "canaryWeight": {"httpRoute": "r", "canaryBackend": "v2"}},
            {"type": "Rollback"},
        ],
    }
)
OBS = Observations(
    metrics={
        "error-rate": QueryResult.number(0.01),
        "p99-latency": QueryResult.number(0.2),
        "conversion": QueryResult.number(0.05),
    },
    baselines={"p99-latency": QueryResult.number(0.18)},
    traffic=QueryResult.number(40.0),
)
TARGET = TargetFacts(
    revision="7", pod_template_hash="abc", images=("checkout:1.41",), available=True
)
READY = [
    StepReadiness(type=s.type, index=i, ready=s.type is not StepType.ROLLBACK)
    for i, s in enumerate(SPEC.steps)
]


def bench_cpu(n: int = 5000) -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    status = GuardStatus()
    start = time.process_time()
    for i in range(n):
        evaluate(SPEC, OBS, status.last_evaluation, now + timedelta(seconds=2 * i))
    evaluate_only = (time.process_time() - start) / n

    start = time.process_time()
    for i in range(n):
        t = now + timedelta(seconds=2 * i)
        ev = evaluate(SPEC, OBS, status.last_evaluation, t)
        status = decide(TickInput(SPEC, status, ev, TARGET, t, 1, READY)).status
        status.wire()
    full = (time.process_time() - start) / n
    print(f"cpu per evaluation, 3 metrics + baseline + minTraffic (n={n}):")
    print(f"  evaluate()                          {evaluate_only * 1e6:8.1f} us")
    print(f"  evaluate() + decide() + status JSON {full * 1e6:8.1f} us")


def bench_queries(prometheus_url: str, targets_dir: Path, n: int = 200) -> None:
    with Exporter(name="bench-exporter") as exp:
        for version in ("v1", "v2"):
            for code in ("200", "500"):
                exp.set(
                    "http_requests_total", 100.0, {"version": version, "code": code}, kind="counter"
                )
        devcluster.write_target(targets_dir, "bench-exporter", exp.port, {"job": "bench"})
        prom = Prometheus(prometheus_url, timeout_seconds=5)
        query = (
            'sum(rate(http_requests_total{job="bench",version="v2",code=~"5.."}[1m]))'
            ' / sum(rate(http_requests_total{job="bench",version="v2"}[1m]))'
        )
        deadline = time.monotonic() + 30
        while not prom.query('sum(http_requests_total{job="bench"})').has_value:
            if time.monotonic() > deadline:
                sys.exit("bench exporter never showed up in Prometheus")
            time.sleep(0.5)
        latencies = []
        for _ in range(n):
            t0 = time.perf_counter()
            prom.query(query)
            latencies.append((time.perf_counter() - t0) * 1000)
        three = []
        for _ in range(n // 4):
            t0 = time.perf_counter()
            prom.query_many({"a": query, "b": query, "c": query, "d": query, "e": query})
            three.append((time.perf_counter() - t0) * 1000)
        (targets_dir / "bench-exporter.json").unlink(missing_ok=True)
        prom.close()
    latencies.sort()
    three.sort()
    print(f"query latency against local Prometheus ({prometheus_url}), n={n}:")
    print(
        f"  one rate ratio query   median {statistics.median(latencies):.2f} ms  "
        f"p95 {latencies[int(n * 0.95)]:.2f} ms"
    )
    print(
        f"  one guard (5 queries, in parallel) median {statistics.median(three):.2f} ms  "
        f"p95 {three[int(len(three) * 0.95)]:.2f} ms"
    )


def main() -> None:
    bench_cpu()
    info = devcluster.ensure_up(Path.cwd())
    bench_queries(info.prometheus_url, info.targets_dir)


if __name__ == "__main__":
    main()
