"""A small JSON Schema (draft 2020-12) validator for the subset pydantic emits.

The ``jsonschema`` package is not installed here, and validating a payload by
round-tripping it through the same pydantic model that produced the schema would not
check the *published* schema at all. This validator reads the schema document as a
dashboard would, and refuses any keyword it does not implement, so it cannot pass a
document by ignoring what it does not understand.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

__all__ = ["SchemaViolation", "validate"]

_ANNOTATIONS = {"title", "description", "default", "examples", "$schema", "$id"}
# Extra top-level keys a groundlink schema document carries (its own envelope).
_ENVELOPE = {"ts", "seq", "schema"}
_KNOWN = _ANNOTATIONS | {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "anyOf",
    "allOf",
    "oneOf",
    "$ref",
    "$defs",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minItems",
    "maxItems",
    "uniqueItems",
}


class SchemaViolation(AssertionError):
    """The instance does not match the schema (message: JSON path and reason)."""


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    raise SchemaViolation(f"unknown type keyword value {kind!r}")


def validate(instance: Any, schema: dict[str, Any], *, root: dict[str, Any] | None = None) -> None:
    """Raise SchemaViolation if ``instance`` does not satisfy ``schema``."""
    _check(instance, schema, root if root is not None else schema, "$", top=True)


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str, top: bool) -> None:
    unknown = set(schema) - _KNOWN - (_ENVELOPE if top else set())
    if unknown:
        raise SchemaViolation(f"{path}: validator does not implement {sorted(unknown)}")
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/$defs/"):
            raise SchemaViolation(f"{path}: unsupported $ref {ref!r}")
        _check(value, root["$defs"][ref.split("/")[-1]], root, path, top=False)
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(value, k) for k in kinds):
            raise SchemaViolation(f"{path}: {value!r} is not of type {kinds}")
    if "const" in schema and value != schema["const"]:
        raise SchemaViolation(f"{path}: {value!r} != const {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaViolation(f"{path}: {value!r} not in {schema['enum']}")
    if "anyOf" in schema:
        errors = []
        for option in schema["anyOf"]:
            try:
                _check(value, option, root, path, top=False)
                break
            except SchemaViolation as exc:
                errors.append(str(exc))
        else:
            raise SchemaViolation(f"{path}: matches no anyOf option ({'; '.join(errors)})")
    if "oneOf" in schema:
        matches = 0
        for option in schema["oneOf"]:
            try:
                _check(value, option, root, path, top=False)
                matches += 1
            except SchemaViolation:
                pass
        if matches != 1:
            raise SchemaViolation(f"{path}: matches {matches} oneOf options, not exactly 1")
    for option in schema.get("allOf", []):
        _check(value, option, root, path, top=False)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaViolation(f"{path}: {value} < minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaViolation(f"{path}: {value} > maximum {schema['maximum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            raise SchemaViolation(f"{path}: {value} <= exclusiveMinimum")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            raise SchemaViolation(f"{path}: {value} >= exclusiveMaximum")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise SchemaViolation(f"{path}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise SchemaViolation(f"{path}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise SchemaViolation(f"{path}: {value!r} does not match {schema['pattern']!r}")
        if schema.get("format") == "date-time":
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError as exc:
                raise SchemaViolation(f"{path}: {value!r} is not a date-time") from exc
            if parsed.tzinfo is None:
                raise SchemaViolation(f"{path}: {value!r} has no time zone (RFC 3339)")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise SchemaViolation(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise SchemaViolation(f"{path}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(value):
                _check(item, schema["items"], root, f"{path}[{i}]", top=False)
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                raise SchemaViolation(f"{path}: required property {name!r} is missing")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                _check(item, props[key], root, f"{path}.{key}", top=False)
            elif extra is False:
                raise SchemaViolation(f"{path}: additional property {key!r} is not allowed")
            elif isinstance(extra, dict):
                _check(item, extra, root, f"{path}.{key}", top=False)
