"""Ask Prometheus for numbers, and turn every answer into a typed QueryResult.

Built on prometheus-api-client, which is synchronous: callers run `query_many` in a
worker thread (the service does, through asyncio.to_thread), never on the event loop.

Two defences the library does not give by default:
- a timeout on every request (the library has none), passed to Prometheus too so the
  server gives up at the same time instead of computing for nobody;
- no retries: the library retries 3 times with backoff on 5xx, and Prometheus answers
  503 on a query timeout, so one slow query would cost four timeouts. The next
  evaluation is our retry;
- no redirects: requests follows them by default, so a Prometheus URL that passed the
  allow-list (domain/allowlist.py) could send the operator anywhere with a 30x. A
  redirect is answered as an error instead (the Location is not contacted).
"""

from __future__ import annotations

import ast
import json
import logging
import math
import os
import re
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import requests
import urllib3
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from releaseguard.domain.observations import Outcome, QueryResult

log = logging.getLogger(__name__)
USER_AGENT = "releaseguard"
_REDIRECT = re.compile(r"^HTTP Status Code 30[1-8] ")


def parse_result(payload: object) -> QueryResult:
    """Classify the `data.result` of an instant query (vector or scalar)."""
    if isinstance(payload, list) and len(payload) == 2 and not isinstance(payload[0], dict):
        return _number(payload[1])  # resultType scalar: [time, "value"]
    if not isinstance(payload, list):
        return QueryResult(Outcome.MULTIPLE, message=f"unexpected result shape: {payload!r:.200}")
    if not payload:
        return QueryResult(Outcome.EMPTY, message="the query returned no series")
    if len(payload) > 1:
        labels = ", ".join(json.dumps(s.get("metric", {}), sort_keys=True) for s in payload[:3])
        return QueryResult(
            Outcome.MULTIPLE,
            message=f"the query returned {len(payload)} series ({labels}); "
            "it must return one number: aggregate it, for example with sum()",
        )
    sample = payload[0].get("value")
    if not sample or len(sample) != 2:
        return QueryResult(Outcome.MULTIPLE, message="the query returned a range vector")
    return _number(sample[1])


def _number(text: object) -> QueryResult:
    try:
        value = float(str(text))
    except ValueError:
        return QueryResult(Outcome.MULTIPLE, message=f"not a number: {text!r}")
    if math.isnan(value) or math.isinf(value):
        return QueryResult(Outcome.NAN, message=f"the query returned {text}")
    return QueryResult(Outcome.VALUE, value)


def _error_body(text: str) -> tuple[str, str]:
    """errorType and error from the library's message: HTTP Status Code 400 (b'{...}').

    The body is the repr of the response bytes, so it is read back as a bytes literal,
    then as JSON. A regex on the repr stops at the first escaped quote, and Prometheus
    quotes the parameter in every parse error: invalid parameter "query": ...
    """
    start = text.find("(b")
    if start != -1 and text.endswith(")"):
        try:
            body = json.loads(ast.literal_eval(text[start + 1 : -1]))
        except (ValueError, SyntaxError, TypeError):
            body = None
        if isinstance(body, dict):
            return str(body.get("errorType", "")), str(body.get("error", ""))
    return "", text[:300]


def classify_error(exc: Exception) -> QueryResult:
    if isinstance(exc, PrometheusApiClientException):
        text = str(exc)
        kind, detail = _error_body(text)
        if kind == "bad_data":
            return QueryResult(
                Outcome.BAD_QUERY, message=f"Prometheus rejected the query: {detail}"
            )
        if _REDIRECT.search(text):
            return QueryResult(
                Outcome.UNAVAILABLE,
                message="Prometheus answered with a redirect, which the operator does not "
                "follow: set spec.prometheus.url to where it redirects (if allowed)",
            )
        if kind == "timeout" or "Status Code 503" in text:
            return QueryResult(Outcome.UNAVAILABLE, message=f"query timed out: {detail}")
        return QueryResult(Outcome.UNAVAILABLE, message=f"Prometheus error: {detail}")
    if isinstance(exc, requests.Timeout) or _timed_out(exc):
        return QueryResult(Outcome.UNAVAILABLE, message="query timed out")
    if isinstance(exc, requests.ConnectionError):
        return QueryResult(Outcome.UNAVAILABLE, message="Prometheus unreachable")
    return QueryResult(Outcome.UNAVAILABLE, message=f"{type(exc).__name__}: {exc}")


def _timed_out(exc: Exception) -> bool:
    """With retries off, urllib3 wraps a read timeout in MaxRetryError, which requests
    re-raises as a plain ConnectionError: look at the cause."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    # NewConnectionError (refused) subclasses ConnectTimeoutError in urllib3 2: not a hang.
    return isinstance(reason, urllib3.exceptions.TimeoutError) and not isinstance(
        reason, urllib3.exceptions.NewConnectionError
    )


class _NoRedirects(requests.Session):
    """A Session that never follows a redirect: the 30x itself is the response, which
    the library turns into an error (see classify_error)."""

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        return None


class Prometheus:
    """One Prometheus endpoint with its credentials."""

    def __init__(
        self,
        url: str,
        timeout_seconds: float,
        bearer_token: str | None = None,
        executor: ThreadPoolExecutor | None = None,
        connections: int = 10,
    ) -> None:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if bearer_token:
            headers["Authorization"] = f"Bearer {bearer_token}"
        self.url = url.rstrip("/")
        self.timeout = timeout_seconds
        self._executor = executor
        no_retry = Retry(total=0, raise_on_status=False)
        session = _NoRedirects()
        # requests re-reads the proxy and CA-bundle variables (and ~/.netrc) from the
        # environment on every request: a tenth of the operator's CPU at 1,000 guards
        # (tools/bench/scale.py). Read them once, here, instead.
        session.proxies = requests.utils.get_environ_proxies(self.url)
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get(
            "CURL_CA_BUNDLE", True
        )
        session.trust_env = False
        # Every header goes with each request (above), none on the session: merging
        # session and request headers or params costs four isinstance checks against a
        # typing.Protocol per request in requests >= 2.33, slow on Python 3.11 (8% of
        # the operator's CPU at 1,000 guards). requests skips the merge for None.
        session.headers = None  # type: ignore[assignment]
        session.params = None  # type: ignore[assignment]
        self._client = PrometheusConnect(
            url=self.url, headers=headers, retry=no_retry, timeout=timeout_seconds, session=session
        )
        # As many pooled connections as threads that may query at once, so concurrent
        # evaluations reuse connections instead of opening and discarding them.
        session.mount(self.url, HTTPAdapter(max_retries=no_retry, pool_maxsize=connections))

    def query(self, promql: str) -> QueryResult:
        try:
            payload = self._client.custom_query(
                promql, params={"timeout": f"{self.timeout:g}s"}, timeout=self.timeout
            )
        except Exception as exc:  # every failure becomes a typed result; none escapes
            result = classify_error(exc)
            log.debug("query %r at %s failed: %s", promql, self.url, result.message)
            return result
        return parse_result(payload)

    def query_many(self, queries: Mapping[str, str]) -> dict[str, QueryResult]:
        """Answer several queries; side by side when an executor is shared with us, so a
        hung Prometheus costs one timeout per evaluation rather than one per query."""
        if self._executor is None or len(queries) < 2:
            return {key: self.query(q) for key, q in queries.items()}
        futures = {key: self._executor.submit(self.query, q) for key, q in queries.items()}
        return {key: f.result() for key, f in futures.items()}

    def close(self) -> None:
        self._client.close()


class PrometheusPool:
    """Clients by (url, timeout, token), built once and shared by the guards that use them."""

    def __init__(self, query_threads: int = 16) -> None:
        self._clients: dict[tuple[str, float, str | None], Prometheus] = {}
        self._lock = threading.Lock()
        self._threads = query_threads
        # Bounded and shared by all guards; separate from the evaluation threads, which
        # wait on it, so the two cannot deadlock each other.
        self._executor = ThreadPoolExecutor(max_workers=query_threads, thread_name_prefix="promql")

    def get(self, url: str, timeout_seconds: float, bearer_token: str | None) -> Prometheus:
        key = (url.rstrip("/"), timeout_seconds, bearer_token)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = Prometheus(
                    url, timeout_seconds, bearer_token, self._executor, self._threads
                )
            return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
