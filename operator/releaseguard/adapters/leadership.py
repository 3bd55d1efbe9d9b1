"""Leader election through a `coordination.k8s.io` Lease: one writer among replicas.

The chart runs two replicas; only the one holding the Lease runs Kopf and so evaluates
guards and applies steps. A standby takes the Lease once the holder has not renewed it
for LEASE_DURATION seconds, and resumes every incident from the guards' status and the
action markers on the objects (exactly-once does not depend on there being one writer;
one writer keeps two replicas from racing to the same step).

The election itself is the official client's `kubernetes.leaderelection` (client-go's
algorithm: a follower counts the lease duration from when *it* last saw the record
change, so clocks need not agree). This module adds what that implementation lacks:
- request timeouts on every Lease call (it has none);
- errors other than API errors (a refused connection) are a failed attempt, not the
  end of the election thread;
- a graceful release: after a clean stop (SIGTERM, a rolling update) the leader clears
  the holder, and a standby takes the Lease at its next attempt (RETRY_PERIOD) instead
  of waiting LEASE_DURATION;
- a fence: the leader stops the process as soon as it has gone RENEW_DEADLINE without a
  successful renewal, before any standby may take the Lease, instead of after its
  last, possibly hanging, renew attempt returns. The process exits (as
  controller-runtime's managers do on lost leadership) and its Pod restarts as a
  standby. It never keeps acting without the Lease.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.leaderelection import electionconfig
from kubernetes.leaderelection.leaderelection import LeaderElection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

log = logging.getLogger(__name__)

# A standby takes over at most LEASE_DURATION + RETRY_PERIOD after the leader's last
# renewal (the bound: 15 s after the leader dies). client-go's defaults are
# 15/10/2; ours are shorter so that failover fits that bound.
LEASE_DURATION = 10
RENEW_DEADLINE = 7
RETRY_PERIOD = 2
REQUEST_TIMEOUT = (2.0, 3.0)  # connect, read: a renew attempt never outlives the fence
FENCE_CHECK_SECONDS = 0.25


def default_identity() -> str:
    """The Pod name (or host name) plus a random suffix: a restarted process is a new
    candidate, so it waits for the old holder's Lease to expire like any standby."""
    base = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{base}_{uuid.uuid4().hex[:8]}"


class _Timed:
    """The CoordinationV1Api with a timeout on every call."""

    def __init__(self, api: client.CoordinationV1Api) -> None:
        self._api = api

    def __getattr__(self, name: str) -> Any:
        return functools.partial(getattr(self._api, name), _request_timeout=REQUEST_TIMEOUT)


class _Election(LeaderElection):  # type: ignore[misc]
    def __init__(self, config: electionconfig.Config, on_renewed: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_renewed = on_renewed
        self._failing = False
        self.released = False

    def try_acquire_or_renew(self) -> bool:
        if self.released:  # given up on purpose: neither renew nor count as lost
            return True
        try:
            ok = bool(super().try_acquire_or_renew())
        except Exception as exc:  # e.g. connection refused: a failed attempt, retried
            if not self._failing:
                log.warning("leader election: Lease request failed: %s", exc)
            self._failing = True
            return False
        self._failing = False
        if ok:
            self._on_renewed()
        return ok


class Leadership:
    """Campaign for the Lease `namespace/name` in a daemon thread.

    `wait()` blocks until this process leads. Once leading, losing the Lease (or going
    RENEW_DEADLINE without renewing it) calls `on_lost` (default: exit the process at
    once, so nothing more is written).
    """

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        name: str,
        identity: str,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self._api = api
        self._on_lost = on_lost or _exit_now
        self._leading = threading.Event()
        self._renewed = time.monotonic()
        lock = LeaseLock(name, namespace, identity)
        lock.api_instance = _Timed(client.CoordinationV1Api(api))
        config = electionconfig.Config(
            lock=lock,
            lease_duration=LEASE_DURATION,
            renew_deadline=RENEW_DEADLINE,
            retry_period=RETRY_PERIOD,
            onstarted_leading=self._leading.set,
            onstopped_leading=lambda: self._lose("the Lease could not be renewed"),
        )
        self._election = _Election(config, self._mark_renewed)
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        # The library logs every attempt at INFO ("yet to finish lease_duration ...").
        logging.getLogger("leaderelection").setLevel(logging.WARNING)

    @property
    def leading(self) -> bool:
        return self._leading.is_set()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        log.info(
            "leader election: %s campaigning for Lease %s/%s",
            self.identity,
            self.namespace,
            self.name,
        )
        self._thread.start()
        threading.Thread(target=self._fence, name="leader-fence", daemon=True).start()

    def wait(self) -> None:
        self._leading.wait()
        log.info(
            "leader election: %s leads (Lease %s/%s)", self.identity, self.namespace, self.name
        )

    def release(self) -> None:
        """Give the Lease up after a clean stop, once nothing more will be written. The
        library's candidates take a Lease with no holder at once."""
        if not self.leading:
            return
        self._election.released = True
        api = _Timed(client.CoordinationV1Api(self._api))
        try:
            lease = api.read_namespaced_lease(self.name, self.namespace)
            if lease.spec.holder_identity != self.identity:
                return
            lease.spec.holder_identity = None
            api.replace_namespaced_lease(self.name, self.namespace, lease)
        except Exception as exc:  # the standby then waits for expiry instead
            log.warning("leader election: could not release the Lease: %s", exc)
            return
        log.info("leader election: released Lease %s/%s", self.namespace, self.name)

    def _mark_renewed(self) -> None:
        self._renewed = time.monotonic()

    def _run(self) -> None:
        try:
            self._election.run()
        except Exception as exc:  # the election must never end silently
            self._lose(f"the election failed: {exc!r}")

    def _fence(self) -> None:
        while True:
            time.sleep(FENCE_CHECK_SECONDS)  # a polling period, not a wait for a state
            if self._election.released:
                return
            if self.leading and time.monotonic() - self._renewed > RENEW_DEADLINE:
                self._lose(f"no renewal for {RENEW_DEADLINE} s")
                return

    def _lose(self, why: str) -> None:
        self._on_lost(why)


def _exit_now(why: str) -> None:
    log.error("leader election: lost leadership (%s); exiting so that no two replicas act", why)
    logging.shutdown()
    os._exit(1)
