"""The state machine definition as CloudFormation deploys it: substitutions rendered, states walked.

- :func:`render_definition` replaces each ``${Name}`` placeholder with its
  ``DefinitionSubstitutions`` value, as CloudFormation does, and refuses a
  placeholder without a value; :func:`assert_only_placeholders_differ` proves a
  rendered definition is the synthesized one with nothing else changed.
- :func:`placeholder_substitutions` gives every substitution of a synthesized
  template a stable stand-in ARN, for checks that need no provisioned resources.
- :func:`walk_states` and :func:`iter_states` (the workflow's own walkers, from
  :mod:`stepfunctions.asl`) visit every state, Parallel branches and Map processors included;
  :func:`successors` and :func:`longest_path` follow the happy path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from offline import ACCOUNT, REGION

# Re-exported for the tests and the rehearsal.
from stepfunctions.asl import iter_states as iter_states
from stepfunctions.asl import walk_states as walk_states
from stepfunctions.pipeline import DEFINITION_FILE as DEFINITION_FILE

# A DefinitionSubstitutions key as a placeholder: prose such as "${...}" in a Comment is not one.
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


class RenderError(ValueError):
    """A definition that cannot be rendered, or a rendering that changed more than its placeholders."""


def load_definition() -> dict[str, Any]:
    """The project's definition file, placeholders not substituted."""
    definition: dict[str, Any] = json.loads(DEFINITION_FILE.read_text())
    return definition


# -- substitutions ------------------------------------------------------------------------------


def placeholders(text: str) -> set[str]:
    """The substitution keys a definition text refers to."""
    return set(PLACEHOLDER.findall(text))


def render_definition(text: str, substitutions: Mapping[str, str]) -> str:
    """``text`` with every ``${Name}`` replaced by ``substitutions[Name]``, as CloudFormation renders it."""
    missing = sorted(placeholders(text) - set(substitutions))
    if missing:
        raise RenderError(f"definition placeholders without a substitution: {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], text)


def assert_only_placeholders_differ(template_definition: str, rendered: str, substitutions: Mapping[str, str]) -> None:
    """The rendered definition is the synthesized one except where a placeholder was substituted."""
    missing = sorted(placeholders(template_definition) - set(substitutions))
    if missing:
        raise RenderError(f"definition placeholders without a substitution: {', '.join(missing)}")
    differences: list[str] = []
    _compare(json.loads(template_definition), json.loads(rendered), substitutions, "$", differences)
    if differences:
        raise RenderError("rendered definition differs beyond its placeholders: " + "; ".join(differences[:5]))


def _compare(synth: Any, rendered: Any, subs: Mapping[str, str], path: str, out: list[str]) -> None:
    if isinstance(synth, dict) and isinstance(rendered, dict):
        if synth.keys() != rendered.keys():
            out.append(f"{path}: keys differ")
        for key in synth.keys() & rendered.keys():
            _compare(synth[key], rendered[key], subs, f"{path}.{key}", out)
    elif isinstance(synth, list) and isinstance(rendered, list):
        if len(synth) != len(rendered):
            out.append(f"{path}: lengths differ")
        for index, (a, b) in enumerate(zip(synth, rendered, strict=False)):
            _compare(a, b, subs, f"{path}[{index}]", out)
    elif synth != rendered and not (
        isinstance(synth, str) and placeholders(synth) and render_definition(synth, subs) == rendered
    ):
        out.append(f"{path}: {synth!r} -> {rendered!r}")


def pipeline_state_machine(template: Mapping[str, Any]) -> str:
    """The logical ID of the template's pipeline state machine (the one whose definition starts a run)."""
    ids = [
        k
        for k, v in template["Resources"].items()
        if v["Type"] == "AWS::StepFunctions::StateMachine"
        and "ValidateRunFunctionArn" in v["Properties"].get("DefinitionSubstitutions", {})
    ]
    if len(ids) != 1:
        raise LookupError(f"expected one pipeline state machine, found {ids}")
    return str(ids[0])


def placeholder_value(value: Any, resources: Mapping[str, Any]) -> str:
    """A stable stand-in for one ``DefinitionSubstitutions`` value of a synthesized template."""
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
        raise RenderError(f"no stand-in value for a {kind} attribute")
    if "Ref" in value:
        return str(value["Ref"]).lower()
    raise RenderError(f"unexpected substitution value {value!r}")


def placeholder_substitutions(template: Mapping[str, Any], logical_id: str) -> dict[str, str]:
    """The state machine's ``DefinitionSubstitutions`` with stand-in values."""
    resources = template["Resources"]
    properties = resources[logical_id]["Properties"]
    return {k: placeholder_value(v, resources) for k, v in properties.get("DefinitionSubstitutions", {}).items()}


def render(template: Mapping[str, Any], logical_id: str, text: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The definition ``text`` of state machine ``logical_id``, rendered with stand-in values, and those values."""
    substitutions = placeholder_substitutions(template, logical_id)
    return json.loads(render_definition(text, substitutions)), substitutions


# -- walking ------------------------------------------------------------------------------------


def successors(state: Mapping[str, Any]) -> list[str]:
    """States reachable without an error (Next, Choice targets, Default)."""
    targets = [state["Next"]] if "Next" in state else []
    targets.extend(choice["Next"] for choice in state.get("Choices", []))
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
