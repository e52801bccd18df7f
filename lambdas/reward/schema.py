"""JSON Schema validation through ``fastjsonschema``, compiled once per spec.

``fastjsonschema`` is the validator AWS Lambda Powertools' validation utility
uses; it implements drafts 4, 6 and 7 (``$schema`` picks one, draft 7 by
default): ``anyOf``, ``oneOf``, ``allOf``, ``not``, ``if``/``then``/``else``,
local ``$ref`` (``#/definitions/...``, ``#/$defs/...``), ``format`` and the rest.

Two checks are added at load time, so a schema cannot quietly mean less than its
author wrote: a keyword no draft defines (a typo such as ``requried``) is an
error naming its path, and a ``$ref`` to anything but the schema itself (a URL,
a file) is refused: the reward function never fetches schemas at run time.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from lambdas.reward.spec import SpecError, child, item_path

if TYPE_CHECKING:
    from fastjsonschema import JsonSchemaValueException

Check = Callable[[Any], list[str]]  # instance -> every way it breaks the schema

# Every keyword of drafts 4 to 7, plus annotations and the $defs container of later drafts.
_KEYWORDS = frozenset(
    {
        *("$schema", "$id", "id", "$ref", "$comment", "$defs", "definitions"),
        *("title", "description", "default", "examples", "readOnly", "writeOnly", "deprecated"),
        *("type", "enum", "const", "format", "contentMediaType", "contentEncoding"),
        *("multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"),
        *("maxLength", "minLength", "pattern"),
        *("items", "additionalItems", "maxItems", "minItems", "uniqueItems", "contains"),
        *("maxProperties", "minProperties", "required", "properties", "patternProperties"),
        *("additionalProperties", "dependencies", "propertyNames"),
        *("if", "then", "else", "allOf", "anyOf", "oneOf", "not"),
    }
)
_ONE_SCHEMA = ("additionalItems", "additionalProperties", "contains", "propertyNames", "if", "then", "else", "not")
_SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_LOCAL_REF = re.compile(r"^#(/.*)?$")
_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})


def _no_remote(uri: str) -> Any:
    raise SpecError("schema", f"$ref {uri!r}: only references inside the schema (#/...) are allowed")


_NO_REMOTE = {scheme: _no_remote for scheme in ("http", "https", "file", "ftp", "urn", "")}


def _check_keywords(schema: Any, path: str) -> None:
    """Unknown keywords and non-local ``$ref`` anywhere in ``schema`` are :class:`SpecError` at their path."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise SpecError(path, "must be a JSON Schema (an object or a boolean)")
    for key, value in schema.items():
        where = child(path, key)
        if key not in _KEYWORDS:
            raise SpecError(where, "not a JSON Schema keyword (drafts 4 to 7)")
        if key == "$ref" and (not isinstance(value, str) or not _LOCAL_REF.match(value)):
            raise SpecError(where, "only references inside the schema (#/...) are allowed")
        if key == "type" and not set(value if isinstance(value, list) else [value]) <= _TYPES:
            raise SpecError(where, f"must be one of {', '.join(sorted(_TYPES))} (or a list of them), got {value!r}")
        if key in _ONE_SCHEMA:
            _check_keywords(value, where)
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            for name, sub in value.items():
                _check_keywords(sub, child(where, name))
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            for index, sub in enumerate(value):
                _check_keywords(sub, item_path(where, index))
        elif key == "items":
            subs = value if isinstance(value, list) else [value]
            for index, sub in enumerate(subs):
                _check_keywords(sub, item_path(where, index) if isinstance(value, list) else where)
        elif key == "dependencies" and isinstance(value, dict):
            for name, sub in value.items():
                if not isinstance(sub, list):
                    _check_keywords(sub, child(where, name))


def compile_schema(schema: object, path: str = "schema") -> Check:
    """A validator for ``schema``; an invalid schema is a :class:`SpecError` naming ``path``."""
    _check_keywords(schema, path)
    # Imported here: only specs with a schema pay for it at cold start.
    from fastjsonschema import (
        JsonSchemaDefinitionException,
        JsonSchemaValueException,
        JsonSchemaValuesException,
    )
    from fastjsonschema import compile as compile_validator

    try:
        validate = compile_validator(cast(dict[str, Any] | bool, schema), handlers=_NO_REMOTE, fast_fail=False)
    except SpecError as exc:
        raise SpecError(path, exc.message) from None
    except JsonSchemaDefinitionException as exc:
        raise SpecError(path, f"invalid JSON Schema: {exc}") from None
    except (re.error, ValueError, TypeError, KeyError) as exc:
        raise SpecError(path, f"invalid JSON Schema: {type(exc).__name__}: {exc}") from None

    # fastjsonschema writes a property's "default" into the instance it validates: a schema with
    # defaults checks a copy, so a value other parts of a spec share is never changed.
    copied = _has_defaults(schema)

    def check(instance: Any) -> list[str]:
        try:
            validate(copy.deepcopy(instance) if copied else instance)
        except JsonSchemaValuesException as exc:
            return [_message(error) for error in exc.errors]
        except JsonSchemaValueException as exc:
            return [_message(exc)]
        return []

    return check


def _has_defaults(schema: object) -> bool:
    """Whether a ``default`` key appears anywhere in ``schema``."""
    if isinstance(schema, dict):
        return "default" in schema or any(_has_defaults(value) for value in schema.values())
    if isinstance(schema, list):
        return any(_has_defaults(value) for value in schema)
    return False


def validation_errors(check: Check, instance: Any) -> list[str]:
    """Every way ``instance`` breaks the schema (``$.year: must be integer``); empty when it validates."""
    return check(instance)


def _message(error: JsonSchemaValueException) -> str:
    name = str(error.name or "data")
    where = "$" + name[len("data") :] if name.startswith("data") else name
    message = str(error.message or "")
    if message.startswith(name):
        message = message[len(name) :].lstrip()
    return f"{where}: {message}"
