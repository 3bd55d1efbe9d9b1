"""Log lines as JSON objects, one per line (`releaseguard run --log-format json`).

A log pipeline (Loki, Elasticsearch, Cloud Logging) then indexes the fields a line
carries: the service passes namespace, guard, incident, actionId and event (the
transition, action, refusal, revert or notification failure) as `extra` on the record.
Text stays the default for a terminal.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

# Fields of our own that a record may carry (logging's `extra`); anything else on the
# record is logging's own bookkeeping and stays out of the line.
FIELDS = (
    "event",
    "namespace",
    "guard",
    "incident",
    "actionId",
    "phase",
    "previousPhase",
    "sink",
)
MAX_MESSAGE = 4000


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage()[:MAX_MESSAGE],
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value not in (None, ""):
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)[:MAX_MESSAGE]
        return json.dumps(line, default=str)


def _not_a_watch_event_echo(record: logging.LogRecord) -> bool:
    """Kopf logs every run of an event handler at INFO; ours (handlers._notice_deletion)
    runs on every watch event of every guard, status writes included: one line each is
    noise, not news."""
    return not (
        record.name == "kopf.objects"
        and record.getMessage() == "Handler '_notice_deletion' succeeded."
    )


def configure(fmt: str, level: int) -> None:
    """Root logging in `fmt` (json | text)."""
    handler = logging.StreamHandler()
    handler.addFilter(_not_a_watch_event_echo)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
