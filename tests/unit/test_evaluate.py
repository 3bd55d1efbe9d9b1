"""evaluate(): query answers -> metric verdicts, guard verdict and breach count."""

import pytest

from releaseguard.domain.evaluate import evaluate, evaluate_metric
from releaseguard.domain.models import Metric, MetricVerdict, Verdict
from releaseguard.domain.observations import Observations
from unit.builders import (
    BAD_QUERY,
    EMPTY,
    MULTIPLE,
    NAN,
    T0,
    UNAVAILABLE,
    at,
    guard_spec,
    last_evaluation,
    metric,
    value,
)

MAX = metric("error-rate", max=0.05)
MIN = metric("conversion", min=0.02)
RATIO = metric("p99", maxRatio=1.5)


def metric_model(wire):
    return Metric.model_validate(wire)


# ---------------------------------------------------------------- one metric


@pytest.mark.parametrize(
    ("wire", "answer", "baseline", "verdict"),
    [
        pytest.param(MAX, value(0.01), None, MetricVerdict.PASS, id="max-below-passes"),
        pytest.param(MAX, value(0.05), None, MetricVerdict.PASS, id="max-equal-passes"),
        pytest.param(MAX, value(0.31), None, MetricVerdict.BREACH, id="max-above-breaches"),
        pytest.param(MAX, EMPTY, None, MetricVerdict.NO_DATA, id="max-empty-no-data"),
        pytest.param(MIN, value(0.5), None, MetricVerdict.PASS, id="min-above-passes"),
        pytest.param(MIN, value(0.02), None, MetricVerdict.PASS, id="min-equal-passes"),
        pytest.param(MIN, value(0.001), None, MetricVerdict.BREACH, id="min-below-breaches"),
        pytest.param(MIN, NAN, None, MetricVerdict.NO_DATA, id="min-nan-no-data"),
        pytest.param(RATIO, value(0.25), value(0.2), MetricVerdict.PASS, id="ratio-within"),
        pytest.param(RATIO, value(0.3), value(0.2), MetricVerdict.PASS, id="ratio-at-limit"),
        pytest.param(RATIO, value(0.31), value(0.2), MetricVerdict.BREACH, id="ratio-above"),
        pytest.param(RATIO, value(0.1), value(0.0), MetricVerdict.BREACH, id="ratio-zero-base"),
        pytest.param(RATIO, UNAVAILABLE, value(0.2), MetricVerdict.NO_DATA, id="ratio-no-value"),
        pytest.param(RATIO, value(9.0), EMPTY, MetricVerdict.PASS, id="ratio-baseline-empty"),
        pytest.param(RATIO, value(9.0), NAN, MetricVerdict.PASS, id="ratio-baseline-nan"),
        pytest.param(RATIO, value(9.0), None, MetricVerdict.PASS, id="ratio-baseline-unasked"),
        pytest.param(
            metric("p99", max=1.0, maxRatio=1.5),
            value(2.0),
            EMPTY,
            MetricVerdict.BREACH,
            id="max-still-checked-when-baseline-missing",
        ),
        pytest.param(
            metric("band", min=1.0, max=2.0), value(1.5), None, MetricVerdict.PASS, id="in-band"
        ),
        pytest.param(
            metric("band", min=1.0, max=2.0), value(0.5), None, MetricVerdict.BREACH, id="under"
        ),
    ],
)
def test_metric_verdict_follows_its_bounds(wire, answer, baseline, verdict):
    assert evaluate_metric(metric_model(wire), answer, baseline).verdict is verdict


def test_metric_evaluation_records_value_bounds_and_baseline():
    result = evaluate_metric(metric_model(RATIO), value(0.31), value(0.2))

    assert result.value == 0.31
    assert result.baseline == 0.2
    assert result.max_ratio == 1.5
    assert result.message == "p99 0.31 > 1.5 x baseline 0.2"


@pytest.mark.parametrize(
    ("wire", "answer", "message"),
    [
        pytest.param(MAX, value(0.31), "error-rate 0.31 > 0.05", id="max"),
        pytest.param(MIN, value(0.001), "conversion 0.001 < 0.02", id="min"),
        pytest.param(MAX, EMPTY, "error-rate: the query returned no series", id="empty"),
        pytest.param(MAX, NAN, "error-rate: the query returned nan", id="nan"),
    ],
)
def test_metric_message_names_the_metric_and_the_broken_bound(wire, answer, message):
    assert evaluate_metric(metric_model(wire), answer, None).message == message


def test_skipped_ratio_check_says_why_in_the_message():
    result = evaluate_metric(metric_model(RATIO), value(9.0), EMPTY)

    assert result.baseline is None
    assert "ratio check skipped: baseline has no data" in result.message
    assert "no series" in result.message


# ---------------------------------------------------------------- guard verdict


def obs(traffic=None, baselines=None, **answers):
    return Observations(
        metrics={name.replace("_", "-"): a for name, a in answers.items()},
        baselines=baselines or {},
        traffic=traffic,
    )


TWO_METRICS = [MAX, MIN]


@pytest.mark.parametrize(
    ("answers", "no_data", "verdict", "available"),
    [
        pytest.param(
            {"error_rate": value(0.01), "conversion": value(0.5)},
            "Hold",
            Verdict.HEALTHY,
            True,
            id="all-pass-healthy",
        ),
        pytest.param(
            {"error_rate": value(0.31), "conversion": value(0.5)},
            "Hold",
            Verdict.BREACH,
            True,
            id="one-breach-is-breach",
        ),
        pytest.param(
            {"error_rate": value(0.31), "conversion": EMPTY},
            "Hold",
            Verdict.BREACH,
            False,
            id="breach-beats-no-data",
        ),
        pytest.param(
            {"error_rate": value(0.01), "conversion": EMPTY},
            "Hold",
            Verdict.NO_DATA,
            False,
            id="empty-is-no-data-under-hold",
        ),
        pytest.param(
            {"error_rate": NAN, "conversion": value(0.5)},
            "Hold",
            Verdict.NO_DATA,
            False,
            id="nan-is-no-data-under-hold",
        ),
        pytest.param(
            {"error_rate": UNAVAILABLE, "conversion": value(0.5)},
            "Hold",
            Verdict.NO_DATA,
            False,
            id="failed-query-is-no-data-under-hold",
        ),
        pytest.param(
            {"error_rate": value(0.01)},
            "Hold",
            Verdict.NO_DATA,
            False,
            id="unasked-metric-is-no-data",
        ),
        pytest.param(
            {"error_rate": value(0.01), "conversion": EMPTY},
            "Breach",
            Verdict.BREACH,
            False,
            id="empty-is-breach-under-no-data-breach",
        ),
        pytest.param(
            {"error_rate": NAN, "conversion": value(0.5)},
            "Breach",
            Verdict.BREACH,
            False,
            id="nan-is-breach-under-no-data-breach",
        ),
    ],
)
def test_guard_verdict_combines_metric_verdicts(answers, no_data, verdict, available):
    spec = guard_spec(metrics=TWO_METRICS, noData=no_data)

    evaluation = evaluate(spec, obs(**answers), None, T0)

    assert evaluation.result.verdict is verdict
    assert evaluation.metrics_available is available


def test_metrics_available_is_false_when_any_query_has_no_data():
    spec = guard_spec(metrics=TWO_METRICS)

    evaluation = evaluate(spec, obs(error_rate=value(0.01), conversion=UNAVAILABLE), None, T0)

    assert evaluation.metrics_available is False
    assert evaluation.unavailable == ("conversion: query timed out",)


def test_missing_baseline_skips_the_ratio_and_does_not_breach():
    spec = guard_spec(metrics=[RATIO])

    evaluation = evaluate(spec, obs(p99=value(9.0), baselines={"p99": EMPTY}), None, T0)

    assert evaluation.result.verdict is Verdict.HEALTHY
    assert evaluation.result.metrics[0].verdict is MetricVerdict.PASS


def test_missing_baseline_still_checks_max():
    spec = guard_spec(metrics=[metric("p99", max=1.0, maxRatio=1.5)])

    evaluation = evaluate(spec, obs(p99=value(2.0), baselines={"p99": EMPTY}), None, T0)

    assert evaluation.result.verdict is Verdict.BREACH


def test_metrics_are_reported_in_spec_order():
    spec = guard_spec(metrics=[MIN, MAX])

    evaluation = evaluate(spec, obs(error_rate=value(0.01), conversion=value(0.5)), None, T0)

    assert [m.name for m in evaluation.result.metrics] == ["conversion", "error-rate"]


# ---------------------------------------------------------------- the breach count


@pytest.mark.parametrize(
    ("no_data", "previous", "answer", "count"),
    [
        pytest.param("Hold", None, value(0.31), 1, id="first-breach-counts-one"),
        pytest.param("Hold", 1, value(0.31), 2, id="breach-increments"),
        pytest.param("Hold", 5, value(0.31), 6, id="breach-keeps-counting-past-confirmation"),
        pytest.param("Hold", 3, value(0.01), 0, id="healthy-resets"),
        pytest.param("Hold", 0, value(0.01), 0, id="healthy-stays-zero"),
        pytest.param("Hold", 1, EMPTY, 1, id="no-data-holds-under-hold"),
        pytest.param("Hold", 1, NAN, 1, id="nan-holds-under-hold"),
        pytest.param("Hold", 0, UNAVAILABLE, 0, id="no-data-holds-zero-under-hold"),
        pytest.param("Breach", 1, EMPTY, 2, id="no-data-increments-under-breach"),
        pytest.param("Breach", None, UNAVAILABLE, 1, id="failed-query-counts-under-breach"),
    ],
)
def test_consecutive_breach_count(no_data, previous, answer, count):
    spec = guard_spec(noData=no_data)
    prev = None if previous is None else last_evaluation(previous, since=T0 if previous else None)

    evaluation = evaluate(spec, obs(error_rate=answer), prev, at(15))

    assert evaluation.result.consecutive_breaches == count


@pytest.mark.parametrize(
    ("needed", "previous", "confirmed"),
    [
        pytest.param(1, 0, True, id="one-needed-first-breach-confirms"),
        pytest.param(2, 0, False, id="single-spike-does-not-confirm"),
        pytest.param(2, 1, True, id="second-in-a-row-confirms"),
        pytest.param(3, 1, False, id="two-of-three-does-not-confirm"),
        pytest.param(3, 2, True, id="three-of-three-confirms"),
        pytest.param(3, 7, True, id="stays-confirmed-while-breaching"),
    ],
)
def test_breach_is_confirmed_exactly_at_consecutive_breaches(needed, previous, confirmed):
    spec = guard_spec(consecutiveBreaches=needed)
    prev = last_evaluation(previous, since=T0 if previous else None)

    evaluation = evaluate(spec, obs(error_rate=value(0.31)), prev, at(15))

    assert evaluation.confirmed is confirmed


def test_single_spike_does_not_confirm_breach():
    spec = guard_spec(consecutiveBreaches=2)

    first = evaluate(spec, obs(error_rate=value(0.31)), None, T0)
    second = evaluate(spec, obs(error_rate=value(0.01)), first.result, at(15))
    third = evaluate(spec, obs(error_rate=value(0.31)), second.result, at(30))

    assert [first.confirmed, second.confirmed, third.confirmed] == [False, False, False]
    assert third.result.consecutive_breaches == 1


def test_no_data_under_hold_is_never_confirmed_even_at_the_count():
    spec = guard_spec(consecutiveBreaches=2)

    evaluation = evaluate(spec, obs(error_rate=EMPTY), last_evaluation(5, since=T0), at(15))

    assert evaluation.result.consecutive_breaches == 5
    assert evaluation.confirmed is False


def test_no_data_under_breach_policy_confirms_and_gives_a_reason():
    spec = guard_spec(consecutiveBreaches=2, noData="Breach")

    evaluation = evaluate(spec, obs(error_rate=UNAVAILABLE), last_evaluation(1, since=T0), at(15))

    assert evaluation.confirmed is True
    assert evaluation.breaching_reason == (
        "no data (error-rate: query timed out) for 2 evaluations"
    )


def test_breaching_reason_names_each_breaching_metric_and_the_count():
    spec = guard_spec(metrics=TWO_METRICS, consecutiveBreaches=1)

    evaluation = evaluate(spec, obs(error_rate=value(0.31), conversion=value(0.001)), None, T0)

    assert evaluation.breaching_reason == (
        "error-rate 0.31 > 0.05, conversion 0.001 < 0.02 for 1 evaluation"
    )


# ---------------------------------------------------------------- breachingSince


@pytest.mark.parametrize(
    ("previous", "answer", "since"),
    [
        pytest.param(None, value(0.31), at(15), id="set-at-first-breach"),
        pytest.param(last_evaluation(0), value(0.31), at(15), id="set-after-healthy"),
        pytest.param(last_evaluation(1, since=T0), value(0.31), T0, id="kept-while-breaching"),
        pytest.param(last_evaluation(1, since=T0), EMPTY, T0, id="kept-over-no-data"),
        pytest.param(last_evaluation(2, since=T0), value(0.01), None, id="cleared-on-reset"),
        pytest.param(None, EMPTY, None, id="not-set-by-no-data-alone"),
    ],
)
def test_breaching_since(previous, answer, since):
    evaluation = evaluate(guard_spec(), obs(error_rate=answer), previous, at(15))

    assert evaluation.result.breaching_since == since


def test_evaluation_is_stamped_with_the_clock_passed_in():
    evaluation = evaluate(guard_spec(), obs(error_rate=value(0.01)), None, at(42))

    assert evaluation.result.time == at(42)


# ---------------------------------------------------------------- minTraffic

MIN_TRAFFIC = {"query": "sum(rate(http_requests_total[1m]))", "min": 1}


@pytest.mark.parametrize(
    ("traffic", "verdict", "recorded"),
    [
        pytest.param(value(0.5), Verdict.INSUFFICIENT_TRAFFIC, 0.5, id="below-min-insufficient"),
        pytest.param(value(1.0), Verdict.BREACH, 1.0, id="at-min-is-enough"),
        pytest.param(value(20.0), Verdict.BREACH, 20.0, id="above-min-is-enough"),
        pytest.param(EMPTY, Verdict.INSUFFICIENT_TRAFFIC, 0.0, id="empty-series-insufficient"),
        pytest.param(NAN, Verdict.INSUFFICIENT_TRAFFIC, 0.0, id="nan-insufficient"),
        pytest.param(UNAVAILABLE, Verdict.BREACH, None, id="unavailable-not-insufficient"),
        pytest.param(None, Verdict.BREACH, None, id="not-queried-not-insufficient"),
    ],
)
def test_min_traffic(traffic, verdict, recorded):
    spec = guard_spec(minTraffic=MIN_TRAFFIC)

    evaluation = evaluate(spec, obs(traffic=traffic, error_rate=value(0.31)), None, T0)

    assert evaluation.result.verdict is verdict
    assert evaluation.result.traffic == recorded


def test_insufficient_traffic_holds_the_count_and_never_confirms():
    spec = guard_spec(minTraffic=MIN_TRAFFIC, consecutiveBreaches=2)
    previous = last_evaluation(3, since=T0)

    evaluation = evaluate(spec, obs(traffic=value(0.1), error_rate=value(0.31)), previous, at(15))

    assert evaluation.result.consecutive_breaches == 3
    assert evaluation.result.breaching_since == T0
    assert evaluation.confirmed is False


def test_unavailable_traffic_query_counts_as_no_data():
    spec = guard_spec(minTraffic=MIN_TRAFFIC)

    evaluation = evaluate(spec, obs(traffic=UNAVAILABLE, error_rate=value(0.01)), None, T0)

    assert evaluation.result.verdict is Verdict.NO_DATA
    assert evaluation.metrics_available is False
    assert evaluation.unavailable == ("minTraffic: query timed out",)


def test_traffic_is_ignored_without_min_traffic_in_the_spec():
    evaluation = evaluate(guard_spec(), obs(traffic=value(0.0), error_rate=value(0.31)), None, T0)

    assert evaluation.result.verdict is Verdict.BREACH
    assert evaluation.result.traffic is None


# ---------------------------------------------------------------- spec errors


@pytest.mark.parametrize(
    ("observations", "invalid"),
    [
        pytest.param(
            obs(error_rate=BAD_QUERY),
            "error-rate: Prometheus rejected the query: parse error",
            id="bad-metric-query",
        ),
        pytest.param(
            obs(error_rate=MULTIPLE), "error-rate: the query returned 2 series", id="several-series"
        ),
        pytest.param(
            obs(error_rate=value(0.31), baselines={"error-rate": BAD_QUERY}),
            "error-rate (baseline): Prometheus rejected the query: parse error",
            id="bad-baseline",
        ),
        pytest.param(
            obs(error_rate=value(0.31), traffic=MULTIPLE),
            "minTraffic: the query returned 2 series",
            id="bad-traffic-query",
        ),
    ],
)
def test_spec_error_in_a_query_makes_the_evaluation_invalid(observations, invalid):
    spec = guard_spec(minTraffic=MIN_TRAFFIC, consecutiveBreaches=1)

    evaluation = evaluate(spec, observations, None, T0)

    assert evaluation.invalid == invalid


@pytest.mark.parametrize("answer", [BAD_QUERY, MULTIPLE], ids=["bad-query", "multiple"])
def test_invalid_evaluation_is_never_confirmed(answer):
    spec = guard_spec(metrics=TWO_METRICS, consecutiveBreaches=1, noData="Breach")

    evaluation = evaluate(
        spec, obs(error_rate=value(0.31), conversion=answer), last_evaluation(9, since=T0), at(15)
    )

    assert evaluation.result.verdict is Verdict.BREACH
    assert evaluation.confirmed is False


@pytest.mark.parametrize(
    "answer", [value(0.01), EMPTY, NAN, UNAVAILABLE], ids=["value", "empty", "nan", "unavailable"]
)
def test_answers_that_are_nobodys_fault_are_not_invalid(answer):
    assert evaluate(guard_spec(), obs(error_rate=answer), None, T0).invalid is None
