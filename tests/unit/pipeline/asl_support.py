"""Helpers for tests of the state machine definition: walk states, render substitutions, check Task
parameters against botocore's service models, and compute the critical path of the workflow."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFINITION_FILE = REPO_ROOT / "stepfunctions" / "pipeline.asl.json"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
ACCOUNT = "123456789012"
REGION = "us-east-1"

# Optimized integrations used by the definition -> (botocore service, operation).
INTEGRATIONS = {
    "arn:aws:states:::lambda:invoke": ("lambda", "Invoke"),
    "arn:aws:states:::sagemaker:createTrainingJob.sync": ("sagemaker", "CreateTrainingJob"),
}
# Step Functions passes lambda:invoke's Payload as JSON, not bytes.
_JSON_BLOBS = {("lambda", "Invoke", "Payload")}


def load_definition() -> dict:
    return json.loads(DEFINITION_FILE.read_text())


def iter_states(definition: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, dict]]:
    """``(name, state)`` of every state, including Parallel branches and Map processors."""
    for name, state in definition["States"].items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from iter_states(branch, f"{path}{name}/")
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from iter_states(processor, f"{path}{name}/")


def placeholder_value(value: Any, resources: Mapping[str, Any]) -> str:
    """A concrete value for a ``DefinitionSubstitutions`` entry of the synthesized template."""
    if isinstance(value, str):
        return value
    if "Fn::GetAtt" in value:
        logical_id = value["Fn::GetAtt"][0]
        kind = resources[logical_id]["Type"]
        if kind == "AWS::Lambda::Function":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical_id}"
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{ACCOUNT}:role/{logical_id}"
        if kind == "AWS::KMS::Key":
            return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
        raise AssertionError(f"no placeholder for {kind}")
    if "Ref" in value:
        return str(value["Ref"]).lower()
    raise AssertionError(f"unexpected substitution value {value!r}")


def render(template: Mapping[str, Any], logical_id: str, text: str) -> tuple[dict, dict[str, str]]:
    """The definition ``text`` of state machine ``logical_id`` with its substitutions resolved to placeholders."""
    resources = template["Resources"]
    properties = resources[logical_id]["Properties"]
    substitutions = {k: placeholder_value(v, resources) for k, v in properties["DefinitionSubstitutions"].items()}
    missing = set(PLACEHOLDER.findall(text)) - set(substitutions)
    assert not missing, f"placeholders without a substitution: {sorted(missing)}"
    rendered = PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], text)
    return json.loads(rendered), substitutions


def pipeline_state_machine(template: Mapping[str, Any]) -> str:
    ids = [
        k
        for k, v in template["Resources"].items()
        if v["Type"] == "AWS::StepFunctions::StateMachine"
        and "ValidateRunFunctionArn" in v["Properties"].get("DefinitionSubstitutions", {})
    ]
    assert len(ids) == 1, ids
    return ids[0]


@cache
def _service(name: str) -> Any:
    return botocore.session.get_session().get_service_model(name)


@cache
def _pattern(pattern: str | None) -> re.Pattern | None:
    """botocore's pattern as a Python regex; None when absent or written in Java-only syntax (\\p{...})."""
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and (value.startswith("$") or value.startswith("States."))


def shape_problems(shape: Any, value: Any, where: str, json_members: frozenset[str] = frozenset()) -> list[str]:
    """Problems of a literal ``value`` against a botocore shape.

    ``.$`` members are checked by name only; ``json_members`` (top level) hold JSON where botocore has bytes.
    """
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{where}: expected an object for {shape.name}, got {value!r}"]
        problems = []
        given = set()
        for key, member_value in value.items():
            dynamic = key.endswith(".$")
            name = key[:-2] if dynamic else key
            given.add(name)
            if name not in shape.members:
                problems.append(f"{where}.{name}: not a member of {shape.name} (members: {', '.join(shape.members)})")
                continue
            if name in json_members:
                continue
            if dynamic:
                if not _is_path(member_value):
                    problems.append(f"{where}.{key}: {member_value!r} is not a path or intrinsic function")
                continue
            problems.extend(shape_problems(shape.members[name], member_value, f"{where}.{name}"))
        for required in shape.required_members:
            if required not in given:
                problems.append(f"{where}: required member {required} of {shape.name} is missing")
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {value!r}"]
        problems = []
        if "min" in shape.metadata and len(value) < shape.metadata["min"]:
            problems.append(f"{where}: fewer than {shape.metadata['min']} items")
        for index, item in enumerate(value):
            problems.extend(shape_problems(shape.member, item, f"{where}[{index}]"))
        return problems
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{where}: expected a map, got {value!r}"]
        problems = []
        for key, item in value.items():
            problems.extend(shape_problems(shape.value, item, f"{where}.{key}"))
        return problems
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: expected a string, got {value!r}"]
        problems = []
        if shape.enum and value not in shape.enum:
            problems.append(f"{where}: {value!r} is not one of {shape.name}'s values")
        pattern = _pattern(shape.metadata.get("pattern"))
        if pattern is not None and not pattern.fullmatch(value):
            problems.append(f"{where}: {value!r} does not match {shape.name}'s pattern {pattern}")
        if not (shape.metadata.get("min", 0) <= len(value) <= shape.metadata.get("max", 1 << 30)):
            problems.append(f"{where}: length of {value!r} is out of range")
        return problems
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{where}: expected an integer, got {value!r}"]
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            return [f"{where}: {value} is out of range [{low}, {high}]"]
        return []
    if kind in ("float", "double"):
        return [] if isinstance(value, (int, float)) and not isinstance(value, bool) else [f"{where}: not a number"]
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{where}: expected true or false, got {value!r}"]
    if kind == "blob":
        return [] if isinstance(value, str) else [f"{where}: expected bytes, got {value!r}"]
    if kind == "timestamp":
        return [] if isinstance(value, (str, int, float)) else [f"{where}: not a timestamp"]
    return [f"{where}: unsupported shape type {kind}"]


def operation_of(resource: str) -> tuple[str, str]:
    """The botocore (service, operation) a Task resource calls."""
    if resource in INTEGRATIONS:
        return INTEGRATIONS[resource]
    match = re.fullmatch(r"arn:aws:states:::aws-sdk:([a-z0-9]+):([A-Za-z0-9]+)", resource)
    if match:
        service, action = match.groups()
        return service, action[0].upper() + action[1:]
    raise AssertionError(f"unknown Task resource {resource}")


def task_problems(name: str, state: Mapping[str, Any]) -> list[str]:
    """Every problem of a Task's Parameters against the input shape of the operation it calls."""
    service, operation = operation_of(state["Resource"])
    shape = _service(service).operation_model(operation).input_shape
    json_members = frozenset(m for (s, o, m) in _JSON_BLOBS if (s, o) == (service, operation))
    return shape_problems(shape, state.get("Parameters", {}), f"{name}.Parameters", json_members)


def successors(state: Mapping[str, Any]) -> list[str]:
    """States reachable without an error (Next, Choice targets, Default)."""
    targets = [state["Next"]] if "Next" in state else []
    for choice in state.get("Choices", []):
        targets.append(choice["Next"])
    if "Default" in state:
        targets.append(state["Default"])
    return targets


def longest_path(definition: Mapping[str, Any], durations: Mapping[str, float]) -> float:
    """Longest duration from the start to any terminal state over the happy-path graph (no Catch edges).

    Back edges (retry and polling loops) are ignored; a Parallel state lasts as long as its longest branch.
    """
    states = definition["States"]

    def duration(name: str) -> float:
        state = states[name]
        if state["Type"] == "Parallel":
            return max(longest_path(branch, durations) for branch in state["Branches"])
        return durations.get(name, 0.0)

    def visit(name: str, stack: frozenset[str]) -> float:
        nexts = [n for n in successors(states[name]) if n not in stack]
        return duration(name) + max((visit(n, stack | {name}) for n in nexts), default=0.0)

    return visit(definition["StartAt"], frozenset())
