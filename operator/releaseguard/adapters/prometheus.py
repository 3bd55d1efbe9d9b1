"""Ask Prometheus for numbers, and turn every answer into a typed QueryResult.

Synchronous (requests): callers run `query_many` in a worker thread (the service does,
through asyncio.to_thread), never on the event loop. Nothing a server sends can raise
out of here or hold a thread past its deadline:

- a wall-clock deadline per query (adapters/deadline.py), not just a socket timeout,
  which bounds each read and lets a server trickling a byte a second hang forever; the
  timeout is passed to Prometheus too, so it gives up at the same time;
- at most `MAX_RESPONSE_BYTES` read off the wire and at most as many once decompressed
  (we ask for gzip and decode it ourselves, so a gzip bomb stops at the cap): a bigger
  answer is "response too large", no data;
- every body is checked against the API's shape (`status` must be "success", `data`
  a vector or scalar): anything else is a malformed answer, no data, never an exception;
- no retries (Prometheus answers 503 on a query timeout: one slow query would cost four
  timeouts; the next evaluation is our retry), and no redirects (a Prometheus URL that
  passed the allow-list, domain/allowlist.py, could send the operator anywhere with a
  30x): a redirect is answered as an error and its Location is not contacted;
- one guard's queries use at most `per_guard` query threads at once and all finish
  within one timeout of the evaluation's start, and every query takes a slot of the
  operator-wide and per-namespace in-flight budgets (`QueryBudget`), so a guard with
  many slow queries cannot starve the others.

prometheus-api-client (used here before) reads the whole body at once with
`response.json()`, through requests' transparent decompression, and takes any 200 as
data without looking at `status`: it can enforce none of the above, so the request is
made with requests directly.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import zlib
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import requests
import urllib3

from releaseguard.adapters.deadline import WATCHDOG, DeadlineAdapter
from releaseguard.domain.observations import Outcome, Problem, QueryResult

log = logging.getLogger(__name__)
USER_AGENT = "releaseguard"
# An answer to an instant query that must return one number is a few hundred bytes;
# 256 KiB still holds ~1,000 series, enough to say "several series" usefully. It bounds
# memory too: parsed JSON takes up to ~10x its text, times the number of query threads.
MAX_RESPONSE_BYTES = 256 * 1024
MAX_DETAIL = 300  # characters of a server's error text kept in a message
_CHUNK = 16 * 1024


def _unavailable(problem: Problem, message: str) -> QueryResult:
    return QueryResult(Outcome.UNAVAILABLE, message=message, problem=problem)


def _detail(text: object) -> str:
    """A server-chosen text, cut to MAX_DETAIL characters and made printable."""
    out = str(text)[:MAX_DETAIL]
    return "".join(c if c.isprintable() else "?" for c in out)


def parse_result(payload: object, result_type: str | None = None) -> QueryResult:
    """Classify the `data.result` of an instant query (vector or scalar); without
    `result_type`, a two-element list that holds no series is taken as a scalar."""
    if result_type is None:
        is_pair = isinstance(payload, list) and len(payload) == 2
        result_type = "scalar" if is_pair and not isinstance(payload[0], dict) else "vector"
    if result_type == "scalar":  # [time, "value"]
        if not isinstance(payload, list) or len(payload) != 2:
            return _malformed(f"unexpected scalar: {_detail(repr(payload))}")
        return _number(payload[1])
    if not isinstance(payload, list):
        return _malformed(f"unexpected result shape: {_detail(repr(payload))}")
    if not payload:
        return QueryResult(Outcome.EMPTY, message="the query returned no series")
    if not all(isinstance(s, dict) for s in payload):
        return _malformed(f"unexpected series: {_detail(repr(payload))}")
    if len(payload) > 1:
        labels = ", ".join(_detail(_labels(s.get("metric"))) for s in payload[:3])
        return QueryResult(
            Outcome.MULTIPLE,
            message=f"the query returned {len(payload)} series ({labels}); "
            "it must return one number: aggregate it, for example with sum()",
        )
    sample = payload[0].get("value")
    if not isinstance(sample, list) or len(sample) != 2:
        if "values" in payload[0]:
            return _malformed("the answer is a range vector: an instant query must not return one")
        return _malformed(f"unexpected sample: {_detail(repr(payload[0]))}")
    return _number(sample[1])


def _labels(metric: object) -> str:
    try:
        return json.dumps(metric if isinstance(metric, dict) else {}, sort_keys=True)
    except (TypeError, ValueError):
        return "{?}"


def _malformed(message: str) -> QueryResult:
    return _unavailable(Problem.MALFORMED, f"malformed answer from Prometheus: {message}")


def _number(text: object) -> QueryResult:
    if not isinstance(text, str | int | float) or isinstance(text, bool):
        return _malformed(f"not a number: {_detail(repr(text))}")
    try:
        value = float(text)
    except ValueError:
        return _malformed(f"not a number: {_detail(repr(text))}")
    if math.isnan(value) or math.isinf(value):
        return QueryResult(Outcome.NAN, message=f"the query returned {_detail(text)}")
    return QueryResult(Outcome.VALUE, value)


def parse_answer(http_status: int, body: bytes) -> QueryResult:
    """Classify a complete HTTP answer of /api/v1/query (body already decompressed)."""
    if 300 <= http_status < 400:
        return _unavailable(
            Problem.REDIRECT,
            "Prometheus answered with a redirect, which the operator does not follow: "
            "set spec.prometheus.url to where it redirects (if allowed)",
        )
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        doc = None
    if not isinstance(doc, dict):
        if http_status == 503:
            return _unavailable(Problem.TIMEOUT, f"query timed out: HTTP 503 {_snippet(body)}")
        if http_status != 200:
            return _unavailable(
                Problem.SERVER_ERROR, f"Prometheus error: HTTP {http_status} {_snippet(body)}"
            )
        return _malformed(f"not a JSON object: {_snippet(body)}")
    status = doc.get("status")
    if status == "error":
        kind, detail = doc.get("errorType"), _detail(doc.get("error", ""))
        if kind == "bad_data":
            return QueryResult(
                Outcome.BAD_QUERY, message=f"Prometheus rejected the query: {detail}"
            )
        if kind == "timeout" or http_status == 503:
            return _unavailable(Problem.TIMEOUT, f"query timed out: {detail}")
        return _unavailable(Problem.SERVER_ERROR, f"Prometheus error: {detail}")
    if status != "success":
        return _malformed(f'status is {_detail(repr(status))}, not "success"')
    if http_status != 200:
        return _unavailable(
            Problem.SERVER_ERROR, f"Prometheus error: HTTP {http_status} with status success"
        )
    data = doc.get("data")
    if not isinstance(data, dict):
        return _malformed("no data object")
    kind = data.get("resultType")
    if kind == "matrix":
        return _malformed("the answer is a range vector: an instant query must not return one")
    if kind not in ("vector", "scalar"):
        return _malformed(f"resultType {_detail(repr(kind))}, not vector or scalar")
    return parse_result(data.get("result"), kind)


def _snippet(body: bytes) -> str:
    return _detail(body[:MAX_DETAIL].decode("utf-8", errors="replace")) or "(empty body)"


class _TooLarge(Exception):
    pass


def _decode(body: bytes, encoding: str, limit: int) -> bytes:
    """The body decompressed, never more than `limit` bytes (raise _TooLarge)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decoder = zlib.decompressobj()
    else:
        raise ValueError(f"unsupported Content-Encoding {_detail(encoding)!r}")
    out = decoder.decompress(body, limit + 1)
    if len(out) > limit or decoder.unconsumed_tail:
        raise _TooLarge
    return out


def _timed_out(exc: Exception) -> bool:
    """With retries off, urllib3 wraps a read timeout in MaxRetryError, which requests
    re-raises as a plain ConnectionError: look at the cause."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    # NewConnectionError (refused) subclasses ConnectTimeoutError in urllib3 2: not a hang.
    return isinstance(reason, urllib3.exceptions.TimeoutError) and not isinstance(
        reason, urllib3.exceptions.NewConnectionError
    )


def classify_error(exc: Exception) -> QueryResult:
    """A request that raised: no answer at all."""
    if isinstance(exc, requests.Timeout) or _timed_out(exc):
        return _unavailable(Problem.TIMEOUT, "query timed out")
    if isinstance(exc, requests.ConnectionError):
        return _unavailable(Problem.UNREACHABLE, "Prometheus unreachable")
    return _unavailable(Problem.SERVER_ERROR, f"{type(exc).__name__}: {_detail(exc)}")


class _NoRedirects(requests.Session):
    """A Session that never follows a redirect: the 30x itself is the answer."""

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        return None


class QueryBudget:
    """In-flight query slots: operator-wide, and per namespace (so one tenant's guards
    cannot use all of them). A query waits for a slot until its deadline, then is
    answered "budget exhausted" without being sent."""

    def __init__(self, total: int, per_namespace: int) -> None:
        self.total = max(1, total)
        self.per_namespace = max(1, min(per_namespace, self.total))
        self._cond = threading.Condition()
        self._in_flight = 0
        self._by_ns: dict[str, int] = {}

    def acquire(self, namespace: str, deadline: float) -> str | None:
        """None when a slot was taken (give it back with `release`), else why not."""
        with self._cond:
            while True:
                ns_count = self._by_ns.get(namespace, 0)
                if self._in_flight < self.total and ns_count < self.per_namespace:
                    self._in_flight += 1
                    self._by_ns[namespace] = ns_count + 1
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    if ns_count >= self.per_namespace:
                        return (
                            f"query budget exhausted: {ns_count} queries of namespace "
                            f"{namespace} in flight (limit {self.per_namespace})"
                        )
                    return (
                        f"query budget exhausted: {self._in_flight} queries in flight "
                        f"(operator limit {self.total})"
                    )
                self._cond.wait(left)

    def release(self, namespace: str) -> None:
        with self._cond:
            self._in_flight -= 1
            left = self._by_ns.get(namespace, 1) - 1
            if left:
                self._by_ns[namespace] = left
            else:
                self._by_ns.pop(namespace, None)
            self._cond.notify_all()

    def in_flight(self, namespace: str | None = None) -> int:
        with self._cond:
            return self._in_flight if namespace is None else self._by_ns.get(namespace, 0)


@dataclass(frozen=True)
class Limits:
    max_bytes: int = MAX_RESPONSE_BYTES
    per_guard: int = 4  # query threads one evaluation may use at once


class Prometheus:
    """One Prometheus endpoint with its credentials."""

    def __init__(
        self,
        url: str,
        timeout_seconds: float,
        bearer_token: str | None = None,
        executor: ThreadPoolExecutor | None = None,
        connections: int = 10,
        budget: QueryBudget | None = None,
        limits: Limits = Limits(),
    ) -> None:
        self._headers = {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Accept-Encoding": "gzip",
        }
        if bearer_token:
            self._headers["Authorization"] = f"Bearer {bearer_token}"
        self.url = url.rstrip("/")
        self.timeout = timeout_seconds
        self._executor = executor
        self._budget = budget
        self.limits = limits
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
        # As many pooled connections as threads that may query at once, so concurrent
        # evaluations reuse connections instead of opening and discarding them. Retries
        # off (max_retries=0 is urllib3's Retry(0, read=False)).
        adapter = DeadlineAdapter(max_retries=0, pool_maxsize=connections)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._session = session

    def query(self, promql: str, deadline: float | None = None) -> QueryResult:
        """One instant query, answered by `deadline` (time.monotonic(); default: now plus
        the timeout) whatever the server does."""
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        with WATCHDOG.armed(deadline) as armed:
            try:
                result = self._fetch(promql, deadline)
            except Exception as exc:  # every failure becomes a typed result; none escapes
                result = classify_error(exc)
            if armed.fired and not result.has_value:
                result = _unavailable(
                    Problem.TIMEOUT, f"query timed out: no complete answer in {self.timeout:g}s"
                )
        if not result.has_value:
            log.debug("query %r at %s: %s", promql, self.url, result.message)
        return result

    def _fetch(self, promql: str, deadline: float) -> QueryResult:
        left = max(0.001, deadline - time.monotonic())
        response = self._session.get(
            f"{self.url}/api/v1/query",
            params={"query": promql, "timeout": f"{left:.3f}"},  # seconds
            headers=self._headers,
            timeout=left,
            stream=True,
            allow_redirects=False,
        )
        with response:
            limit = self.limits.max_bytes
            too_large = _unavailable(
                Problem.TOO_LARGE, f"response too large: over {limit} bytes, not read"
            )
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                return too_large
            body = bytearray()
            while chunk := response.raw.read(_CHUNK, decode_content=False):
                body += chunk
                if len(body) > limit:
                    return too_large
                if time.monotonic() > deadline:
                    return _unavailable(
                        Problem.TIMEOUT,
                        f"query timed out: no complete answer in {self.timeout:g}s",
                    )
            try:
                text = _decode(bytes(body), response.headers.get("Content-Encoding", ""), limit)
            except _TooLarge:
                return _unavailable(
                    Problem.TOO_LARGE, f"response too large: over {limit} bytes decompressed"
                )
            except (ValueError, zlib.error) as exc:
                return _malformed(f"undecodable body: {_detail(exc)}")
            return parse_answer(response.status_code, text)

    def query_many(self, queries: Mapping[str, str], namespace: str = "") -> dict[str, QueryResult]:
        """Answer several queries, at most `limits.per_guard` at once, all by one timeout
        from now: a query still waiting then is answered without being sent. Every query
        takes an in-flight slot of `namespace` (see QueryBudget) first."""
        deadline = time.monotonic() + self.timeout
        keys = list(queries)
        answers: dict[str, QueryResult] = {}
        lock = threading.Lock()

        def drain() -> None:
            while True:
                with lock:
                    if not keys:
                        return
                    key = keys.pop(0)
                answer = self._budgeted(queries[key], namespace, deadline)
                with lock:
                    answers[key] = answer

        runners = min(len(keys), max(1, self.limits.per_guard))
        if self._executor is None or runners < 2:
            drain()
        else:
            # The calling thread drains too: it would only wait otherwise.
            futures: list[Future[None]] = [self._executor.submit(drain) for _ in range(runners - 1)]
            drain()
            for future in futures:
                if not future.cancel():  # one still queued behind other guards: not needed
                    future.result()
        return {key: answers[key] for key in queries}

    def _budgeted(self, promql: str, namespace: str, deadline: float) -> QueryResult:
        if time.monotonic() >= deadline:
            return _unavailable(
                Problem.TIMEOUT,
                f"not run: the evaluation's queries took over {self.timeout:g}s "
                "(timeoutSeconds) in all",
            )
        if self._budget is None:
            return self.query(promql, deadline)
        refused = self._budget.acquire(namespace, deadline)
        if refused is not None:
            return _unavailable(Problem.BUDGET, refused)
        try:
            return self.query(promql, deadline)
        finally:
            self._budget.release(namespace)

    def close(self) -> None:
        self._session.close()


class PrometheusPool:
    """Clients by (url, timeout, token), built once and shared by the guards that use them."""

    def __init__(
        self,
        query_threads: int = 16,
        max_in_flight: int | None = None,
        max_in_flight_per_namespace: int | None = None,
        per_guard: int | None = None,
        max_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self._clients: dict[tuple[str, float, str | None], Prometheus] = {}
        self._lock = threading.Lock()
        self._threads = query_threads
        total = max_in_flight or query_threads
        self.budget = QueryBudget(total, max_in_flight_per_namespace or max(1, total // 2))
        # A guard's share of the query threads: an eighth, so that a few guards with a
        # hung Prometheus leave most threads to the others.
        self.limits = Limits(max_bytes, per_guard or max(2, query_threads // 8))
        # Bounded and shared by all guards; separate from the evaluation threads, which
        # wait on it, so the two cannot deadlock each other.
        self._executor = ThreadPoolExecutor(max_workers=query_threads, thread_name_prefix="promql")

    def get(self, url: str, timeout_seconds: float, bearer_token: str | None) -> Prometheus:
        key = (url.rstrip("/"), timeout_seconds, bearer_token)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = Prometheus(
                    url,
                    timeout_seconds,
                    bearer_token,
                    self._executor,
                    self._threads,
                    self.budget,
                    self.limits,
                )
            return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
