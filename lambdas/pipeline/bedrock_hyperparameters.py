"""Hyperparameters of the Bedrock road: the run's short override keys mapped to Bedrock's names.

A run on platform ``bedrock`` keeps the short keys its SageMaker runs use (``lr``, ``max_epochs``,
``number_generation``...); this module maps them to what Bedrock takes, checks them, and fills in the
documented defaults (docs/contracts/bedrock-customization.md):

- SFT (``FINE_TUNING``): ``hyperParameters`` of CreateModelCustomizationJob, a map of strings. Names,
  ranges and defaults from the Amazon Bedrock User Guide page "Amazon Nova Understanding model customization
  hyperparameters" (:data:`SFT_SOURCE`); the same three for every Nova model Bedrock fine-tunes.
- RFT (``REINFORCEMENT_FINE_TUNING``): ``customizationConfig.rftConfig.hyperParameters``, typed. The
  names and every range come from botocore's ``RFTHyperParameters`` shape at import, so they cannot drift from
  the API; defaults from AWS's Nova Forge SDK Bedrock RFT template (:data:`RFT_DEFAULTS_SOURCE`). Where
  botocore publishes no range (``maxPromptLength``, ``inferenceMaxTokens``) a project limit applies.
- Evaluation: Converse's ``inferenceConfig``; ranges from botocore's ``InferenceConfiguration`` shape.
  Nothing is sent that the run does not set (Converse's own defaults apply).

:func:`resolve` gives Bedrock's names -> values (defaults included); :func:`problems` lists what is wrong
with a run's overrides, each as ``(key, message)``; an unknown key's message lists the allowed keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import botocore.session

from lambdas.pipeline.naming import STAGE_METHODS

Kind = Literal["int", "float", "str"]

SFT_SOURCE = (
    "Amazon Bedrock User Guide, Amazon Nova Understanding model customization hyperparameters "
    "(https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-nova-mm.html)"
)
RFT_SHAPE = "botocore bedrock RFTHyperParameters"
RFT_DEFAULTS_SOURCE = "aws/nova-forge-sdk: src/amzn_nova_forge/recipe/templates/bedrock/override/rft_lora.json"
EVAL_SHAPE = "botocore bedrock-runtime InferenceConfiguration"
PROJECT_LIMIT = "project limit (botocore publishes no range; the SageMaker RFT recipe's 32768-token length)"
MAX_TOKENS_LIMIT = 32768

# Which Nova models Bedrock customizes with each method (the user guide's supported-model tables:
# custom-model-fine-tuning.html for SFT, rft-nova-models.html for RFT). Evaluation runs through Converse.
SUPPORTED: dict[str, tuple[str, ...]] = {
    "sft": ("nova-2-lite", "nova-lite", "nova-micro", "nova-pro"),
    "rft": ("nova-2-lite",),
    "eval": ("nova-2-lite", "nova-lite", "nova-micro", "nova-pro"),
}


@dataclass(frozen=True)
class Parameter:
    """One short key: Bedrock's name, its type and accepted values, its default (None: not sent), its source."""

    key: str
    name: str
    kind: Kind
    default: Any
    source: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        bounds = [f">= {self.minimum:g}"] if self.minimum is not None else []
        bounds += [f"<= {self.maximum:g}"] if self.maximum is not None else []
        kind = {"int": "an integer", "float": "a number", "str": "a string"}[self.kind]
        return f"{kind} {' and '.join(bounds)}".strip()

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not accepted, or None."""
        expected = f"expected {self.describe()} ({self.name}; {self.source})"
        if self.kind == "str":
            ok = isinstance(value, str) and (self.choices is None or value in self.choices)
            return None if ok else f"{value!r} is not valid: {expected}"
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or (self.kind == "int" and not isinstance(value, int)) or not math.isfinite(value):
            return f"{value!r} is not valid: {expected}"
        if self.minimum is not None and value < self.minimum:
            return f"{value!r} is below the minimum {self.minimum:g}: {expected}"
        if self.maximum is not None and value > self.maximum:
            return f"{value!r} is above the maximum {self.maximum:g}: {expected}"
        return None


def _from_shape(service: str, shape_name: str, member: str) -> dict[str, Any]:
    """``minimum``, ``maximum`` and ``choices`` of a botocore member (those the model publishes)."""
    shape = botocore.session.get_session().get_service_model(service).shape_for(shape_name).members[member]
    found: dict[str, Any] = {}
    for bound, field in (("min", "minimum"), ("max", "maximum")):
        if bound in shape.metadata:
            found[field] = float(shape.metadata[bound])
    if getattr(shape, "enum", None):
        found["choices"] = tuple(shape.enum)
    return found


def _rft(key: str, name: str, kind: Kind, default: Any, **limits: Any) -> Parameter:
    published = _from_shape("bedrock", "RFTHyperParameters", name)
    source = f"{RFT_SHAPE}.{name}" if published else PROJECT_LIMIT
    return Parameter(key, name, kind, default, f"{source}; default {RFT_DEFAULTS_SOURCE}", **{**limits, **published})


def _eval(key: str, name: str, kind: Kind, **limits: Any) -> Parameter:
    return Parameter(
        key,
        name,
        kind,
        None,
        f"{EVAL_SHAPE}.{name}",
        **{**limits, **_from_shape("bedrock-runtime", "InferenceConfiguration", name)},
    )


@cache
def table(method: str) -> dict[str, Parameter]:
    """The short keys of ``method`` (``sft``, ``rft`` or ``eval``) on Bedrock."""
    params: tuple[Parameter, ...]
    if method == "sft":
        params = (
            Parameter("max_epochs", "epochCount", "int", 2, SFT_SOURCE, minimum=1, maximum=5),
            Parameter("lr", "learningRate", "float", 1e-5, SFT_SOURCE, minimum=1e-6, maximum=1e-4),
            Parameter("warmup_steps", "learningRateWarmupSteps", "int", 10, SFT_SOURCE, minimum=0, maximum=100),
        )
    elif method == "rft":
        params = (
            _rft("max_epochs", "epochCount", "int", 1),
            _rft("global_batch_size", "batchSize", "int", 128),
            _rft("lr", "learningRate", "float", 1e-5),
            _rft("max_length", "maxPromptLength", "int", 8192, minimum=1, maximum=MAX_TOKENS_LIMIT),
            _rft("number_generation", "trainingSamplePerPrompt", "int", 8),
            _rft("max_new_tokens", "inferenceMaxTokens", "int", 2048, minimum=1, maximum=MAX_TOKENS_LIMIT),
            _rft("reasoning_effort", "reasoningEffort", "str", "medium"),
            _rft("eval_interval", "evalInterval", "int", 10),
        )
    elif method == "eval":
        params = (
            _eval("max_new_tokens", "maxTokens", "int", maximum=MAX_TOKENS_LIMIT),
            _eval("temperature", "temperature", "float"),
            _eval("top_p", "topP", "float"),
        )
    else:
        raise ValueError(f"unknown method {method!r} (expected sft, rft or eval)")
    return {p.key: p for p in params}


def method_of(stage: str) -> str:
    """``sft``, ``rft`` or ``eval`` for a stage name or a method."""
    return STAGE_METHODS.get(stage, stage)


def available(model_key: str, stage: str) -> bool:
    """Whether Bedrock offers ``stage``'s method for the model."""
    return model_key in SUPPORTED.get(method_of(stage), ())


def problems(stage: str, model_key: str, overrides: dict[str, Any]) -> list[tuple[str, str]]:
    """Every problem of ``overrides`` as ``(key, message)``; empty when they are all valid."""
    method = method_of(stage)
    if not available(model_key, method):
        offered = ", ".join(SUPPORTED.get(method, ()))
        return [("(method)", f"Bedrock does not offer {method} for {model_key} (models: {offered})")]
    known = table(method)
    found: list[tuple[str, str]] = []
    for key, value in overrides.items():
        parameter = known.get(key)
        if parameter is None:
            allowed = ", ".join(sorted(known))
            found.append((key, f"unknown override for {model_key} {method} on Bedrock (allowed: {allowed})"))
        elif (problem := parameter.problem(value)) is not None:
            found.append((key, problem))
    return found


def resolve(stage: str, model_key: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Bedrock's names -> values for ``stage``: the documented defaults, then the run's ``overrides``.

    Raises ValueError when the overrides have problems (Validate run reports them first)."""
    found = problems(stage, model_key, overrides)
    if found:
        raise ValueError("; ".join(f"{key}: {message}" for key, message in found))
    values: dict[str, Any] = {}
    for key, parameter in table(method_of(stage)).items():
        value = overrides.get(key, parameter.default)
        if value is not None:
            values[parameter.name] = float(value) if parameter.kind == "float" else value
    return values


def as_strings(values: dict[str, Any]) -> dict[str, str]:
    """Bedrock's ``hyperParameters`` map (strings): ``1e-05`` for a float, ``2`` for an integer."""
    return {name: format(value, "g") if isinstance(value, float) else str(value) for name, value in values.items()}
