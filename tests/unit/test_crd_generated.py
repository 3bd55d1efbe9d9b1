"""The committed CRD is the one `make crd` generates from the models (releaseguard/crd.py),
and the generator turns pydantic's JSON schema into a Kubernetes structural schema.

What the CRD must hold whatever the generator does (a description on every field, bounded
spec strings, a status the API server keeps whole) is checked in test_crd_matches_models.py;
how the API server applies it, in tests/e2e/test_crd_validation.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from releaseguard import crd
from releaseguard.domain.crdschema import Kube, dns1123_name, rule

CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / "releaseguard.yaml"


def test_the_committed_crd_is_the_generated_one() -> None:
    committed = CRD_PATH.read_text()
    generated = crd.render()
    if committed != generated:
        semantic = crd.differences(yaml.safe_load(committed), yaml.safe_load(generated))
        pytest.fail(
            "crds/releaseguard.yaml is not what the models generate: run `make crd`.\n"
            + ("\n".join(semantic[:40]) if semantic else "(only the layout differs)")
        )


def test_the_rendered_yaml_loads_back_as_the_definition() -> None:
    assert yaml.safe_load(crd.render()) == crd.definition()


def _nodes(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found += _nodes(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _nodes(value, f"{path}[{i}]")
    return found


def test_the_schema_is_structural() -> None:
    """No JSON-schema construct the API server refuses or that pydantic adds for itself."""
    schema = crd.open_api_schema()
    banned = {"$ref", "$defs", "anyOf", "oneOf", "allOf", "title", "const"}
    for path, node in _nodes(schema):
        if path.endswith(".properties") or path.endswith(".default"):
            continue  # field names and default values, not schema keywords
        assert not banned & node.keys(), f"{path}: {sorted(banned & node.keys())}"
        assert node.get("type") != "null", path
        assert "default" not in node or node["default"] is not None, path


# ------------------------------------------------------------ the generator, on small models


class _Part(BaseModel):
    """One part (the class docstring: the description of a list's items)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    size: Annotated[int, Field(ge=0, le=9)] = 1
    """How big,
    wrapped over two lines."""


class _Whole(BaseModel):
    """A whole."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={"x-kubernetes-validations": [rule("has(self.name)", "needs a name")]},
    )

    name: Annotated[str, Field(min_length=1), Kube(max_length=63, rules=[dns1123_name("a Job's")])]
    """The name."""
    ratio: Annotated[float, Field(gt=0)] | None = None
    """A ratio, optional."""
    part: _Part = _Part()
    """The field's description wins over its class docstring."""
    parts: list[_Part] = []
    """All the parts."""
    free: dict[str, Any] = {}
    """Anything."""
    labels: dict[str, Annotated[str, Kube(description="A label value.")]] = {}
    """Labels."""
    tags: Annotated[
        list[Annotated[str, Kube(max_length=8, description="A tag.")]], Kube(max_items=3)
    ]
    """Tags."""


@pytest.fixture(scope="module")
def whole() -> dict[str, Any]:
    return crd._model_schema(_Whole, "whole")


def test_optional_fields_are_not_required_and_have_no_null(whole: dict[str, Any]) -> None:
    assert whole["required"] == ["name", "tags"]
    assert whole["properties"]["ratio"] == {
        "type": "number",
        "description": "A ratio, optional.",
        "minimum": 0,
        "exclusiveMinimum": True,
    }


def test_descriptions_come_from_attribute_and_class_docstrings(whole: dict[str, Any]) -> None:
    props = whole["properties"]
    assert whole["description"] == "A whole."
    assert props["part"]["description"] == "The field's description wins over its class docstring."
    assert props["parts"]["items"]["description"] == (
        "One part (the class docstring: the description of a list's items)."
    )
    assert props["part"]["properties"]["size"]["description"] == "How big, wrapped over two lines."


def test_model_bounds_and_kube_keywords_reach_the_schema(whole: dict[str, Any]) -> None:
    props = whole["properties"]
    assert props["name"]["minLength"] == 1 and props["name"]["maxLength"] == 63
    assert props["name"]["x-kubernetes-validations"][0]["message"].startswith(
        "must be a DNS-1123 name like a Job's"
    )
    assert whole["x-kubernetes-validations"] == [
        {"rule": "has(self.name)", "message": "needs a name"}
    ]
    size = props["part"]["properties"]["size"]
    assert (size["minimum"], size["maximum"], size["default"]) == (0, 9, 1)
    assert props["tags"]["maxItems"] == 3
    assert props["tags"]["items"] == {"type": "string", "description": "A tag.", "maxLength": 8}
    assert props["labels"]["additionalProperties"] == {
        "type": "string",
        "description": "A label value.",
    }


def test_kube_keywords_do_not_change_what_the_model_accepts() -> None:
    """maxLength and CEL rules are for the API server only."""
    long_name = "Not_A_DNS_Name" * 10
    assert _Whole(name=long_name, tags=["much-longer-than-8"] * 5).name == long_name


def test_defaults_as_the_api_server_applies_them(whole: dict[str, Any]) -> None:
    props = whole["properties"]
    assert props["part"]["default"] == {}  # the object's own fields' defaults fill it in
    assert "default" not in props["parts"]  # an empty list is the same as none
    assert "default" not in props["ratio"]  # None: left out
    assert props["free"] == {
        "type": "object",
        "description": "Anything.",
        "x-kubernetes-preserve-unknown-fields": True,
    }


def test_a_union_of_two_types_is_refused() -> None:
    class Either(BaseModel):
        value: int | str

    with pytest.raises(crd.SchemaError, match=r"either\.value: a union of 2 types"):
        crd._model_schema(Either, "either")


def test_differences_name_the_path() -> None:
    committed = crd.definition()
    generated = crd.definition()
    spec = generated["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"]["intervalSeconds"]["minimum"] = 0
    del spec["properties"]["suspend"]
    found = crd.differences(committed, generated)
    prefix = ".spec.versions[0].schema.openAPIV3Schema.properties.spec.properties"
    assert found == [
        f"{prefix}.intervalSeconds.minimum: 1 committed, 0 generated",
        f"{prefix}.suspend: only in the committed file",
    ]
    assert crd.differences(committed, crd.definition()) == []
