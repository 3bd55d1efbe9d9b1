"""The most characters each free-text field of a guard's status may hold, and the one
function that cuts a status down to them before it is written.

Why: the API server rejects a whole status write (422) when one string is over its
schema maxLength, and every later write fails the same way. Messages quote the outside
world (a Prometheus error, a Kubernetes error, a webhook's answer) and are joined per
metric, so no producer can promise a length: the writer cuts them all, here, and the
CRD's maxLength for each is the same number (tests/unit/test_status_bounds.py checks
both, and that no free-text status field is left without a limit).

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MESSAGE_MAX = 1024  # one line about one thing: a metric, an action, a step
SUMMARY_MAX = 4096  # a guard's message and conditions, which join several of those
CUT = " [cut]"

# Paths in the status as written (camelCase); "*" is every item of a list.
LIMITS: Mapping[tuple[str, ...], int] = {
    ("message",): SUMMARY_MAX,
    ("conditions", "*", "message"): SUMMARY_MAX,
    ("conditions", "*", "reason"): MESSAGE_MAX,
    ("lastEvaluation", "metrics", "*", "message"): MESSAGE_MAX,
    ("lastAction",): MESSAGE_MAX,
    ("readiness", "*", "reason"): MESSAGE_MAX,
    ("incident", "reason"): MESSAGE_MAX,
    ("incident", "reverted", "*", "value"): MESSAGE_MAX,
    ("actions", "*", "reason"): MESSAGE_MAX,
    ("actions", "*", "message"): MESSAGE_MAX,
    ("notifications", "lastError"): MESSAGE_MAX,
    ("outbox", "*", "message"): MESSAGE_MAX,
}


def cut(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its start and a visible mark."""
    if len(text) <= limit:
        return text
    return text[: limit - len(CUT)] + CUT


def bounded(status: dict[str, Any]) -> dict[str, Any]:
    """The status document (camelCase, as written) with every LIMITS field cut to size;
    the input is not changed."""
    out = _copy(status)
    for path, limit in LIMITS.items():
        _cut_at(out, path, limit)
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _cut_at(node: Any, path: tuple[str, ...], limit: int) -> None:
    head, rest = path[0], path[1:]
    if head == "*":
        children = list(enumerate(node)) if isinstance(node, list) else []
    elif isinstance(node, dict) and head in node:
        children = [(head, node[head])]
    else:
        return
    for key, child in children:
        if rest:
            _cut_at(child, rest, limit)
        elif isinstance(child, str):
            node[key] = cut(child, limit)
