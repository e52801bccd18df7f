"""Building blocks of Amazon States Language (JSONPath) definitions, each written once.

A definition is built as plain dicts: a :class:`Flow` collects named states in the
order they are added (the order the console and the file show), and the helpers
below produce the states that repeat: a Lambda task with its Retry and Catch, a
Choice on one boolean, a Parallel state. Functions are referenced by a
``DefinitionSubstitutions`` placeholder, ``${<construct id>FunctionArn}``, which the
stack fills in at deploy time and the rehearsal maps to simulated functions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

State = dict[str, Any]

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
# Errors of the Lambda service itself (not of the function's code): retried with jittered backoff.
LAMBDA_SERVICE_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
LAMBDA_RETRY: State = {
    "ErrorEquals": list(LAMBDA_SERVICE_ERRORS),
    "IntervalSeconds": 2,
    "MaxAttempts": 6,
    "BackoffRate": 2,
    "MaxDelaySeconds": 60,
    "JitterStrategy": "FULL",
}
# Steps that come after work already paid for (reading a finished job's output, recording the run): throttling
# or a Lambda outage there must not throw that work away, so they are retried for about half an hour at most
# (5 s doubling to 5 min, 12 attempts), not two minutes.
LAMBDA_RETRY_AFTER_PAID_WORK: State = {
    **LAMBDA_RETRY,
    "IntervalSeconds": 5,
    "MaxAttempts": 12,
    "MaxDelaySeconds": 300,
}


def function_placeholder(construct_id: str) -> str:
    """The substitution placeholder of a pipeline function's ARN."""
    return f"${{{construct_id}FunctionArn}}"


def catch_all(next_state: str, result_path: str) -> list[State]:
    """A Catch that sends every error to ``next_state`` with the error at ``result_path``."""
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": result_path, "Next": next_state}]


def _with_comment(state: State, comment: str | None) -> State:
    return {"Type": state.pop("Type"), **({"Comment": comment} if comment else {}), **state}


def _transition(next_state: str | None) -> State:
    return {"Next": next_state} if next_state else {"End": True}


def lambda_task(
    function: str,
    payload: Mapping[str, Any],
    *,
    select: Sequence[str],
    result_path: str,
    next_state: str | None,
    on_error: str,
    error_path: str,
    comment: str | None = None,
    retry: State = LAMBDA_RETRY,
) -> State:
    """Invoke a pipeline function; keep the ``select``-ed fields of its response at ``result_path``.

    Lambda service errors are retried (``retry``: :data:`LAMBDA_RETRY`, or :data:`LAMBDA_RETRY_AFTER_PAID_WORK`
    for steps after a finished job); every other error (including the function's own) goes to ``on_error``
    with the error at ``error_path``.
    """
    state: State = {
        "Type": "Task",
        "Resource": LAMBDA_INVOKE,
        "Parameters": {"FunctionName": function_placeholder(function), "Payload": dict(payload)},
        "ResultSelector": {f"{field}.$": f"$.Payload.{field}" for field in select},
        "ResultPath": result_path,
        "Retry": [dict(retry)],
        "Catch": catch_all(on_error, error_path),
        **_transition(next_state),
    }
    return _with_comment(state, comment)


def boolean_choice(variable: str, when_true: str, otherwise: str, *, comment: str | None = None) -> State:
    """Go to ``when_true`` when ``variable`` is the boolean true, else to ``otherwise``."""
    state: State = {
        "Type": "Choice",
        "Choices": [{"Variable": variable, "BooleanEquals": True, "Next": when_true}],
        "Default": otherwise,
    }
    return _with_comment(state, comment)


def pass_state(
    *,
    next_state: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    result: Any = None,
    result_path: str | None = None,
    comment: str | None = None,
) -> State:
    """A Pass state that places ``parameters`` (or a constant ``result``) at ``result_path``."""
    state: State = {"Type": "Pass"}
    if parameters is not None:
        state["Parameters"] = dict(parameters)
    if result is not None:
        state["Result"] = result
    if result_path is not None:
        state["ResultPath"] = result_path
    state.update(_transition(next_state))
    return _with_comment(state, comment)


class Flow:
    """Named states in insertion order, with the first one as ``StartAt``."""

    def __init__(self) -> None:
        self.states: dict[str, State] = {}

    def add(self, name: str, state: State) -> str:
        if name in self.states:
            raise ValueError(f"state {name!r} is defined twice")
        self.states[name] = state
        return name

    def extend(self, other: Flow) -> None:
        for name, state in other.states.items():
            self.add(name, state)

    def as_branch(self) -> State:
        return {"StartAt": next(iter(self.states)), "States": self.states}


def walk_states(definition: Mapping[str, Any], depth: int = 0) -> Iterator[tuple[int, str, State]]:
    """``(depth, name, state)`` of every state in definition order, each Parallel branch and Map
    processor right after its state, one level deeper."""
    for name, state in definition.get("States", {}).items():
        yield depth, name, state
        for branch in state.get("Branches", []):
            yield from walk_states(branch, depth + 1)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if isinstance(processor, Mapping):
            yield from walk_states(processor, depth + 1)


def iter_states(definition: Mapping[str, Any]) -> Iterator[tuple[str, State]]:
    """``(name, state)`` of every state, Parallel branches and Map processors included."""
    for _, name, state in walk_states(definition):
        yield name, state
