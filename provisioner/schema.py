"""A small validator for Kubernetes structural schemas (the OpenAPI v3 subset CRDs accept).

Used where no API server is there to do it: ``fleetplane render`` checks a claim against its
definition before rendering, and :mod:`provisioner.xrd` refuses a definition whose schema the API
server would refuse. It covers what definitions use — types, ``required``, ``enum``, bounds, lengths,
``pattern``, ``items``, ``additionalProperties``, unknown fields and defaults — and leaves out what it
cannot judge offline (``x-kubernetes-validations`` CEL rules, ``format``, the logical junctors).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TYPES = ("object", "array", "string", "integer", "number", "boolean")
# Keywords the API server refuses in a structural schema.
FORBIDDEN_KEYWORDS = (
    "$ref",
    "$schema",
    "definitions",
    "dependencies",
    "patternProperties",
    "additionalItems",
    "id",
)
JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
# Inside a junctor a schema may only add constraints; these belong to the node itself.
NOT_IN_JUNCTORS = ("type", "default", "nullable", "additionalProperties", "description")

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a value or a schema: where (``field``), what, and what to do about it."""

    field: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message} — {self.fix}"


def child(path: str, key: str) -> str:
    """``path.key``, or ``path["key"]`` when the key is not a plain name (labels such as ``a.b/c``)."""
    if _IDENTIFIER.match(key):
        return f"{path}.{key}" if path else key
    return f'{path}["{key}"]'


def apply_defaults(value: Any, schema: Mapping[str, Any]) -> Any:
    """A copy of ``value`` with the schema's defaults filled in, as the API server does on write:
    a default applies to an absent field of an object that is itself present."""
    if isinstance(value, Mapping) and schema.get("type", "object") == "object":
        out = {k: copy.deepcopy(v) for k, v in value.items()}
        properties: Mapping[str, Any] = schema.get("properties") or {}
        for name, sub in properties.items():
            if name not in out and "default" in sub:
                out[name] = copy.deepcopy(sub["default"])
        for name in list(out):
            sub = properties.get(name)
            if sub is None and isinstance(schema.get("additionalProperties"), Mapping):
                sub = schema["additionalProperties"]
            if sub is not None:
                out[name] = apply_defaults(out[name], sub)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [apply_defaults(item, schema["items"]) for item in value]
    return copy.deepcopy(value)


def validate(value: Any, schema: Mapping[str, Any], path: str = "") -> list[Problem]:
    """Every problem of ``value`` against ``schema``; ``path`` prefixes field names (``spec``)."""
    problems: list[Problem] = []
    _validate(value, schema, path, problems)
    return problems


def _validate(value: Any, schema: Mapping[str, Any], path: str, out: list[Problem]) -> None:
    where = path or "(root)"
    if value is None:
        if not schema.get("nullable"):
            out.append(Problem(where, "is null", "give it a value or remove the field"))
        return
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            out.append(
                Problem(where, f"is {_describe(value)}, expected an integer or a string", "fix its value")
            )
        return
    kind = schema.get("type")
    if kind and not _has_type(value, kind):
        out.append(Problem(where, f"is {_describe(value)}, expected {_article(kind)}", _type_fix(kind)))
        return
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(str(c) for c in schema["enum"])
        out.append(Problem(where, f"is {value!r}, not one of {choices}", f"use one of {choices}"))
    if isinstance(value, str):
        _validate_string(value, schema, where, out)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _validate_number(value, schema, where, out)
    elif isinstance(value, list):
        _validate_array(value, schema, path, out)
    elif isinstance(value, Mapping):
        _validate_object(value, schema, path, out)


def _validate_string(value: str, schema: Mapping[str, Any], where: str, out: list[Problem]) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        fix = (
            "give it a value"
            if schema["minLength"] == 1
            else f"use at least {schema['minLength']} characters"
        )
        out.append(
            Problem(where, f"is {len(value)} characters long, shorter than {schema['minLength']}", fix)
        )
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        out.append(
            Problem(
                where,
                f"is {len(value)} characters long, longer than {schema['maxLength']}",
                f"use at most {schema['maxLength']} characters",
            )
        )
    if "pattern" in schema and not re.search(schema["pattern"], value):
        out.append(
            Problem(where, f"{value!r} does not match {schema['pattern']}", "use a value the pattern accepts")
        )


def _validate_number(value: float, schema: Mapping[str, Any], where: str, out: list[Problem]) -> None:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None:
        exclusive = bool(schema.get("exclusiveMinimum"))
        if value < low or (exclusive and value == low):
            bound = f"more than {low}" if exclusive else f"{low} or more"
            out.append(Problem(where, f"is {value}, below the minimum {low}", f"use {bound}"))
    if high is not None:
        exclusive = bool(schema.get("exclusiveMaximum"))
        if value > high or (exclusive and value == high):
            bound = f"less than {high}" if exclusive else f"{high} or less"
            out.append(Problem(where, f"is {value}, above the maximum {high}", f"use {bound}"))


def _validate_array(value: list[Any], schema: Mapping[str, Any], path: str, out: list[Problem]) -> None:
    where = path or "(root)"
    if "minItems" in schema and len(value) < schema["minItems"]:
        out.append(Problem(where, f"has {len(value)} items", f"give it at least {schema['minItems']}"))
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        out.append(Problem(where, f"has {len(value)} items", f"give it at most {schema['maxItems']}"))
    items = schema.get("items")
    if isinstance(items, Mapping):
        for i, item in enumerate(value):
            _validate(item, items, f"{path}[{i}]", out)


def _validate_object(
    value: Mapping[str, Any], schema: Mapping[str, Any], path: str, out: list[Problem]
) -> None:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    for name in schema.get("required") or ():
        if name not in value:
            description = (properties.get(name) or {}).get("description")
            fix = f"set it ({description})" if description else "set it"
            out.append(Problem(child(path, name), "is required but missing", fix))
    additional = schema.get("additionalProperties")
    open_ended = bool(schema.get("x-kubernetes-preserve-unknown-fields")) or additional is True
    for name, item in value.items():
        key = str(name)
        if key in properties:
            _validate(item, properties[key], child(path, key), out)
        elif isinstance(additional, Mapping):
            _validate(item, additional, child(path, key), out)
        elif not open_ended:
            known = ", ".join(sorted(properties)) or "none"
            out.append(
                Problem(
                    child(path, key),
                    "is not a known field",
                    f"remove it or check its spelling (known: {known})",
                )
            )


def structural_problems(schema: Any, path: str) -> list[Problem]:
    """What makes ``schema`` non-structural (the API server would refuse the CRD), by field path."""
    problems: list[Problem] = []
    _structural(schema, path, problems, in_junctor=False)
    return problems


def _structural(schema: Any, path: str, out: list[Problem], *, in_junctor: bool) -> None:
    if not isinstance(schema, Mapping):
        out.append(
            Problem(path, f"is {_describe(schema)}, not a schema", "write a schema object (type: ...)")
        )
        return
    for keyword in FORBIDDEN_KEYWORDS:
        if keyword in schema:
            out.append(
                Problem(
                    f"{path}.{keyword}", "is not allowed in a structural schema", "inline the schema instead"
                )
            )
    if schema.get("uniqueItems") is True:
        out.append(
            Problem(
                f"{path}.uniqueItems",
                "may not be true in a CRD",
                "remove it (use x-kubernetes-list-type: set)",
            )
        )
    if in_junctor:
        for keyword in NOT_IN_JUNCTORS:
            if keyword in schema:
                out.append(
                    Problem(
                        f"{path}.{keyword}",
                        "is not allowed inside allOf/anyOf/oneOf/not",
                        "move it to the schema that holds the junctor",
                    )
                )
    else:
        _structural_type(schema, path, out)
    properties = schema.get("properties")
    if properties is not None:
        if not isinstance(properties, Mapping):
            out.append(Problem(f"{path}.properties", "is not a mapping", "map each field name to its schema"))
        else:
            for name, sub in properties.items():
                _structural(sub, child(f"{path}.properties", str(name)), out, in_junctor=in_junctor)
    additional = schema.get("additionalProperties")
    if additional is not None:
        if properties is not None:
            out.append(
                Problem(
                    f"{path}.additionalProperties",
                    "is set together with properties",
                    "use one of them (properties for known fields, additionalProperties for a map)",
                )
            )
        if isinstance(additional, Mapping):
            _structural(additional, f"{path}.additionalProperties", out, in_junctor=in_junctor)
        elif additional is not True:
            out.append(
                Problem(f"{path}.additionalProperties", "must be a schema", "give the map's values a schema")
            )
    items = schema.get("items")
    if items is not None:
        if isinstance(items, Mapping):
            _structural(items, f"{path}.items", out, in_junctor=in_junctor)
        else:
            out.append(
                Problem(f"{path}.items", "must be one schema, not a list", "give every item one schema")
            )
    for junctor in JUNCTORS:
        if junctor not in schema:
            continue
        subs = schema[junctor] if junctor != "not" else [schema[junctor]]
        for i, sub in enumerate(subs if isinstance(subs, list) else [subs]):
            _structural(sub, f"{path}.{junctor}[{i}]", out, in_junctor=True)


def _structural_type(schema: Mapping[str, Any], path: str, out: list[Problem]) -> None:
    kind = schema.get("type")
    if kind is None:
        if not (schema.get("x-kubernetes-int-or-string") or schema.get("x-kubernetes-embedded-resource")):
            out.append(Problem(f"{path}.type", "is missing", f"set type to one of {', '.join(TYPES)}"))
        return
    if kind not in TYPES:
        out.append(Problem(f"{path}.type", f"is {kind!r}", f"use one of {', '.join(TYPES)}"))
        return
    if kind == "array" and "items" not in schema:
        out.append(Problem(f"{path}.items", "is missing for an array", "give the array's items a schema"))


def _has_type(value: Any, kind: str) -> bool:
    if kind == "object":
        return isinstance(value, Mapping)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return "null" if value is None else type(value).__name__


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _type_fix(kind: str) -> str:
    return {
        "integer": "write a whole number, without quotes",
        "number": "write a number, without quotes",
        "boolean": "write true or false, without quotes",
        "string": "quote the value",
        "object": "write a mapping (key: value lines)",
        "array": "write a list (- item lines)",
    }[kind]
