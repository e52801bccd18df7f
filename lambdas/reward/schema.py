"""A small JSON Schema validator for the subset graders need, compiled once per spec.

Supported keywords: ``type`` (string or list), ``properties``, ``required``,
``additionalProperties`` (boolean or schema), ``items`` (one schema),
``enum``, ``const``, ``minimum``, ``maximum``, ``exclusiveMinimum``,
``exclusiveMaximum``, ``minLength``, ``maxLength``, ``pattern``, ``minItems``,
``maxItems``. Annotations (``title``, ``description``, ``$schema``, ``$id``,
``examples``, ``default``, ``format``) are accepted and ignored. Any other
keyword (``$ref``, ``oneOf``, ...) is rejected when the spec is loaded: silently
ignoring a constraint would make the grader more lenient than its author meant.

Written here rather than imported: the reward Lambda stays dependency-light.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from lambdas.reward.spec import SpecError, child, is_number, item_path

Check = Callable[[Any, str, list[str]], None]  # (instance, instance path, errors)

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
}
_ANNOTATIONS = frozenset({"title", "description", "$schema", "$id", "$comment", "examples", "default", "format"})
_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
    }
)


def _json_equal(a: object, b: object) -> bool:
    # JSON equality: true is not 1, 1 is 1.0.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _count(schema: dict[str, Any], key: str, path: str) -> int:
    value = schema[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError(child(path, key), "must be an integer >= 0")
    return value


def _bound(schema: dict[str, Any], key: str, path: str) -> float:
    value = schema[key]
    if not is_number(value):
        raise SpecError(child(path, key), "must be a number")
    bound: float = value  # is_number: an int or a finite float
    return bound


def compile_schema(schema: object, path: str = "schema") -> Check:
    """A function appending ``"<instance path>: <problem>"`` strings to ``errors`` for an instance."""
    if schema is True or schema == {}:
        return lambda instance, where, errors: None
    if schema is False:
        return lambda instance, where, errors: errors.append(f"{where}: no value is allowed here")
    if not isinstance(schema, dict):
        raise SpecError(path, "must be a JSON Schema object or boolean")
    unknown = sorted(set(schema) - _KEYWORDS - _ANNOTATIONS)
    if unknown:
        raise SpecError(
            child(path, unknown[0]), "unsupported JSON Schema keyword (supported: " + ", ".join(sorted(_KEYWORDS)) + ")"
        )
    checks: list[Check] = []

    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        for index, name in enumerate(names):
            if name not in _TYPES:
                where = (
                    item_path(child(path, "type"), index) if isinstance(schema["type"], list) else child(path, "type")
                )
                raise SpecError(where, f"unknown type {name!r} (expected one of {', '.join(sorted(_TYPES))})")
        tests = [_TYPES[name] for name in names]
        label = " or ".join(names)

        def check_type(instance: Any, where: str, errors: list[str]) -> None:
            if not any(test(instance) for test in tests):
                errors.append(f"{where}: expected {label}")

        checks.append(check_type)

    if "enum" in schema:
        options = schema["enum"]
        if not isinstance(options, list) or not options:
            raise SpecError(child(path, "enum"), "must be a non-empty list")
        checks.append(
            lambda instance, where, errors: (
                None
                if any(_json_equal(instance, option) for option in options)
                else errors.append(f"{where}: not one of the allowed values")
            )
        )
    if "const" in schema:
        constant = schema["const"]
        checks.append(
            lambda instance, where, errors: (
                None if _json_equal(instance, constant) else errors.append(f"{where}: must equal {constant!r}")
            )
        )

    numeric = [
        (key, _bound(schema, key, path))
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
        if key in schema
    ]
    if numeric:

        def check_number(instance: Any, where: str, errors: list[str]) -> None:
            if not _TYPES["number"](instance):
                return
            for key, limit in numeric:
                if (
                    (key == "minimum" and instance < limit)
                    or (key == "maximum" and instance > limit)
                    or (key == "exclusiveMinimum" and instance <= limit)
                    or (key == "exclusiveMaximum" and instance >= limit)
                ):
                    errors.append(f"{where}: violates {key} {limit}")

        checks.append(check_number)

    min_length = _count(schema, "minLength", path) if "minLength" in schema else None
    max_length = _count(schema, "maxLength", path) if "maxLength" in schema else None
    pattern = None
    if "pattern" in schema:
        if not isinstance(schema["pattern"], str):
            raise SpecError(child(path, "pattern"), "must be a regular expression string")
        try:
            pattern = re.compile(schema["pattern"])
        except re.error as exc:
            raise SpecError(child(path, "pattern"), f"invalid regular expression: {exc}") from None
    if min_length is not None or max_length is not None or pattern is not None:

        def check_string(instance: Any, where: str, errors: list[str]) -> None:
            if not isinstance(instance, str):
                return
            if min_length is not None and len(instance) < min_length:
                errors.append(f"{where}: shorter than {min_length}")
            if max_length is not None and len(instance) > max_length:
                errors.append(f"{where}: longer than {max_length}")
            if pattern is not None and not pattern.search(instance):
                errors.append(f"{where}: does not match pattern")

        checks.append(check_string)

    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        raise SpecError(child(path, "properties"), "must be an object")
    property_checks = {
        name: compile_schema(sub, child(child(path, "properties"), name)) for name, sub in properties.items()
    }
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
        raise SpecError(child(path, "required"), "must be a list of strings")
    additional = schema.get("additionalProperties", True)
    additional_check = None if additional is True else compile_schema(additional, child(path, "additionalProperties"))
    if property_checks or required or additional_check is not None:

        def check_object(instance: Any, where: str, errors: list[str]) -> None:
            if not isinstance(instance, dict):
                return
            for name in required:
                if name not in instance:
                    errors.append(f"{where}: missing required property {name!r}")
            for name, value in instance.items():
                sub = property_checks.get(name)
                if sub is not None:
                    sub(value, f"{where}.{name}", errors)
                elif additional_check is not None:
                    if additional is False:
                        errors.append(f"{where}: unexpected property {name!r}")
                    else:
                        additional_check(value, f"{where}.{name}", errors)

        checks.append(check_object)

    items = compile_schema(schema["items"], child(path, "items")) if "items" in schema else None
    min_items = _count(schema, "minItems", path) if "minItems" in schema else None
    max_items = _count(schema, "maxItems", path) if "maxItems" in schema else None
    if items is not None or min_items is not None or max_items is not None:

        def check_array(instance: Any, where: str, errors: list[str]) -> None:
            if not isinstance(instance, list):
                return
            if min_items is not None and len(instance) < min_items:
                errors.append(f"{where}: fewer than {min_items} items")
            if max_items is not None and len(instance) > max_items:
                errors.append(f"{where}: more than {max_items} items")
            if items is not None:
                for index, value in enumerate(instance):
                    items(value, f"{where}[{index}]", errors)

        checks.append(check_array)

    def validate(instance: Any, where: str, errors: list[str]) -> None:
        for check in checks:
            check(instance, where, errors)

    return validate


def validation_errors(check: Check, instance: Any) -> list[str]:
    errors: list[str] = []
    check(instance, "$", errors)
    return errors
