"""Post a guard's recorded moments as Kubernetes Events, each exactly once.

Synchronous (the official client is): called from the service in a worker thread, with
a timeout on every request. What to post and when is decided by domain/announce.py; this
module only names the Event so that a second post of the same moment (a process that
died after posting and before recording it) is refused by the API server with 409.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from datetime import datetime

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from releaseguard.domain.announce import Announcement
from releaseguard.domain.models import GROUP, KIND, VERSION

log = logging.getLogger(__name__)

TIMEOUT = (3.0, 10.0)
MAX_MESSAGE = 1024  # the API server accepts more; an Event is read by people
COMPONENT = "releaseguard"


def event_name(guard_name: str, guard_uid: str, key: str) -> str:
    """A name unique to the guard and moment: the same moment always gets the same name."""
    digest = hashlib.sha256(f"{guard_uid}/{key}".encode()).hexdigest()[:20]
    return f"{guard_name[:200]}.rg{digest}"


class EventPoster:
    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        # The replica that posted (issue 14): the chart sets POD_NAME (Downward API).
        self.instance = (os.environ.get("POD_NAME") or socket.gethostname())[:128]

    def post(
        self, namespace: str, name: str, uid: str, announcement: Announcement, now: datetime
    ) -> bool:
        """True once the Event exists (posted now, or already by an earlier process)."""
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": event_name(name, uid, announcement.key),
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": name,
                "namespace": namespace,
                "uid": uid,
            },
            "type": announcement.type,
            "reason": announcement.reason,
            "message": announcement.message[:MAX_MESSAGE],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.instance,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            self.core.create_namespaced_event(namespace, body, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status == 409:
                return True
            log.warning(
                "%s/%s: Event %s not posted (%s %s); retrying next evaluation",
                namespace,
                name,
                announcement.reason,
                exc.status,
                exc.reason,
            )
            return False
        except OSError as exc:  # connection errors; the next evaluation retries
            log.warning("%s/%s: Event %s not posted: %s", namespace, name, announcement.reason, exc)
            return False
        return True
