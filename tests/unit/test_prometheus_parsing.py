"""parse_result(), parse_answer() and classify_error(): every Prometheus answer becomes a
typed outcome, never an exception.

parse_result takes `data.result`, parse_answer a whole HTTP answer (status and body);
the client tests at the end talk to a local HTTP server.
"""

import http.server
import json
import threading
import time

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from releaseguard.adapters.prometheus import (
    Prometheus,
    classify_error,
    parse_answer,
    parse_result,
)
from releaseguard.domain.observations import Outcome, Problem

T = 1764151200.123


def sample(v, **labels):
    return {"metric": labels, "value": [T, v]}


@pytest.mark.parametrize(
    ("payload", "outcome", "value"),
    [
        pytest.param([sample("0.004")], Outcome.VALUE, 0.004, id="one-series"),
        pytest.param([sample("0")], Outcome.VALUE, 0.0, id="zero-is-a-value"),
        pytest.param([sample("-2.5")], Outcome.VALUE, -2.5, id="negative"),
        pytest.param([sample("1e3", job="x")], Outcome.VALUE, 1000.0, id="labelled-series"),
        pytest.param([T, "0.5"], Outcome.VALUE, 0.5, id="scalar"),
        pytest.param([sample("NaN")], Outcome.NAN, None, id="nan"),
        pytest.param([sample("+Inf")], Outcome.NAN, None, id="plus-inf"),
        pytest.param([sample("-Inf")], Outcome.NAN, None, id="minus-inf"),
        pytest.param([T, "NaN"], Outcome.NAN, None, id="scalar-nan"),
        pytest.param([], Outcome.EMPTY, None, id="no-series"),
        pytest.param(
            [sample("1", code="200"), sample("2", code="500")],
            Outcome.MULTIPLE,
            None,
            id="two-series",
        ),
        pytest.param(
            [{"metric": {}, "values": [[T, "1"], [T + 15, "2"]]}],
            Outcome.UNAVAILABLE,
            None,
            id="range-vector",
        ),
        pytest.param([sample("abc")], Outcome.UNAVAILABLE, None, id="not-a-number"),
        pytest.param([T, "hello"], Outcome.UNAVAILABLE, None, id="string-result"),
        pytest.param({"resultType": "vector"}, Outcome.UNAVAILABLE, None, id="unexpected-shape"),
        pytest.param(["x"], Outcome.UNAVAILABLE, None, id="a-string-in-the-vector"),
        pytest.param([sample(None)], Outcome.UNAVAILABLE, None, id="null-value"),
        pytest.param([sample(True)], Outcome.UNAVAILABLE, None, id="boolean-value"),
        pytest.param([{"value": 5}], Outcome.UNAVAILABLE, None, id="value-not-a-pair"),
    ],
)
def test_parse_result(payload, outcome, value):
    result = parse_result(payload)

    assert result.outcome is outcome
    assert result.value == value


def test_several_series_message_names_them_and_says_how_to_fix():
    payload = [sample("1", code="200"), sample("2", code="500"), sample("3", code="503")]

    message = parse_result(payload).message

    assert message.startswith('the query returned 3 series ({"code": "200"}, {"code": "500"}')
    assert "aggregate it, for example with sum()" in message


def test_several_series_message_lists_at_most_three():
    payload = [sample(str(i), pod=f"p{i}") for i in range(5)]

    message = parse_result(payload).message

    assert "5 series" in message
    assert "p2" in message
    assert "p3" not in message


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param([], "the query returned no series", id="empty"),
        pytest.param([sample("NaN")], "the query returned NaN", id="nan"),
        pytest.param(
            [sample("abc")],
            "malformed answer from Prometheus: not a number: 'abc'",
            id="not-a-number",
        ),
    ],
)
def test_parse_result_message(payload, message):
    assert parse_result(payload).message == message


def answer(**doc):
    return json.dumps(doc).encode()


SUCCESS_ONE = answer(status="success", data={"resultType": "vector", "result": [sample("3")]})


@pytest.mark.parametrize(
    ("status", "body", "outcome", "problem", "message"),
    [
        pytest.param(200, SUCCESS_ONE, Outcome.VALUE, None, "", id="success"),
        pytest.param(
            200,
            answer(status="success", data={"resultType": "scalar", "result": [T, "2"]}),
            Outcome.VALUE,
            None,
            "",
            id="scalar",
        ),
        pytest.param(
            400,
            answer(status="error", errorType="bad_data", error='invalid parameter "query": x'),
            Outcome.BAD_QUERY,
            None,
            'Prometheus rejected the query: invalid parameter "query": x',
            id="bad-data-is-a-bad-query",
        ),
        pytest.param(
            503,
            answer(status="error", errorType="timeout", error="query timed out in eval"),
            Outcome.UNAVAILABLE,
            Problem.TIMEOUT,
            "query timed out: query timed out in eval",
            id="timeout",
        ),
        pytest.param(
            503,
            b"Service Unavailable",
            Outcome.UNAVAILABLE,
            Problem.TIMEOUT,
            "query timed out: HTTP 503 Service Unavailable",
            id="plain-503",
        ),
        pytest.param(
            422,
            answer(status="error", errorType="execution", error="many-to-many matching"),
            Outcome.UNAVAILABLE,
            Problem.SERVER_ERROR,
            "Prometheus error: many-to-many matching",
            id="execution-error",
        ),
        pytest.param(
            502,
            b"<html>Bad Gateway</html>",
            Outcome.UNAVAILABLE,
            Problem.SERVER_ERROR,
            "Prometheus error: HTTP 502 <html>Bad Gateway</html>",
            id="proxy-error-page",
        ),
        pytest.param(
            200,
            answer(
                status="error",
                errorType="execution",
                error="boom",
                data={"resultType": "vector", "result": [sample("1e9")]},
            ),
            Outcome.UNAVAILABLE,
            Problem.SERVER_ERROR,
            "Prometheus error: boom",
            id="status-error-with-data-is-not-acted-on",
        ),
        pytest.param(
            200,
            answer(status="warning", data={"resultType": "vector", "result": [sample("1")]}),
            Outcome.UNAVAILABLE,
            Problem.MALFORMED,
            "malformed answer from Prometheus: status is 'warning', not \"success\"",
            id="status-other-than-success",
        ),
        pytest.param(
            200,
            answer(data={"resultType": "vector", "result": [sample("1")]}),
            Outcome.UNAVAILABLE,
            Problem.MALFORMED,
            'malformed answer from Prometheus: status is None, not "success"',
            id="no-status",
        ),
        pytest.param(
            200,
            answer(
                status="success",
                data={"resultType": "matrix", "result": [{"metric": {}, "values": [[T, "1"]]}]},
            ),
            Outcome.UNAVAILABLE,
            Problem.MALFORMED,
            "malformed answer from Prometheus: the answer is a range vector: an instant "
            "query must not return one",
            id="matrix-is-no-data-not-a-spec-error",
        ),
        pytest.param(
            200,
            answer(status="success", data={"resultType": "vector", "result": ["x"]}),
            Outcome.UNAVAILABLE,
            Problem.MALFORMED,
            "malformed answer from Prometheus: unexpected series: ['x']",
            id="result-x",
        ),
        pytest.param(
            200,
            b"\x89PNG\r\n\x1a\n\x00\xff",
            Outcome.UNAVAILABLE,
            Problem.MALFORMED,
            None,
            id="binary",
        ),
        pytest.param(
            200,
            b"[" * 100_000,
            Outcome.UNAVAILABLE,
            Problem.MALFORMED,
            None,
            id="deep-nesting",
        ),
        pytest.param(
            301,
            b"",
            Outcome.UNAVAILABLE,
            Problem.REDIRECT,
            None,
            id="redirect",
        ),
    ],
)
def test_parse_answer(status, body, outcome, problem, message):
    result = parse_answer(status, body)

    assert result.outcome is outcome
    assert result.problem is problem
    assert result.message.isprintable()
    if message is not None:
        assert result.message == message


def test_a_long_server_error_is_cut_to_300_characters():
    body = answer(status="error", errorType="execution", error="x" * 40_000)

    assert len(parse_answer(422, body).message) == len("Prometheus error: ") + 300


@pytest.mark.parametrize(
    ("exc", "problem", "message"),
    [
        pytest.param(requests.Timeout("read"), Problem.TIMEOUT, "query timed out", id="timeout"),
        pytest.param(
            requests.ConnectTimeout("connect"), Problem.TIMEOUT, "query timed out", id="connect"
        ),
        pytest.param(
            requests.ConnectionError("refused"),
            Problem.UNREACHABLE,
            "Prometheus unreachable",
            id="refused",
        ),
        pytest.param(
            ValueError("Invalid leading whitespace in header value"),
            Problem.SERVER_ERROR,
            "ValueError: Invalid leading whitespace in header value",
            id="anything-else",
        ),
    ],
)
def test_classify_error(exc, problem, message):
    result = classify_error(exc)

    assert result.outcome is Outcome.UNAVAILABLE
    assert result.problem is problem
    assert result.message == message


def test_only_a_rejected_query_or_several_series_are_the_specs_fault():
    rejected = answer(status="error", errorType="bad_data", error="parse error")
    several = answer(
        status="success", data={"resultType": "vector", "result": [sample("1"), sample("2")]}
    )

    assert parse_answer(400, rejected).outcome.is_spec_error
    assert parse_answer(200, several).outcome.is_spec_error
    assert not parse_answer(200, b"nope").outcome.is_spec_error
    assert not classify_error(requests.Timeout("slow")).outcome.is_spec_error


# --- fuzz: whatever the body, a typed result and never an exception -----------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["success", "error", "vector", "scalar", "matrix", "NaN", "1", "+Inf"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["status", "data", "resultType", "result", "metric", "value", "error"])
            | st.text(max_size=5),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
api_like = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["success", "error", "", "SUCCESS"]) | json_values,
        "data": st.fixed_dictionaries(
            {
                "resultType": st.sampled_from(["vector", "scalar", "matrix", "string"])
                | json_values,
                "result": json_values,
            }
        )
        | json_values,
    }
)


@settings(max_examples=300, deadline=None)
@given(
    status=st.sampled_from([200, 400, 422, 500, 503, 301]),
    body=st.one_of(
        api_like.map(lambda d: json.dumps(d).encode()),
        json_values.map(lambda d: json.dumps(d).encode()),
        st.binary(max_size=200),
    ),
)
def test_fuzz_every_body_becomes_a_typed_result(status, body):
    result = parse_answer(status, body)

    assert isinstance(result.outcome, Outcome)
    assert len(result.message) <= 500
    if result.outcome is Outcome.VALUE:
        assert status == 200
        assert isinstance(result.value, float)
    if result.outcome is Outcome.UNAVAILABLE:
        assert result.problem is not None


@settings(max_examples=200, deadline=None)
@given(result=json_values)
def test_fuzz_a_value_comes_only_from_a_well_formed_success(result):
    body = answer(status="success", data={"resultType": "vector", "result": result})

    parsed = parse_answer(200, body)

    if parsed.outcome is Outcome.VALUE:
        assert isinstance(result, list) and len(result) == 1
        assert float(result[0]["value"][1]) == parsed.value


def test_bearer_token_is_sent_as_an_authorization_header_and_retries_are_off(monkeypatch):
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            body = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # Should this environment set a proxy, local traffic still goes direct.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    prom = Prometheus(
        f"http://127.0.0.1:{server.server_port}/", timeout_seconds=2, bearer_token="s3cret"
    )
    try:
        assert prom.url == f"http://127.0.0.1:{server.server_port}"
        assert prom.query("up").outcome is Outcome.EMPTY
        assert prom.query("up").outcome is Outcome.EMPTY
        assert [h["Authorization"] for h in seen] == ["Bearer s3cret"] * 2
        assert seen[0]["User-Agent"] == "releaseguard"
        adapter = prom._session.get_adapter(prom.url)
        assert adapter.max_retries.total == 0
    finally:
        prom.close()
        server.shutdown()


def test_unreachable_prometheus_is_no_data_within_the_timeout():
    prom = Prometheus("http://127.0.0.1:9", timeout_seconds=2)
    started = time.monotonic()
    result = prom.query("up")
    assert result.outcome is Outcome.UNAVAILABLE
    assert result.message == "Prometheus unreachable"
    assert time.monotonic() - started < 2
    prom.close()
