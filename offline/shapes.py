"""Check API parameters against botocore's service models, as the real service would.

One walker, :func:`shape_problems`, checks a value against a botocore shape: member
names, required members, types, enums, patterns, lengths and numeric ranges.
It serves two callers:

- requests (:func:`request_problems`, :func:`validate_request`): the parameters a
  simulated service receives at run time;
- Task states (:func:`task_problems`, :func:`definition_problems`): the
  ``Parameters`` of a state machine definition, where ``Key.$`` names the member
  ``Key`` and holds a path or intrinsic function that only run time can check.

botocore's own ``ParamValidator`` leaves enums, maximum lengths, patterns and
ranges to the service, which is where real requests fail (``ml.ml.g5.xlarge``, a
70-character job name, an underscore in a model name), so this module does not
use it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import botocore.session
from botocore.model import OperationModel, Shape

from offline.asl import iter_states

# Members Step Functions passes as JSON where the API has bytes: Lambda's Invoke Payload.
JSON_MEMBERS: dict[tuple[str, str], frozenset[str]] = {("lambda", "Invoke"): frozenset({"Payload"})}
_RESOURCE = re.compile(
    r"arn:aws[a-z-]*:states:::(?:aws-sdk:)?(?P<service>[a-z0-9-]+):(?P<action>[A-Za-z0-9]+)"
    r"(?:\.sync(?::2)?|\.waitForTaskToken)?"
)
# Integration service names that botocore spells differently.
_SERVICE_ALIASES = {"states": "stepfunctions"}
# Optimized integrations whose API spells members in camelCase and whose Step Functions parameters capitalize each
# member's first letter (``JobName`` for Bedrock's ``jobName``; the CDK's BedrockCreateModelCustomizationJob
# renders them so), as every ``aws-sdk`` integration does.
PASCAL_CASE_SERVICES = frozenset({"bedrock"})


class RequestValidationError(ValueError):
    """A request that the real service would reject; ``problems`` lists every reason."""

    def __init__(self, service: str, operation: str, problems: list[str]) -> None:
        self.service = service
        self.operation = operation
        self.problems = problems
        super().__init__(f"{service}:{operation} request rejected: " + "; ".join(problems))


@cache
def operation_model(service: str, operation: str) -> OperationModel:
    return botocore.session.get_session().get_service_model(service).operation_model(operation)


def operation_of(resource: str) -> tuple[str, str]:
    """The botocore ``(service, operation)`` a Task's ``Resource`` calls.

    ``arn:aws:states:::sagemaker:createTrainingJob.sync`` -> ``("sagemaker", "CreateTrainingJob")``;
    optimized and ``aws-sdk`` integrations alike. Raises ``ValueError`` for anything else
    (an activity, a bare Lambda ARN).
    """
    match = _RESOURCE.fullmatch(resource)
    if match is None:
        raise ValueError(f"not a service integration: {resource}")
    action = match["action"]
    return _SERVICE_ALIASES.get(match["service"], match["service"]), action[0].upper() + action[1:]


# -- the walker ---------------------------------------------------------------------------------


def shape_problems(
    shape: Shape,
    value: Any,
    where: str,
    *,
    paths_allowed: bool = False,
    json_members: frozenset[str] = frozenset(),
    names_only: bool = False,
    pascal_case: bool = False,
) -> list[str]:
    """Every reason ``value`` does not fit ``shape`` (empty when it fits).

    ``paths_allowed``: keys ``Name.$`` stand for member ``Name`` and hold a path or
    intrinsic function (definition parameters). ``json_members`` (top level) hold any JSON.
    ``names_only``: check member names alone, as ``CreateStateMachine`` does for the
    parameters of an optimized integration; values are the service's to refuse at run time.
    ``pascal_case``: members are written with a capital first letter (``ModelIdentifier`` for
    ``modelIdentifier``), as ``aws-sdk`` integrations and the Bedrock optimized integration write them.
    """
    rules = _Rules(paths_allowed, names_only, pascal_case)
    return list(_problems(shape, value, where, rules, json_members))


@dataclass(frozen=True)
class _Rules:
    paths: bool
    names_only: bool
    pascal_case: bool = False


def _problems(shape: Shape, value: Any, where: str, rules: _Rules, json_members: frozenset[str]) -> Iterator[str]:
    kind = shape.type_name
    if shape.metadata.get("document"):
        return  # a document member (Converse's additionalModelRequestFields, a tool's JSON schema): any JSON value
    if kind == "structure":
        yield from _structure(shape, value, where, rules, json_members)
    elif kind == "list":
        if not isinstance(value, list):
            yield from _unless(rules, f"{where}: expected a list, got {value!r}")
            return
        yield from _unless(rules, *_size(len(value), shape, where, "items"))
        for index, item in enumerate(value):
            yield from _problems(shape.member, item, f"{where}[{index}]", rules, frozenset())
    elif kind == "map":
        if not isinstance(value, dict):
            yield from _unless(rules, f"{where}: expected a map, got {value!r}")
            return
        yield from _unless(rules, *_size(len(value), shape, where, "entries"))
        literal_keys = _Rules(False, rules.names_only, rules.pascal_case)
        for key, item in value.items():
            yield from _problems(shape.key, key, f"{where} key {key!r}", literal_keys, frozenset())
            yield from _problems(shape.value, item, f"{where}.{key}", rules, frozenset())
    elif not rules.names_only:
        yield from _scalar(shape, value, where)


def _unless(rules: _Rules, *problems: str) -> Iterator[str]:
    """Value problems, which a names-only check does not report."""
    if not rules.names_only:
        yield from problems


def _scalar(shape: Shape, value: Any, where: str) -> Iterator[str]:
    kind = shape.type_name
    if kind == "string":
        yield from _string(shape, value, where)
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            yield f"{where}: expected an integer, got {value!r}"
        else:
            yield from _range(value, shape, where)
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            yield f"{where}: expected a number, got {value!r}"
        else:
            yield from _range(value, shape, where)
    elif kind == "boolean":
        if not isinstance(value, bool):
            yield f"{where}: expected true or false, got {value!r}"
    elif kind == "blob":
        if not isinstance(value, (str, bytes, bytearray)) and not hasattr(value, "read"):
            yield f"{where}: expected bytes, got {value!r}"
    elif kind == "timestamp":
        if not isinstance(value, (str, int, float, dt.datetime)) or isinstance(value, bool):
            yield f"{where}: expected a timestamp, got {value!r}"
    else:
        yield f"{where}: unsupported shape type {kind}"


def _structure(shape: Any, value: Any, where: str, rules: _Rules, json_members: frozenset[str]) -> Iterator[str]:
    if not isinstance(value, dict):
        yield from _unless(rules, f"{where}: expected an object for {shape.name}, got {value!r}")
        return
    members = {_written(m, rules): m for m in shape.members}
    given = set()
    for key, member_value in value.items():
        dynamic = rules.paths and key.endswith(".$")
        name = key[:-2] if dynamic else key
        given.add(name)
        if name not in members:
            yield f"{where}.{name}: not a member of {shape.name} (members: {', '.join(members)})"
        elif dynamic:
            if not _is_path(member_value):
                yield from _unless(rules, f"{where}.{key}: {member_value!r} is not a path or intrinsic function")
        elif members[name] not in json_members:
            yield from _problems(shape.members[members[name]], member_value, f"{where}.{name}", rules, frozenset())
    for required in shape.required_members:
        if _written(required, rules) not in given:
            yield from _unless(
                rules, f"{where}: required member {_written(required, rules)} of {shape.name} is missing"
            )


def _written(member: str, rules: _Rules) -> str:
    return member[:1].upper() + member[1:] if rules.pascal_case else member


def _string(shape: Any, value: Any, where: str) -> Iterator[str]:
    if not isinstance(value, str):
        yield f"{where}: expected a string, got {value!r}"
        return
    if shape.enum and value not in shape.enum:
        yield f"{where}: {value!r} is not one of {shape.name}'s {len(shape.enum)} values"
    yield from _size(len(value), shape, where, "characters")
    pattern = shape.metadata.get("pattern")
    compiled = _compiled(pattern) if pattern else None
    if compiled is not None and compiled.fullmatch(value) is None:
        yield f"{where}: {value!r} must match pattern {pattern}"


def _size(size: int, shape: Shape, where: str, unit: str) -> Iterator[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if (low is not None and size < low) or (high is not None and size > high):
        yield f"{where}: {size} {unit}, valid length [{_bound(low)}, {_bound(high)}]"


def _range(number: float, shape: Shape, where: str) -> Iterator[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if (low is not None and number < low) or (high is not None and number > high):
        yield f"{where}: {number} is out of range [{_bound(low)}, {_bound(high)}]"


def _bound(value: Any) -> str:
    return "-" if value is None else str(value)


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("$", "States."))


@cache
def _compiled(pattern: str) -> re.Pattern | None:
    """botocore's pattern as a Python regex; None when written in Java-only syntax (``\\p{...}``)."""
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:
        return None


# -- requests -----------------------------------------------------------------------------------


def request_problems(service: str, operation: str, params: Mapping[str, Any]) -> list[str]:
    """Every reason ``params`` is not a valid ``service:operation`` request (empty when valid)."""
    shape = operation_model(service, operation).input_shape
    json_members = JSON_MEMBERS.get((service, operation), frozenset())
    return shape_problems(shape, dict(params), "params", json_members=json_members)


def validate_request(service: str, operation: str, params: Mapping[str, Any]) -> None:
    problems = request_problems(service, operation, params)
    if problems:
        raise RequestValidationError(service, operation, problems)


# -- definitions --------------------------------------------------------------------------------


def task_problems(name: str, state: Mapping[str, Any], *, names_only: bool = False) -> list[str]:
    """Every problem of a Task's ``Parameters`` against the input shape of the operation it calls."""
    resource = str(state["Resource"])
    service, operation = operation_of(resource)
    shape = operation_model(service, operation).input_shape
    parameters = state.get("Parameters", state.get("Arguments", {}))
    json_members = JSON_MEMBERS.get((service, operation), frozenset())
    return shape_problems(
        shape,
        parameters,
        f"{name}.Parameters",
        paths_allowed=True,
        json_members=json_members,
        names_only=names_only,
        pascal_case=":::aws-sdk:" in resource or service in PASCAL_CASE_SERVICES,
    )


def definition_problems(definition: str | Mapping[str, Any], *, names_only: bool = False) -> list[str]:
    """Every problem of every Task state that calls a service integration (Parallel branches included).

    ``names_only`` checks what ``CreateStateMachine`` checks: parameter names.
    """
    document = json.loads(definition) if isinstance(definition, str) else definition
    problems: list[str] = []
    for name, state in iter_states(document):
        if state.get("Type") != "Task" or not isinstance(state.get("Parameters", state.get("Arguments", {})), dict):
            continue
        try:
            operation_of(str(state.get("Resource", "")))
        except ValueError:
            continue  # an activity or a bare function ARN: no input shape to check
        problems.extend(task_problems(name, state, names_only=names_only))
    return problems
