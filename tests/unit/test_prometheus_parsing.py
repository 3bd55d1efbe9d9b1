"""parse_result() and classify_error(): every Prometheus answer becomes a typed outcome.

No network: payloads are what prometheus-api-client's custom_query returns
(`data.result`), and errors are the exceptions it raises, built directly.
"""

import http.server
import json
import threading
import time

import pytest
import requests
from prometheus_api_client import PrometheusApiClientException

from releaseguard.adapters.prometheus import Prometheus, classify_error, parse_result
from releaseguard.domain.observations import Outcome

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
            Outcome.MULTIPLE,
            None,
            id="range-vector",
        ),
        pytest.param([sample("abc")], Outcome.MULTIPLE, None, id="not-a-number"),
        pytest.param([T, "hello"], Outcome.MULTIPLE, None, id="string-result"),
        pytest.param({"resultType": "vector"}, Outcome.MULTIPLE, None, id="unexpected-shape"),
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
        pytest.param([sample("abc")], "not a number: 'abc'", id="not-a-number"),
    ],
)
def test_parse_result_message(payload, message):
    assert parse_result(payload).message == message


def library_error(status, body):
    """The exception prometheus-api-client raises for a non-200 answer."""
    content = json.dumps(body, separators=(",", ":")).encode()
    return PrometheusApiClientException(f"HTTP Status Code {status} ({content!r})")


def prometheus_error(status, error_type, error):
    return library_error(status, {"status": "error", "errorType": error_type, "error": error})


@pytest.mark.parametrize(
    ("exc", "outcome", "message"),
    [
        pytest.param(
            prometheus_error(400, "bad_data", "1:9: parse error: unexpected end of input"),
            Outcome.BAD_QUERY,
            "Prometheus rejected the query: 1:9: parse error: unexpected end of input",
            id="bad-data-is-a-bad-query",
        ),
        pytest.param(
            prometheus_error(
                400,
                "bad_data",
                'invalid parameter "query": 1:9: parse error: unexpected end of input',
            ),
            Outcome.BAD_QUERY,
            'Prometheus rejected the query: invalid parameter "query": 1:9: parse error: '
            "unexpected end of input",
            id="bad-data-with-quotes-keeps-the-whole-message",
        ),
        pytest.param(
            prometheus_error(503, "timeout", "query timed out in expression evaluation"),
            Outcome.UNAVAILABLE,
            "query timed out: query timed out in expression evaluation",
            id="timeout",
        ),
        pytest.param(
            PrometheusApiClientException("HTTP Status Code 503 (b'Service Unavailable')"),
            Outcome.UNAVAILABLE,
            "query timed out: HTTP Status Code 503 (b'Service Unavailable')",
            id="plain-503",
        ),
        pytest.param(
            prometheus_error(422, "execution", "many-to-many matching not allowed"),
            Outcome.UNAVAILABLE,
            "Prometheus error: many-to-many matching not allowed",
            id="execution-error",
        ),
        pytest.param(
            PrometheusApiClientException("HTTP Status Code 502 (b'<html>Bad Gateway</html>')"),
            Outcome.UNAVAILABLE,
            "Prometheus error: HTTP Status Code 502 (b'<html>Bad Gateway</html>')",
            id="proxy-error-page",
        ),
        pytest.param(
            requests.Timeout("read timed out"),
            Outcome.UNAVAILABLE,
            "query timed out",
            id="client-timeout",
        ),
        pytest.param(
            requests.ConnectTimeout("connect timed out"),
            Outcome.UNAVAILABLE,
            "query timed out",
            id="connect-timeout",
        ),
        pytest.param(
            requests.ConnectionError("connection refused"),
            Outcome.UNAVAILABLE,
            "Prometheus unreachable",
            id="connection-refused",
        ),
        pytest.param(
            ValueError("Expecting value: line 1 column 1"),
            Outcome.UNAVAILABLE,
            "ValueError: Expecting value: line 1 column 1",
            id="anything-else",
        ),
    ],
)
def test_classify_error(exc, outcome, message):
    result = classify_error(exc)

    assert result.outcome is outcome
    assert result.message == message
    assert result.value is None


def test_long_unparsed_error_is_cut_to_300_characters():
    exc = PrometheusApiClientException("HTTP Status Code 500 (b'" + "x" * 1000 + "')")

    assert len(classify_error(exc).message) == len("Prometheus error: ") + 300


@pytest.mark.parametrize(
    "exc",
    [
        prometheus_error(400, "bad_data", "parse error"),
        requests.ConnectionError("refused"),
        requests.Timeout("slow"),
    ],
    ids=["bad-query", "unreachable", "timeout"],
)
def test_only_a_rejected_query_is_the_specs_fault(exc):
    expected = isinstance(exc, PrometheusApiClientException)

    assert classify_error(exc).outcome.is_spec_error is expected


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
        adapter = prom._client._session.get_adapter(prom.url)
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
