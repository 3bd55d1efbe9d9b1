"""Every free-text field of the status is cut to the CRD's maxLength before it is written
(domain/bounds.py, through GuardStatus.merge_patch), so one long message can never make
the API server reject a status write (issue 11, item 6).

The maximal status is built from the CRD's own status schema: every string at its
schema's maxLength, or 40,000 characters where it has none, every list with two
items. Whatever the producer (an evaluation, an action, a notification), its text goes
through one of these fields.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from releaseguard.domain.bounds import CUT, LIMITS, MESSAGE_MAX, SUMMARY_MAX, bounded, cut
from releaseguard.domain.guard import decide_inactive
from releaseguard.domain.models import GuardStatus, Phase

CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / "releaseguard.yaml"
HUGE = 40_000  # the size of the Prometheus error in issue 11
# Free-text status fields without a maxLength, each copied from a bounded spec field or
# made by the operator from such fields (names, revisions, hashes, ids): never the
# outside world's text.
NOT_MESSAGES = {
    ("lastEvaluation", "metrics", "*", "name"),
    ("release", "revision"),
    ("release", "images", "*"),
    ("release", "podTemplateHash"),
    ("lastKnownGood", "revision"),
    ("lastKnownGood", "images", "*"),
    ("lastKnownGood", "podTemplateHash"),
    ("incident", "reverted", "*", "action"),
    ("incident", "reverted", "*", "object"),
    ("incident", "reverted", "*", "field"),
    ("incident", "reverted", "*", "manager"),
    ("actions", "*", "id"),
    ("actions", "*", "target"),
    ("handledAnnotations", "*"),
    ("knownBad", "*", "hash"),
    ("knownBad", "*", "images", "*"),
    ("outbox", "*", "key"),
    ("outbox", "*", "actionId"),
    ("outbox", "*", "evidence", "*", "name"),
    ("outbox", "*", "evidence", "*", "bound"),
}


@cache
def status_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD_PATH.read_text())
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    return version["schema"]["openAPIV3Schema"]["properties"]["status"]


def strings(schema: dict[str, Any], path: tuple[str, ...] = ()):
    """(path, schema) of every string field; "*" for list items and map values."""
    kind = schema.get("type")
    if kind == "object":
        for key, sub in (schema.get("properties") or {}).items():
            if key != "kopf":
                yield from strings(sub, (*path, key))
        if isinstance(schema.get("additionalProperties"), dict):
            yield from strings(schema["additionalProperties"], (*path, "*"))
    elif kind == "array":
        yield from strings(schema["items"], (*path, "*"))
    elif kind == "string":
        yield path, schema


def maximal(schema: dict[str, Any]) -> Any:
    """The largest valid document for `schema`: strings at maxLength (or HUGE)."""
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        if schema.get("x-kubernetes-preserve-unknown-fields") and not schema.get("properties"):
            return {}
        doc = {k: maximal(s) for k, s in (schema.get("properties") or {}).items()}
        if isinstance(schema.get("additionalProperties"), dict):
            doc |= {f"key-{i}": maximal(schema["additionalProperties"]) for i in range(2)}
        return doc
    if kind == "array":
        return [maximal(schema["items"]) for _ in range(2)]
    if kind == "string":
        if schema.get("format") == "date-time":
            return "2026-11-30T10:00:00Z"
        return "x" * schema.get("maxLength", HUGE)
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return None


def values_at(doc: Any, path: tuple[str, ...]):
    if not path:
        yield doc
        return
    head, rest = path[0], path[1:]
    if head == "*":
        items = (
            doc if isinstance(doc, list) else list(doc.values()) if isinstance(doc, dict) else []
        )
        for item in items:
            yield from values_at(item, rest)
    elif isinstance(doc, dict) and head in doc and doc[head] is not None:
        yield from values_at(doc[head], rest)


def free_text(schema: dict[str, Any]) -> bool:
    return "enum" not in schema and "format" not in schema


def test_every_message_field_has_a_limit_in_the_crd_and_in_the_domain():
    unbounded = {p for p, s in strings(status_schema()) if free_text(s) and "maxLength" not in s}

    assert unbounded == NOT_MESSAGES


@pytest.mark.parametrize("path", sorted(LIMITS), ids=".".join)
def test_each_domain_limit_fits_the_crds_max_length(path):
    schemas = dict(strings(status_schema()))

    assert path in schemas, f"{path} is not a string field of the status"
    assert LIMITS[path] <= schemas[path]["maxLength"]


def test_a_maximal_status_is_written_within_every_schema_limit():
    doc = maximal(status_schema())
    status = GuardStatus.model_validate(doc)

    patch = status.merge_patch()

    checked = 0
    for path, schema in strings(status_schema()):
        for value in values_at(patch, path):
            if isinstance(value, str) and "maxLength" in schema:
                assert len(value) <= schema["maxLength"], path
                checked += 1
    # Every LIMITS field was filled beyond its limit and came out cut.
    for path, limit in LIMITS.items():
        found = list(values_at(patch, path))
        assert found, f"{path}: not in the maximal status (model field missing?)"
        assert all(len(v) <= limit for v in found), path
    assert checked >= 2 * len(LIMITS)


def test_a_40000_character_error_through_decide_inactive_fits():
    now = datetime(2026, 11, 30, tzinfo=UTC)
    message = "Prometheus error: " + "e" * 40_000

    decision = decide_inactive(GuardStatus(), Phase.INVALID, "BadQuery", message, 1, now)
    patch = decision.status.merge_patch()

    assert len(patch["message"]) == SUMMARY_MAX
    assert patch["message"].endswith(CUT)
    assert all(len(c["message"]) <= SUMMARY_MAX for c in patch["conditions"])
    assert decision.status.message == message  # only the written copy is cut


@pytest.mark.parametrize("text", ["", "short", "x" * MESSAGE_MAX])
def test_text_within_the_limit_is_kept(text):
    assert cut(text, MESSAGE_MAX) == text


def test_bounded_leaves_its_input_alone():
    doc = {"message": "m" * (SUMMARY_MAX + 1), "actions": [{"message": "a" * 5000}]}

    out = bounded(doc)

    assert len(doc["message"]) == SUMMARY_MAX + 1
    assert len(out["message"]) == SUMMARY_MAX
    assert len(out["actions"][0]["message"]) == MESSAGE_MAX
