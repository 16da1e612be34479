"""Check request bodies against RunPod's REST v2 schema before anything is written or sent.

runpod-api-v2.openapi.json beside this file is RunPod's published OpenAPI 3.1 document. OpenAPI 3.1
schemas are JSON Schema 2020-12, so a body is checked by a 2020-12 validator whose root is a
`$ref` into the whole document: every nested `$ref` (ContainerConfig → BaseContainerConfig,
TemplateMounts → PersistentMount) then resolves, and `unevaluatedProperties: false` sees the
properties all those `allOf` branches declare.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SCHEMA_FILE = "runpod-api-v2.openapi.json"
CREATE_TEMPLATE = "CreateTemplateRequest"
UPDATE_TEMPLATE = "UpdateTemplateRequest"

_DOCUMENT_URI = "urn:ignition:runpod-api-v2"


def openapi_document() -> dict[str, Any]:
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@cache
def _validator(schema_name: str) -> Draft202012Validator:
    resource = DRAFT202012.create_resource(openapi_document())
    registry: Registry[Any] = Registry().with_resource(_DOCUMENT_URI, resource)
    root = {"$ref": f"{_DOCUMENT_URI}#/components/schemas/{schema_name}"}
    return Draft202012Validator(root, registry=registry)


def request_errors(body: Any, schema_name: str) -> list[str]:
    """Every way `body` breaks `components/schemas/<schema_name>`, as `$.path: message` lines.

    Sorted, so the same body always reports the same lines in the same order.
    """
    errors = list(_validator(schema_name).iter_errors(body))
    # An `allOf` branch that fails drops its annotations, so one bad value also makes every key
    # that branch declares "unevaluated": report the real failures and leave that echo out.
    real = [e for e in errors if e.validator != "unevaluatedProperties"]
    return sorted(_describe(error) for error in (real or errors))


def _describe(error: ValidationError) -> str:
    location = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"${location}: {error.message}"
