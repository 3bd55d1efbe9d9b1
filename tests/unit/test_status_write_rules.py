"""Pure rules around status writes and query budgets (issue 11, items 3 and 6):
- a step is applied only when every earlier action record is stored
  (domain.writes.actions_recorded; the service writes the status first, else waits);
- a guard held back by the query budget says so in its MetricsAvailable condition."""

from releaseguard.domain.models import GuardStatus
from releaseguard.domain.observations import Observations, Outcome, Problem, QueryResult
from releaseguard.domain.writes import Stored, actions_recorded
from unit.builders import action, at, guard_spec, tick, value

BUDGET = QueryResult(Outcome.UNAVAILABLE, message="query budget exhausted", problem=Problem.BUDGET)
TIMEOUT = QueryResult(Outcome.UNAVAILABLE, message="query timed out", problem=Problem.TIMEOUT)


def test_no_action_yet_needs_no_write():
    assert actions_recorded(None, GuardStatus())
    assert actions_recorded(Stored(GuardStatus()), GuardStatus())


def test_an_action_record_the_server_does_not_hold_blocks_the_next_step():
    first = action(index=0)
    status = GuardStatus(actions=[first])

    assert not actions_recorded(Stored(GuardStatus()), status)
    assert not actions_recorded(None, status)


def test_a_stored_action_record_lets_the_next_step_go():
    first = action(index=0)
    status = GuardStatus(actions=[first])

    assert actions_recorded(Stored(GuardStatus(actions=[first])), status)


def test_a_record_stored_with_another_result_is_not_the_same_record():
    failed = action(index=0, result="Failed")
    applied = action(index=0)

    assert not actions_recorded(
        Stored(GuardStatus(actions=[failed])), GuardStatus(actions=[applied])
    )


def condition(status, type_):
    return next(c for c in status.conditions if c.type == type_)


def test_a_guard_held_back_by_the_query_budget_says_so():
    spec = guard_spec()
    obs = Observations(metrics={"error-rate": BUDGET})

    status = tick(spec, GuardStatus(), at(0), obs=obs).status

    available = condition(status, "MetricsAvailable")
    assert available.status == "False"
    assert available.reason == "QueryBudgetExhausted"
    assert "query budget exhausted" in available.message


def test_other_missing_data_keeps_the_reason_no_data():
    spec = guard_spec()

    timed_out = tick(spec, GuardStatus(), at(0), obs=Observations({"error-rate": TIMEOUT})).status
    healthy = tick(spec, GuardStatus(), at(0), obs=Observations({"error-rate": value(0)})).status

    assert condition(timed_out, "MetricsAvailable").reason == "NoData"
    assert condition(healthy, "MetricsAvailable").reason == "QueriesAnswered"
