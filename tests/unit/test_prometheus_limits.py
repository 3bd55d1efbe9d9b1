"""The Prometheus client against a local hostile server (tests/hostile_server.py): every
query ends by its deadline, no body over the cap is read or inflated, one guard uses at
most its share of the query threads, and the in-flight budget is enforced."""

import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import pytest

from hostile_server import HostileServer
from releaseguard.adapters.deadline import WATCHDOG
from releaseguard.adapters.prometheus import Limits, Prometheus, QueryBudget
from releaseguard.domain.observations import Outcome, Problem


@pytest.fixture(scope="module")
def server():
    with HostileServer(trickle_interval=0.2, slow_seconds=0.5) as srv:
        yield srv


@pytest.fixture
def executor():
    pool = ThreadPoolExecutor(max_workers=16)
    yield pool
    pool.shutdown(wait=False, cancel_futures=True)


def client(server, mode, timeout=2.0, **kwargs):
    return Prometheus(server.url(mode), timeout_seconds=timeout, **kwargs)


def test_a_healthy_answer_is_a_value(server):
    assert client(server, "ok").query("up").value == 1.0


def test_a_trickling_server_times_out_at_the_deadline_not_per_read(server):
    # Each byte comes within 0.2 s, far under the 1 s timeout: only a wall-clock
    # deadline ends this request (the whole answer would take ~40 s).
    prom = client(server, "trickle", timeout=1.0)
    started = time.monotonic()

    result = prom.query("up")

    elapsed = time.monotonic() - started
    assert result.outcome is Outcome.UNAVAILABLE
    assert result.problem is Problem.TIMEOUT
    assert elapsed < 1.5, elapsed


@pytest.mark.parametrize("mode", ["huge", "huge-declared", "gzip-bomb"])
def test_a_body_over_the_cap_is_too_large_and_never_held_in_memory(server, mode):
    prom = client(server, mode, timeout=10.0, limits=Limits(max_bytes=256 * 1024))
    tracemalloc.start()
    try:
        result = prom.query("up")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.outcome is Outcome.UNAVAILABLE
    assert result.problem is Problem.TOO_LARGE, result.message
    assert result.message.startswith("response too large: over 262144 bytes")
    assert peak < 4 * 1024 * 1024, peak


@pytest.mark.parametrize(
    ("mode", "problem"),
    [
        ("garbage", Problem.MALFORMED),
        ("status-error", Problem.SERVER_ERROR),
        ("matrix", Problem.MALFORMED),
    ],
)
def test_odd_answers_are_no_data_with_a_reason(server, mode, problem):
    result = client(server, mode).query("up")

    assert result.outcome is Outcome.UNAVAILABLE
    assert result.problem is problem
    assert len(result.message) < 400


def test_one_guard_uses_at_most_its_share_of_query_threads(server, executor):
    prom = client(server, "slow", timeout=10.0, executor=executor, limits=Limits(per_guard=3))
    before = server.in_flight_max["slow"]
    assert before <= 3  # nothing else has queried "slow" harder

    answers = prom.query_many({f"q{i}": "up" for i in range(9)})

    assert [a.value for a in answers.values()] == [1.0] * 9, answers
    assert server.in_flight_max["slow"] == 3


def test_all_queries_of_an_evaluation_end_within_one_timeout(server, executor):
    # 8 queries of 0.5 s, 2 at a time, and a 1.2 s timeout: the evaluation stops
    # waiting at 1.2 s, and the queries it had no time for are not sent.
    prom = client(server, "slow", timeout=1.2, executor=executor, limits=Limits(per_guard=2))
    sent = server.requests["slow"]
    started = time.monotonic()

    answers = prom.query_many({f"q{i}": "up" for i in range(8)})

    assert time.monotonic() - started < 1.6
    values = [a for a in answers.values() if a.has_value]
    late = [a for a in answers.values() if not a.has_value]
    assert len(values) == 4
    assert all(a.problem is Problem.TIMEOUT for a in late)
    assert server.requests["slow"] - sent <= 6  # 4 answered + at most 2 cut off


def test_a_namespace_over_its_budget_is_told_so_and_others_still_query(server):
    budget = QueryBudget(total=4, per_namespace=1)
    prom = client(server, "slow", timeout=0.3, budget=budget)
    held = budget.acquire("greedy", time.monotonic() + 1)
    assert held is None
    try:
        refused = prom.query_many({"a": "up"}, namespace="greedy")["a"]
        other = client(server, "ok", budget=budget).query_many({"a": "up"}, namespace="calm")
    finally:
        budget.release("greedy")

    assert refused.problem is Problem.BUDGET
    assert refused.message == (
        "query budget exhausted: 1 queries of namespace greedy in flight (limit 1)"
    )
    assert other["a"].value == 1.0
    assert budget.in_flight() == 0


def test_the_operator_wide_budget_is_shared_by_all_namespaces(server):
    budget = QueryBudget(total=2, per_namespace=2)
    start = threading.Barrier(3)
    results = []

    def hold(ns):
        start.wait()
        results.append(budget.acquire(ns, time.monotonic() + 0.2))

    threads = [threading.Thread(target=hold, args=(ns,)) for ns in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(r is None for r in results) == [False, True, True]
    assert any(r and "operator limit 2" in r for r in results)


def test_no_query_of_an_evaluation_outlives_it(server, executor):
    # The next evaluation of the guard starts only after query_many returns: by then
    # none of its queries may still be running in any thread.
    prom = client(server, "trickle", timeout=0.5, executor=executor, limits=Limits(per_guard=4))

    answers = prom.query_many({f"q{i}": "up" for i in range(6)})

    assert all(a.problem is Problem.TIMEOUT for a in answers.values())
    assert WATCHDOG._armed == {}
