"""Check API requests against botocore's service models, as the real services would.

botocore's own ``ParamValidator`` checks member names, required members, types
and minimum lengths. It does not check enums, maximum lengths or patterns, which
is where real requests fail (``ml.ml.g5.xlarge``, a 70-character job name, an
underscore in a model name), so :func:`request_problems` adds those.

:func:`definition_problems` checks the Task states of a rendered definition
statically, the way ``CreateStateMachine`` does for optimized integrations:
every parameter name (``Key`` or ``Key.$``) must be a member of the API's input
shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape
from botocore.validate import ParamValidator


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


def request_problems(service: str, operation: str, params: dict) -> list[str]:
    """Every reason ``params`` is not a valid ``service:operation`` request (empty when valid)."""
    shape = operation_model(service, operation).input_shape
    problems: list[str] = []
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        problems.extend(line.strip() for line in report.generate_report().splitlines() if line.strip())
    problems.extend(_constraint_problems(params, shape, "params"))
    return problems


def validate_request(service: str, operation: str, params: dict) -> None:
    problems = request_problems(service, operation, params)
    if problems:
        raise RequestValidationError(service, operation, problems)


def _constraint_problems(value: Any, shape: Shape, path: str) -> Iterator[str]:
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for key, member in value.items():
            if key in shape.members:
                yield from _constraint_problems(member, shape.members[key], f"{path}.{key}")
    elif isinstance(shape, ListShape) and isinstance(value, list):
        yield from _length_problems(len(value), shape, path)
        for index, item in enumerate(value):
            yield from _constraint_problems(item, shape.member, f"{path}[{index}]")
    elif isinstance(shape, MapShape) and isinstance(value, dict):
        yield from _length_problems(len(value), shape, path)
        for key, item in value.items():
            yield from _constraint_problems(key, shape.key, f"{path} key {key!r}")
            yield from _constraint_problems(item, shape.value, f"{path}.{key}")
    elif shape.type_name == "string" and isinstance(value, str):
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            yield f"Invalid value for parameter {path}, value: {value!r}, valid values: {', '.join(enum)}"
        yield from _length_problems(len(value), shape, path)
        pattern = shape.metadata.get("pattern")
        if pattern and not _matches(pattern, value):
            yield f"Invalid value for parameter {path}, value: {value!r}, must match pattern {pattern}"
    elif (
        shape.type_name in ("integer", "long", "float", "double")
        and isinstance(value, (int, float))
        and "max" in shape.metadata
        and value > shape.metadata["max"]
    ):
        yield f"Invalid value for parameter {path}, value: {value}, valid max value: {shape.metadata['max']}"


def _length_problems(length: int, shape: Shape, path: str) -> Iterator[str]:
    maximum = shape.metadata.get("max")
    if maximum is not None and length > maximum:
        yield f"Invalid length for parameter {path}, value: {length}, valid max length: {maximum}"


@cache
def _compiled(pattern: str) -> re.Pattern | None:
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:  # Java-only syntax (\p{...}); the service checks it, we cannot
        return None


def _matches(pattern: str, value: str) -> bool:
    compiled = _compiled(pattern)
    return compiled is None or compiled.fullmatch(value) is not None


# Optimized integrations the rehearsal checks statically: resource ARN (without the
# integration pattern suffix) -> (botocore service, operation).
_OPTIMIZED_INTEGRATIONS = {
    "arn:aws:states:::lambda:invoke": ("lambda", "Invoke"),
    "arn:aws:states:::sagemaker:createTrainingJob": ("sagemaker", "CreateTrainingJob"),
    "arn:aws:states:::sns:publish": ("sns", "Publish"),
    "arn:aws:states:::sqs:sendMessage": ("sqs", "SendMessage"),
}
# Step Functions' own parameters of the Lambda integration (not in the Invoke shape).
_STATES_ONLY_PARAMETERS = {("lambda", "Invoke"): {"Payload"}}


def definition_problems(definition: str | dict) -> list[str]:
    """Task states whose static parameter names the service's input shape does not have."""
    document = json.loads(definition) if isinstance(definition, str) else definition
    problems: list[str] = []
    for name, state in _states(document):
        if state.get("Type") != "Task":
            continue
        resource = re.sub(r"\.(sync(:2)?|waitForTaskToken)$", "", str(state.get("Resource", "")))
        resource = re.sub(r"^arn:aws[a-z-]*:", "arn:aws:", resource)
        target = _OPTIMIZED_INTEGRATIONS.get(resource)
        if target is None:
            continue
        parameters = state.get("Parameters", state.get("Arguments"))
        if not isinstance(parameters, dict):
            continue
        shape = operation_model(*target).input_shape
        allowed = _STATES_ONLY_PARAMETERS.get(target, set())
        problems.extend(f"state {name!r}: {p}" for p in _unknown_keys(parameters, shape, "Parameters", allowed))
    return problems


def _unknown_keys(value: dict, shape: StructureShape, path: str, allowed: set[str] = frozenset()) -> Iterator[str]:
    for raw_key, member_value in value.items():
        key = raw_key[:-2] if raw_key.endswith(".$") else raw_key
        if key in allowed:
            continue
        if key not in shape.members:
            yield f"unknown parameter {path}.{key} (valid: {', '.join(shape.members)})"
            continue
        member = shape.members[key]
        if raw_key.endswith(".$"):
            continue  # a path or JSONata expression: checked at run time
        if isinstance(member, StructureShape) and isinstance(member_value, dict):
            yield from _unknown_keys(member_value, member, f"{path}.{key}")
        elif (
            isinstance(member, ListShape)
            and isinstance(member.member, StructureShape)
            and isinstance(member_value, list)
        ):
            for index, item in enumerate(member_value):
                if isinstance(item, dict):
                    yield from _unknown_keys(item, member.member, f"{path}.{key}[{index}]")


def _states(document: dict) -> Iterator[tuple[str, dict]]:
    """Every state of a definition, nested Parallel branches and Map processors included."""
    for name, state in document.get("States", {}).items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _states(branch)
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                yield from _states(state[key])
