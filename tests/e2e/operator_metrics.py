"""Reading an operator's own /metrics in e2e tests (it is started with LOCAL_METRICS)."""

from __future__ import annotations

from devcluster.launch import read_metrics
from waiting import wait_until

EVALUATIONS = "releaseguard_evaluations_total"


def wait_evaluations(url: str, more: int, timeout: float = 30) -> dict[str, float]:
    """Wait until the operator has started `more` evaluations; its metrics then."""
    start = read_metrics(url).get(EVALUATIONS, 0.0)
    return wait_until(
        lambda: (m := read_metrics(url)).get(EVALUATIONS, 0.0) >= start + more and m,
        timeout=timeout,
        describe=lambda: f"{more} evaluations after {start}: {read_metrics(url)}",
    )
