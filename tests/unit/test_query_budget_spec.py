"""The query budget's settings: the ceiling on spec.prometheus.timeoutSeconds relative to
intervalSeconds, in the model (tests/e2e/test_hostile_prometheus.py checks the CRD's CEL
rule says the same), and the operator's in-flight limits."""

import pytest
from pydantic import ValidationError

from releaseguard.adapters.prometheus import PrometheusPool
from releaseguard.cli import build_parser
from releaseguard.domain.models import GuardSpec
from unit.builders import metric


def spec(interval, timeout):
    return {
        "target": {"deployment": "checkout"},
        "metrics": [metric()],
        "intervalSeconds": interval,
        "prometheus": {"timeoutSeconds": timeout},
    }


@pytest.mark.parametrize(
    ("interval", "timeout"),
    [(1, 5), (2, 1), (15, 5), (15, 15), (30, 20), (60, 60)],
)
def test_a_timeout_within_the_interval_or_up_to_5_is_allowed(interval, timeout):
    assert GuardSpec.model_validate(spec(interval, timeout)).prometheus.timeout_seconds == timeout


@pytest.mark.parametrize(("interval", "timeout"), [(1, 60), (1, 6), (10, 11), (5, 6)])
def test_a_timeout_over_the_interval_and_over_5_is_rejected(interval, timeout):
    with pytest.raises(ValidationError, match="must not exceed intervalSeconds"):
        GuardSpec.model_validate(spec(interval, timeout))


def test_the_run_flags_set_the_in_flight_limits():
    args = build_parser().parse_args(
        ["run", "--max-inflight-queries", "5", "--max-inflight-queries-per-namespace", "2"]
    )

    assert (args.max_inflight_queries, args.max_inflight_queries_per_namespace) == (5, 2)


def test_the_pool_defaults_follow_the_workers():
    pool = PrometheusPool(query_threads=32)
    try:
        assert (pool.budget.total, pool.budget.per_namespace) == (32, 16)
        assert pool.limits.per_guard == 4
    finally:
        pool.close()


def test_a_namespace_limit_above_the_total_is_the_total():
    pool = PrometheusPool(query_threads=8, max_in_flight=6, max_in_flight_per_namespace=50)
    try:
        assert (pool.budget.total, pool.budget.per_namespace) == (6, 6)
    finally:
        pool.close()
