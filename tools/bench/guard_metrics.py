"""Benchmark: what the per-guard metric series cost at 1,000 guards, in-process.

Each guard has one releaseguard_guard_phase series (its current phase) and one
releaseguard_guard_consecutive_breaches series. This measures, for N guards: the memory
the series take (tracemalloc), the time of one update (`metrics.observe_guard`, called
once per evaluation), and the /metrics page a scrape renders (bytes and render time).
The operator's end-to-end CPU and memory at 1,000 guards are tools/bench/scale.py's.

Run: PYTHONPATH=tools .venv/bin/python tools/bench/guard_metrics.py [--guards 1000]
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

from prometheus_client import REGISTRY, generate_latest

from releaseguard.adapters import metrics

PHASES = ("Watching", "Breaching", "Contained")


def render() -> tuple[int, float]:
    started = time.perf_counter()
    page = generate_latest(REGISTRY)
    return len(page), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--guards", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5, help="evaluations per guard")
    args = parser.parse_args()
    names = [(f"ns-{i % 50}", f"guard-{i}") for i in range(args.guards)]

    empty_bytes, _ = render()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for ns, name in names:
        metrics.observe_guard(ns, name, "Watching", 0)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))

    timings = []
    for r in range(args.rounds):
        for i, (ns, name) in enumerate(names):
            phase = PHASES[(i + r) % len(PHASES)]  # a phase change every round: the worst case
            started = time.perf_counter()
            metrics.observe_guard(ns, name, phase, r)
            timings.append(time.perf_counter() - started)
    page_bytes, _ = render()
    renders = [render()[1] for _ in range(10)]
    for ns, name in names:
        metrics.forget_guard(ns, name)
    gone_bytes, _ = render()

    print(
        f"per-guard metrics at {args.guards} guards: series memory {grown / 1024:.0f} KiB "
        f"({grown / args.guards:.0f} B per guard); observe_guard median "
        f"{statistics.median(timings) * 1e6:.1f} us, p99 "
        f"{sorted(timings)[int(len(timings) * 0.99)] * 1e6:.1f} us (phase changing); "
        f"/metrics {empty_bytes / 1024:.0f} KiB without guards, "
        f"{page_bytes / 1024:.0f} KiB with them, rendered in median "
        f"{statistics.median(renders) * 1000:.1f} ms; after every guard is forgotten "
        f"{gone_bytes / 1024:.0f} KiB"
    )


if __name__ == "__main__":
    main()
