"""Read a stored status that does not validate as a whole, keeping every part that does.

Pure: a function of the stored dict.

An unreadable status (an older schema, a hand edit, a restore from a backup of another
version) used to start over as an empty status, silently. That forgot which annotation
values were already handled (a `contain-now` acted on twice) and restarted incident
numbering (see domain/identity.py for why that no longer adopts old markers). Now each
top-level field is kept when it validates on its own, `handledAnnotations` entry by
entry, and what was dropped is named so the operator can say so (a Warning Event and a
log line): a status is never reset silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from releaseguard.domain.models import GuardStatus

HANDLED = "handledAnnotations"


def salvage_status(raw: Mapping[str, Any] | None) -> tuple[GuardStatus, list[str]]:
    """The status, and the fields that had to be dropped ([] when it was readable)."""
    data = dict(raw or {})
    try:
        return GuardStatus.model_validate(data), []
    except ValidationError:
        pass
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in data.items():
        if key == HANDLED and isinstance(value, Mapping):
            good = {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}
            kept[key] = good
            dropped.extend(f"{HANDLED}[{k}]" for k in value if k not in good)
            continue
        try:
            GuardStatus.model_validate({key: value})
        except ValidationError:
            dropped.append(key)
        else:
            kept[key] = value
    try:
        return GuardStatus.model_validate(kept), sorted(dropped)
    except ValidationError:  # fields that only fail together: keep what is safest
        handled = kept.get(HANDLED) or {}
        return GuardStatus(handled_annotations=handled), sorted(set(data) - {HANDLED})


def salvage_message(dropped: list[str]) -> str:
    return (
        "the stored status could not be read whole; dropped "
        + ", ".join(dropped)[:400]
        + " and kept the rest (handled annotations are never forgotten)"
    )
