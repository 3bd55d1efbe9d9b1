"""What the CRD's schema says about a model field beyond what pydantic checks.

The CRD (crds/releaseguard.yaml) is generated from the models by releaseguard.crd. Most
of it comes from pydantic's JSON schema (types, required, defaults, enums, ge/le/gt,
min_length/max_length); `Kube` adds the keywords that only the API server checks, at
apply time: maxLength on free text, CEL rules (`x-kubernetes-validations`), list types,
kept unknown fields. Attached in `Annotated[...]`, it changes the JSON schema of the
type it annotates and nothing else: pydantic's validation ignores it.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from pydantic import GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

# A name of most namespaced objects (ConfigMap, Deployment, Secret, Job, HTTPRoute).
DNS1123_SUBDOMAIN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A Service's name.
DNS1035_LABEL = "^[a-z]([-a-z0-9]*[a-z0-9])?$"
# A ConfigMap or Secret data key.
DATA_KEY = "^[-._a-zA-Z0-9]+$"
# A label value (and the name part of a label key).
LABEL_VALUE = "^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
# A label key: an optional DNS-1123 prefix and '/', then a name.
LABEL_KEY = (
    "^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    "[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


def rule(expression: str, message: str) -> dict[str, str]:
    """One CEL rule of `x-kubernetes-validations`, with the message the user sees."""
    return {"rule": expression, "message": message}


def matches(pattern: str, message: str) -> dict[str, str]:
    """A CEL rule that the string matches `pattern` (a CEL rule, not an OpenAPI pattern,
    so that the message can say what is expected)."""
    return rule(f"self.matches('{pattern}')", message)


def dns1123_name(whose: str) -> dict[str, str]:
    """The rule for a DNS-1123 name like `whose` (e.g. "a Deployment's")."""
    return matches(
        DNS1123_SUBDOMAIN,
        f"must be a DNS-1123 name like {whose}: lowercase letters, digits, '-' and '.', "
        "starting and ending with a letter or digit",
    )


def http_url(field: str, example: str) -> dict[str, str]:
    """The rule for an absolute http(s) URL in `field`."""
    return rule(
        "isURL(self) && url(self).getScheme() in ['http', 'https'] && "
        "url(self).getHostname() != ''",
        f"{field} must be an absolute http or https URL, like {example}",
    )


class Kube:
    """OpenAPI keywords for the CRD only: `Annotated[str, Kube(max_length=253,
    rules=[...])]`.

    min_length/max_length/max_items bound text and lists for the API server (the models do not
    check them: an object the API server accepted is within them); rules are CEL
    `x-kubernetes-validations`; `extra` is any other keyword, as written in the CRD
    (e.g. {"x-kubernetes-list-type": "set"}); description documents a type that has no
    field of its own (the items of a list of strings).
    """

    def __init__(
        self,
        *,
        min_length: int | None = None,
        max_length: int | None = None,
        max_items: int | None = None,
        rules: list[dict[str, str]] | None = None,
        description: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        keywords: dict[str, Any] = {}
        if description is not None:
            keywords["description"] = description
        if min_length is not None:
            keywords["minLength"] = min_length
        if max_length is not None:
            keywords["maxLength"] = max_length
        if max_items is not None:
            keywords["maxItems"] = max_items
        if rules:
            keywords["x-kubernetes-validations"] = list(rules)
        keywords.update(extra or {})
        self.keywords = keywords

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = dict(handler(core_schema))
        schema.update(self.keywords)
        return schema

    def __repr__(self) -> str:
        return f"Kube({self.keywords!r})"
