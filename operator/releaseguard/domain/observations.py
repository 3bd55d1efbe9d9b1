"""What a Prometheus query answered, as a closed set of typed outcomes.

The adapter turns every HTTP answer into one of these; the evaluator decides what
each outcome means for a verdict. Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum


class Problem(StrEnum):
    """Why an answer carries no data, when the adapter knows (QueryResult.problem)."""

    TIMEOUT = "Timeout"  # no complete answer before the query's deadline
    UNREACHABLE = "Unreachable"  # connection refused, DNS, TLS
    TOO_LARGE = "ResponseTooLarge"  # over the byte cap, on the wire or decompressed
    MALFORMED = "MalformedResponse"  # not JSON, not the Prometheus API's shape, a matrix
    SERVER_ERROR = "PrometheusError"  # status "error" (other than bad_data), HTTP errors
    REDIRECT = "Redirect"  # a 30x, never followed
    BUDGET = "QueryBudgetExhausted"  # too many queries in flight (operator or namespace)


class Outcome(StrEnum):
    VALUE = "Value"  # exactly one finite number
    NAN = "NaN"  # one sample, but NaN or +/-Inf (0/0 with no traffic, empty histogram)
    EMPTY = "Empty"  # no series at all
    MULTIPLE = "Multiple"  # several series: the query is wrong, it must return one number
    BAD_QUERY = "BadQuery"  # Prometheus rejected the query (bad_data): the spec is wrong
    UNAVAILABLE = "Unavailable"  # timeout, connection refused, 5xx: nobody's fault, no data

    @property
    def is_spec_error(self) -> bool:
        return self in (Outcome.MULTIPLE, Outcome.BAD_QUERY)


@dataclass(frozen=True)
class QueryResult:
    outcome: Outcome
    value: float | None = None
    message: str = ""
    problem: Problem | None = None  # set on Unavailable answers when the cause is known

    @classmethod
    def number(cls, value: float) -> QueryResult:
        if math.isnan(value) or math.isinf(value):
            return cls(Outcome.NAN, None, f"the query returned {value}")
        return cls(Outcome.VALUE, value)

    @property
    def has_value(self) -> bool:
        return self.outcome is Outcome.VALUE

    def describe(self) -> str:
        if self.outcome is Outcome.VALUE:
            return f"{self.value:g}"
        return self.message or self.outcome.value


@dataclass(frozen=True)
class Observations:
    """Every query answer of one evaluation, keyed by metric name."""

    metrics: dict[str, QueryResult]
    baselines: dict[str, QueryResult] = field(default_factory=dict)
    traffic: QueryResult | None = None

    def no_data_reason(self) -> str:
        """The reason of the MetricsAvailable condition when some query had no data:
        QueryBudgetExhausted when the operator's in-flight limits held a query back (the
        guard's owner can act on it: fewer or cheaper queries, a longer interval)."""
        answers = [*self.metrics.values(), *self.baselines.values(), self.traffic]
        if any(a is not None and a.problem is Problem.BUDGET for a in answers):
            return Problem.BUDGET.value
        return "NoData"
