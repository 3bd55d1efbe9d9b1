"""Turn one round of query answers into verdicts and a consecutive-breach count.

Pure: a function of the spec, the observations, the previous evaluation and the time.
No I/O, and the clock is passed in.

Rules (README "What it does, step by step" and "Writing a guard"):
- A metric breaches when value > max, value < min, or value > baseline * maxRatio.
  A ratio check whose baseline has no data is skipped, not breached.
- A metric with an empty, NaN or failed answer has no data.
- The guard verdict is Breach if any metric breaches; else NoData if any metric has no
  data (noData: Breach turns that into Breach); else Healthy.
- Below minTraffic the verdict is InsufficientTraffic whatever the metrics say.
- Breach adds one to the count; Healthy resets it; NoData (under Hold) and
  InsufficientTraffic hold it, because they carry no evidence either way.
- A breach is confirmed when the count reaches consecutiveBreaches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from releaseguard.domain.models import (
    GuardSpec,
    LastEvaluation,
    Metric,
    MetricEvaluation,
    MetricVerdict,
    NoDataPolicy,
    Verdict,
)
from releaseguard.domain.observations import Observations, Outcome, QueryResult


@dataclass(frozen=True)
class Evaluation:
    result: LastEvaluation
    confirmed: bool
    metrics_available: bool
    unavailable: tuple[str, ...]  # "name: why" for each query without data
    invalid: str | None  # a spec error found at run time (bad PromQL, several series)
    no_data_reason: str = "NoData"  # MetricsAvailable's reason when not available

    @property
    def breaching_reason(self) -> str:
        """Which metrics breach and for how long, for action records and Events."""
        parts = [m.message for m in self.result.metrics if m.verdict is MetricVerdict.BREACH]
        if not parts:
            parts = [f"no data ({'; '.join(self.unavailable)})"] if self.unavailable else []
        count = self.result.consecutive_breaches
        return f"{', '.join(parts)} for {count} evaluation{'s' if count != 1 else ''}"


def evaluate_metric(
    metric: Metric, answer: QueryResult, baseline: QueryResult | None
) -> MetricEvaluation:
    bounds = {"max": metric.max, "min": metric.min, "max_ratio": metric.max_ratio}
    if not answer.has_value:
        return MetricEvaluation(
            name=metric.name,
            verdict=MetricVerdict.NO_DATA,
            message=f"{metric.name}: {answer.describe()}",
            **bounds,
        )
    value = answer.value
    assert value is not None
    breaches: list[str] = []
    notes: list[str] = []
    if metric.max is not None and value > metric.max:
        breaches.append(f"{metric.name} {value:g} > {metric.max:g}")
    if metric.min is not None and value < metric.min:
        breaches.append(f"{metric.name} {value:g} < {metric.min:g}")
    baseline_value = baseline.value if baseline is not None and baseline.has_value else None
    if metric.max_ratio is not None:
        if baseline_value is None:
            why = baseline.describe() if baseline is not None else "not queried"
            notes.append(f"ratio check skipped: baseline has no data ({why})")
        elif value > baseline_value * metric.max_ratio:
            breaches.append(
                f"{metric.name} {value:g} > {metric.max_ratio:g} x baseline {baseline_value:g}"
            )
    verdict = MetricVerdict.BREACH if breaches else MetricVerdict.PASS
    return MetricEvaluation(
        name=metric.name,
        verdict=verdict,
        value=value,
        baseline=baseline_value,
        message="; ".join(breaches + notes),
        **bounds,
    )


def _spec_error(obs: Observations) -> str | None:
    named = [*obs.metrics.items(), *((f"{n} (baseline)", r) for n, r in obs.baselines.items())]
    if obs.traffic is not None:
        named.append(("minTraffic", obs.traffic))
    errors = [
        f"{name}: {r.message or r.outcome.value}" for name, r in named if r.outcome.is_spec_error
    ]
    return "; ".join(errors) if errors else None


def _traffic(spec: GuardSpec, obs: Observations) -> tuple[float | None, bool, tuple[str, ...]]:
    """The traffic seen, whether it is below minTraffic, and why it is unknown (if so)."""
    if spec.min_traffic is None or obs.traffic is None:
        return None, False, ()
    answer = obs.traffic
    if answer.outcome is Outcome.UNAVAILABLE:
        return None, False, (f"minTraffic: {answer.describe()}",)
    if answer.has_value:
        traffic = answer.value
        return traffic, traffic is not None and traffic < spec.min_traffic.min, ()
    # No series or NaN: nothing is flowing, which is what minTraffic guards against.
    return 0.0, True, ()


def evaluate(
    spec: GuardSpec, obs: Observations, previous: LastEvaluation | None, now: datetime
) -> Evaluation:
    prev_count = previous.consecutive_breaches if previous is not None else 0
    missing = QueryResult(Outcome.UNAVAILABLE, message="not queried")
    metrics = [
        evaluate_metric(m, obs.metrics.get(m.name, missing), obs.baselines.get(m.name))
        for m in spec.metrics
    ]
    unavailable = tuple(m.message for m in metrics if m.verdict is MetricVerdict.NO_DATA)

    traffic, low_traffic, traffic_unavailable = _traffic(spec, obs)
    unavailable += traffic_unavailable

    if any(m.verdict is MetricVerdict.BREACH for m in metrics):
        verdict = Verdict.BREACH
    elif unavailable:
        verdict = Verdict.BREACH if spec.no_data is NoDataPolicy.BREACH else Verdict.NO_DATA
    else:
        verdict = Verdict.HEALTHY
    if low_traffic:
        verdict = Verdict.INSUFFICIENT_TRAFFIC

    if verdict is Verdict.BREACH:
        count = prev_count + 1
    elif verdict is Verdict.HEALTHY:
        count = 0
    else:
        count = prev_count

    since = previous.breaching_since if previous is not None and prev_count > 0 else None
    if count == 0:
        since = None
    elif since is None:
        since = now

    invalid = _spec_error(obs)
    result = LastEvaluation(
        time=now,
        verdict=verdict,
        consecutive_breaches=count,
        breaching_since=since,
        traffic=traffic,
        metrics=metrics,
    )
    return Evaluation(
        result=result,
        confirmed=invalid is None
        and verdict is Verdict.BREACH
        and count >= spec.consecutive_breaches,
        metrics_available=not unavailable,
        unavailable=unavailable,
        invalid=invalid,
        no_data_reason=obs.no_data_reason(),
    )
