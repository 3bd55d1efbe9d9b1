"""Delivery of notifications to webhooks, Slack and Alertmanager, off the evaluation path.

Why plain `requests` and not a notification library (apprise and the like): the JSON
webhook's body must be exactly the bytes that are signed, the idempotency key must travel
in a header we name, and every request must have a wall-clock deadline, a bounded
response read and no redirects. A library that builds its own requests hides all four;
Slack's incoming-webhook format is one JSON field. `requests` is already installed (the
Prometheus client uses it).

What this module must never do: block the caller. `Notifier.submit` only puts work on a
bounded queue (a full queue is a failed delivery, counted, not a wait); worker threads
send, retry with backoff until the notification's 10-minute window ends, and keep the
outcomes until the guard's next evaluation collects them (`collect`), which folds them
into status (domain/notifications.py `settle`). A sink that is down, slow, redirects or
answers garbage costs a worker thread at most REQUEST_DEADLINE per attempt.
"""

from __future__ import annotations

import heapq
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import requests

from releaseguard.adapters import metrics
from releaseguard.adapters.cluster import Cluster, Missing, secret_value
from releaseguard.domain.allowlist import AllowList, url_problem
from releaseguard.domain.conditions import Reason
from releaseguard.domain.models import GuardSpec, GuardStatus, OwedNotification, WebhookFormat
from releaseguard.domain.notifications import (
    DELIVERY_WINDOW,
    GuardId,
    Outcome,
    alert_state,
    alerts,
    wants_alert_repost,
    webhook_request,
)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 5.0
# Whole request, connect to last byte read: a sink that trickles its answer is cut off.
REQUEST_DEADLINE = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
QUEUE_SIZE = 1000
WORKERS = 4


@dataclass(frozen=True)
class Delivery:
    """One notification (or alert update) for one sink."""

    uid: str  # the guard's
    key: str  # the outbox entry's; "" for an alert re-post, which nothing waits for
    sink: int
    kind: str  # webhook | slack | alertmanager: the metric's sink label
    moment: str
    url: str
    body: bytes
    headers: dict[str, str]
    created: datetime  # the moment's time: retries stop DELIVERY_WINDOW after it
    log_context: dict[str, str] = field(default_factory=dict)
    # Alertmanager holds one state per alert, and the last post wins: a delivery older
    # than the newest one submitted for its guard and sink (a firing post still retrying
    # when the incident recovered) is superseded, never sent after it.
    order: int = 0


class DeliveryError(Exception):
    def __init__(self, message: str, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def post(url: str, body: bytes, headers: dict[str, str]) -> None:
    """One POST; returns when a 2xx arrived, raises DeliveryError otherwise."""
    started = time.monotonic()
    try:
        response = requests.post(
            url,
            data=body,
            headers=headers,
            timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            allow_redirects=False,
            stream=True,
        )
    except requests.RequestException as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}"[:300], retry=True) from exc
    try:
        read = 0
        for chunk in response.iter_content(8192):
            read += len(chunk)
            if read >= MAX_RESPONSE_BYTES or time.monotonic() - started > REQUEST_DEADLINE:
                break  # the answer's body is not needed: its status is
    except requests.RequestException:
        pass  # a broken body after the status line: the status still says what happened
    finally:
        response.close()
    code = response.status_code
    if 200 <= code < 300:
        return
    if 300 <= code < 400:
        raise DeliveryError(f"HTTP {code}: redirects are not followed", retry=False)
    retry = code >= 500 or code in (408, 425, 429)
    raise DeliveryError(f"HTTP {code} {response.reason or ''}".strip(), retry=retry)


class Notifier:
    """A bounded queue, worker threads and a retry schedule. Thread-safe."""

    def __init__(
        self,
        workers: int = WORKERS,
        queue_size: int = QUEUE_SIZE,
        send: Callable[[str, bytes, dict[str, str]], None] = post,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._send = send
        self._clock = clock
        self._queue: queue.Queue[tuple[Delivery, int]] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._later: list[tuple[float, int, Delivery, int]] = []  # (due, seq, delivery, attempt)
        self._seq = 0
        self._busy: set[tuple[str, str, int]] = set()
        self._outcomes: dict[str, list[Outcome]] = {}
        self._latest: dict[tuple[str, int], int] = {}
        self._threads = [
            threading.Thread(target=self._work, name=f"notify-{i}", daemon=True)
            for i in range(workers)
        ]
        self._threads.append(threading.Thread(target=self._retry, name="notify-retry", daemon=True))
        for t in self._threads:
            t.start()

    def owes(self, uid: str, key: str, sink: int) -> bool:
        """Whether this (notification, sink) is queued, being sent or waiting for a retry, or
        its outcome has not been collected yet."""
        with self._lock:
            if (uid, key, sink) in self._busy:
                return True
            return any(o.key == key and o.sink == sink for o in self._outcomes.get(uid, ()))

    def submit(self, delivery: Delivery) -> None:
        """Queue a delivery; never blocks. Already owed: ignored."""
        ident = (delivery.uid, delivery.key, delivery.sink)
        with self._lock:
            if delivery.key and ident in self._busy:
                return
            if delivery.key:
                self._busy.add(ident)
            if delivery.order:
                latest = self._latest.get((delivery.uid, delivery.sink), 0)
                self._latest[(delivery.uid, delivery.sink)] = max(latest, delivery.order)
        try:
            self._queue.put_nowait((delivery, 0))
        except queue.Full:
            self._finish(delivery, False, "the operator's notification queue is full")

    def collect(self, uid: str) -> list[Outcome]:
        """The outcomes for a guard since the last call."""
        with self._lock:
            return self._outcomes.pop(uid, [])

    def forget(self, uid: str) -> None:
        """The guard is gone: its outcomes are of no use."""
        with self._lock:
            self._outcomes.pop(uid, None)
            for key in [k for k in self._latest if k[0] == uid]:
                del self._latest[key]

    def _finish(self, d: Delivery, delivered: bool, error: str = "", count: bool = True) -> None:
        if count:
            result = "sent" if delivered else "failed"
            metrics.NOTIFICATIONS.labels(d.kind, d.moment, result).inc()
        if not delivered:
            log.warning(
                "notification %s to %s failed: %s",
                d.moment,
                d.kind,
                error,
                extra={**d.log_context, "event": "notification-failed", "sink": d.sink},
            )
        if not d.key:
            return
        with self._lock:
            self._busy.discard((d.uid, d.key, d.sink))
            self._outcomes.setdefault(d.uid, []).append(Outcome(d.key, d.sink, delivered, error))

    def _work(self) -> None:
        while True:
            delivery, attempt = self._queue.get()
            try:
                self._attempt(delivery, attempt)
            except Exception as exc:  # a bug here must not kill the worker thread
                log.exception("notification worker")
                self._finish(delivery, False, f"internal error: {exc}")

    def _attempt(self, d: Delivery, attempt: int) -> None:
        with self._lock:
            superseded = d.order and d.order < self._latest.get((d.uid, d.sink), 0)
        if superseded:
            metrics.NOTIFICATIONS.labels(d.kind, d.moment, "superseded").inc()
            self._finish(d, True, count=False)
            return
        try:
            self._send(d.url, d.body, d.headers)
        except DeliveryError as exc:
            left = (d.created + DELIVERY_WINDOW - self._clock()).total_seconds()
            backoff = min(BACKOFF_MAX, BACKOFF_FIRST * 2**attempt)
            if exc.retry and left > backoff:
                metrics.NOTIFICATIONS.labels(d.kind, d.moment, "retried").inc()
                if attempt == 0:  # logged once per notification, not per attempt
                    log.info(
                        "notification %s to %s: %s; retrying for %.0f s",
                        d.moment,
                        d.kind,
                        exc,
                        left,
                        extra={**d.log_context, "event": "notification-retry", "sink": d.sink},
                    )
                with self._wake:
                    self._seq += 1
                    heapq.heappush(
                        self._later, (time.monotonic() + backoff, self._seq, d, attempt + 1)
                    )
                    self._wake.notify()
                return
            self._finish(d, False, str(exc))
            return
        self._finish(d, True)

    def _retry(self) -> None:
        while True:
            with self._wake:
                while not self._later or self._later[0][0] > time.monotonic():
                    timeout = self._later[0][0] - time.monotonic() if self._later else None
                    self._wake.wait(timeout)
                _, _, delivery, attempt = heapq.heappop(self._later)
            try:
                self._queue.put_nowait((delivery, attempt))
            except queue.Full:
                self._finish(delivery, False, "the operator's notification queue is full")


# ---------------------------------------------------------------- a guard's sinks


class SinkProblem(Exception):
    """A spec.notify entry that cannot work (phase Invalid, with this reason)."""

    def __init__(self, message: str, reason: Reason) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ResolvedSink:
    index: int
    kind: str  # webhook | slack | alertmanager
    url: str
    hmac_key: str | None = None


class _Guard(Protocol):
    namespace: str
    name: str
    uid: str


class Sinks:
    """Resolves a guard's spec.notify (Secrets, allow-list) and hands what its outbox owes
    to the Notifier. Called from the evaluation's worker thread; never raises from
    `deliver`: a notification problem must not fail an evaluation."""

    # A webhook Secret is read at most this often per guard evaluation cadence: the URL is
    # checked on every evaluation (a bad one makes the guard Invalid before any incident).
    SECRET_TTL = 30.0
    REPOST_SECONDS = 60.0
    # A firing alert not re-posted within this ends by itself (the operator died).
    RESEND_WITHIN = timedelta(minutes=5)

    def __init__(
        self,
        kube: Cluster,
        allowed: AllowList,
        notifier: Notifier | None,
        default_alertmanager_url: str | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.kube = kube
        self.allowed = allowed
        self._notifier = notifier
        self.default_alertmanager_url = default_alertmanager_url
        self.clock = clock
        self._secrets: dict[tuple[str, str, str], tuple[float, str | None]] = {}
        self._reposted: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def notifier(self) -> Notifier:
        with self._lock:
            if self._notifier is None:  # its threads start with the first guard that notifies
                self._notifier = Notifier()
            return self._notifier

    def _secret(self, ns: str, name: str, key: str, optional: bool = False) -> str | None:
        cached = self._secrets.get((ns, name, key))
        if cached is not None and time.monotonic() < cached[0]:
            return cached[1]
        try:
            value: str | None = secret_value(self.kube, ns, name, key)
        except Missing:
            if not optional:
                raise
            value = None
        now = time.monotonic()
        if len(self._secrets) >= 4096:  # guards come and go: keep only what is fresh
            self._secrets = {k: v for k, v in self._secrets.items() if v[0] > now}
        self._secrets[(ns, name, key)] = (now + self.SECRET_TTL, value)
        return value

    def check(self, ns: str, spec: GuardSpec) -> list[ResolvedSink]:
        """The guard's sinks, resolved; raises SinkProblem, SecretNotLabelled or Missing."""
        resolved = []
        for i, sink in enumerate(spec.notify):
            if sink.webhook is not None:
                ref = sink.webhook.url_secret_ref
                url = self._secret(ns, ref.name, ref.key) or ""
                where = f"spec.notify[{i}].webhook (Secret {ref.name}, key {ref.key})"
                slack = sink.webhook.format is WebhookFormat.SLACK
                key = None if slack else self._secret(ns, ref.name, "hmacKey", optional=True)
                kind = "slack" if slack else "webhook"
            else:
                assert sink.alertmanager is not None
                url = sink.alertmanager.url or self.default_alertmanager_url or ""
                where = f"spec.notify[{i}].alertmanager"
                if not url:
                    raise SinkProblem(
                        f"{where}: no Alertmanager URL: set its url, or start the operator "
                        "with --alertmanager-url",
                        Reason.NO_ALERTMANAGER,
                    )
                key, kind = None, "alertmanager"
            if problem := url_problem(url, self.allowed):
                raise SinkProblem(f"{where}: {problem}", Reason.URL_NOT_ALLOWED)
            resolved.append(ResolvedSink(i, kind, url, key))
        return resolved

    def collect(self, uid: str) -> list[Outcome]:
        return self._notifier.collect(uid) if self._notifier is not None else []

    def forget(self, uid: str) -> None:
        self._reposted.pop(uid, None)
        if self._notifier is not None:
            self._notifier.forget(uid)

    def deliver(self, guard: _Guard, spec: GuardSpec | None, status: GuardStatus) -> None:
        if spec is None or not spec.notify:
            return
        try:
            self._deliver(guard, spec, status)
        except Exception as exc:  # counted and logged; containment goes on
            metrics.NOTIFICATIONS.labels("any", "any", "failed").inc()
            log.warning(
                "%s/%s: notifications not sent this evaluation: %s",
                guard.namespace,
                guard.name,
                exc,
                extra={
                    "namespace": guard.namespace,
                    "guard": guard.name,
                    "event": "notification-failed",
                },
            )

    def _deliver(self, guard: _Guard, spec: GuardSpec, status: GuardStatus) -> None:
        wants_repost = wants_alert_repost(spec, status)
        if not status.outbox and not wants_repost:
            return
        sinks = self.check(guard.namespace, spec)
        who = GuardId(guard.namespace, guard.name, guard.uid, spec.target.deployment)
        now = self.clock()
        notifier = self.notifier
        alerted = False
        for entry in status.outbox:
            alerted |= self._submit_entry(notifier, who, entry, status, sinks, now)
        last = self._reposted.get(guard.uid, 0.0)
        if alerted:
            self._reposted[guard.uid] = time.monotonic()
        elif wants_repost and time.monotonic() - last >= self.REPOST_SECONDS:
            self._reposted[guard.uid] = time.monotonic()
            self._repost_alerts(notifier, who, status, sinks, now)

    def _submit_entry(
        self,
        notifier: Notifier,
        who: GuardId,
        entry: OwedNotification,
        status: GuardStatus,
        sinks: list[ResolvedSink],
        now: datetime,
    ) -> bool:
        """Submit one outbox entry to each of its sinks that does not have it yet; whether
        one of them was an Alertmanager."""
        ctx = {
            "namespace": who.namespace,
            "guard": who.name,
            "incident": str(entry.incident),
            "actionId": entry.action_id,
        }
        alerted = False
        for index in entry.sinks:
            if index >= len(sinks) or notifier.owes(who.uid, entry.key, index):
                continue
            sink = sinks[index]
            if sink.kind == "alertmanager":
                alerted = True
                firing = alert_state(entry)
                batch = alerts(
                    who, entry.incident, entry.phase, firing, entry.message, now, self.RESEND_WITHIN
                )
                url, body, headers = _alertmanager_post(sink.url, batch)
            else:
                url = sink.url
                fmt = WebhookFormat.SLACK if sink.kind == "slack" else WebhookFormat.JSON
                body, headers = webhook_request(who, entry, status, fmt, sink.hmac_key)
            notifier.submit(
                Delivery(
                    who.uid,
                    entry.key,
                    index,
                    sink.kind,
                    entry.moment.value,
                    url,
                    body,
                    headers,
                    entry.time,
                    ctx,
                    time.monotonic_ns() if sink.kind == "alertmanager" else 0,
                )
            )
        return alerted

    def _repost_alerts(
        self,
        notifier: Notifier,
        who: GuardId,
        status: GuardStatus,
        sinks: list[ResolvedSink],
        now: datetime,
    ) -> None:
        """Post the open incident's firing alert again, so that Alertmanager does not
        resolve it while the incident lasts."""
        incident = status.incident
        assert incident is not None
        for sink in sinks:
            if sink.kind != "alertmanager":
                continue
            batch = alerts(
                who, incident.number, status.phase, True, incident.reason, now, self.RESEND_WITHIN
            )
            url, body, headers = _alertmanager_post(sink.url, batch)
            notifier.submit(
                Delivery(
                    who.uid,
                    "",
                    sink.index,
                    "alertmanager",
                    "Repost",
                    url,
                    body,
                    headers,
                    now,
                    order=time.monotonic_ns(),
                )
            )


def _alertmanager_post(
    base_url: str, batch: list[dict[str, Any]]
) -> tuple[str, bytes, dict[str, str]]:
    """URL, body and headers of a POST of alerts to Alertmanager's v2 API."""
    body = json.dumps(batch).encode()
    return base_url.rstrip("/") + "/api/v2/alerts", body, {"Content-Type": "application/json"}
