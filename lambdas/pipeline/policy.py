"""The run policy: limits a deployment sets on every run (``runPolicy`` in cdk.json's context).

The stack passes the policy to the stage functions as JSON in ``RUN_POLICY``; "Validate run" applies it
(:func:`policy_problems`, :func:`apply_gate_floor`). A request may only tighten the policy: a value
beyond it is a problem naming the policy value, and a value the request leaves unset takes the
policy's (the budget and the gate floor).

- ``maxUsdPerRun``: the highest ``budget.maxUsd`` a run may ask for (the default budget is the lower of
  :data:`DEFAULT_BUDGET_USD` and this);
- ``maxInstancesPerJob`` / ``maxHoursPerJob``: the largest ``instanceCount`` and ``maxRuntimeHours`` of
  any job (a recipe's default runtime above the policy is lowered to it);
- ``allowedInstanceTypes``: the instance types jobs may run on (also the ``sagemaker:InstanceTypes``
  condition of the state machine's ``CreateTrainingJob`` permission);
- ``minScore`` / ``minGainOverBaseline`` / ``mustBeatDeployed``: the gate floor of runs that deploy
  (``stages.deploy``); a positive ``minGainOverBaseline`` makes the baseline evaluation required;
- ``maxLambdaConcurrency``: the highest RFT ``lambda_concurrency_limit`` override.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lambdas.common import strict_json
from lambdas.pipeline.catalog import INSTANCE_PRICE_USD_PER_HOUR
from lambdas.pipeline.schema import MAX_RUNTIME_HOURS, JobSettings, RunInput

DEFAULT_BUDGET_USD = 2000.0
CONTEXT_KEY = "runPolicy"
CONCURRENCY_OVERRIDE = "lambda_concurrency_limit"


class RunPolicy(BaseModel):
    """The deployment's run policy (see the module docstring); the defaults are cdk.json's."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    maxUsdPerRun: float = Field(default=5000.0, gt=0)
    maxInstancesPerJob: int = Field(default=8, ge=1)
    maxHoursPerJob: float = Field(default=72.0, gt=0, le=MAX_RUNTIME_HOURS)
    allowedInstanceTypes: tuple[str, ...] = Field(
        default=tuple(sorted(INSTANCE_PRICE_USD_PER_HOUR)), min_length=1, max_length=20
    )
    minScore: float = 0.0
    minGainOverBaseline: float = Field(default=0.01, ge=0)
    mustBeatDeployed: bool = True
    maxLambdaConcurrency: int = Field(default=50, ge=1)

    @model_validator(mode="after")
    def _known_types(self) -> RunPolicy:
        unknown = [t for t in self.allowedInstanceTypes if t not in INSTANCE_PRICE_USD_PER_HOUR]
        if unknown:
            raise ValueError(
                f"allowedInstanceTypes: {', '.join(unknown)} not in the catalog "
                f"(known: {', '.join(sorted(INSTANCE_PRICE_USD_PER_HOUR))})"
            )
        return self

    def to_env(self) -> str:
        """The JSON the stack puts in ``RUN_POLICY``."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


class RunPolicyError(ValueError):
    """The policy in the context (or in ``RUN_POLICY``) is invalid."""


def parse_policy(value: object, *, where: str = CONTEXT_KEY) -> RunPolicy:
    """A policy from a JSON object (cdk.json) or its JSON text (``-c runPolicy='{...}'``, ``RUN_POLICY``);
    the error names every bad field."""
    if isinstance(value, str):
        try:
            value = strict_json.loads(value)
        except ValueError as error:
            raise RunPolicyError(f"{where}: not a JSON object ({error})") from error
    if isinstance(value, RunPolicy):
        return value
    if not isinstance(value, dict):
        raise RunPolicyError(f"{where}: a JSON object, got {type(value).__name__}")
    if isinstance(value.get("allowedInstanceTypes"), list):
        value = {**value, "allowedInstanceTypes": tuple(value["allowedInstanceTypes"])}
    try:
        return RunPolicy.model_validate(value)
    except ValidationError as error:
        problems = [
            f"{where}.{'.'.join(str(p) for p in e['loc']) or '(policy)'}: {e['msg']} (got {e.get('input')!r})"
            for e in error.errors(include_url=False)
        ]
        raise RunPolicyError("; ".join(problems)) from error


def non_finite_paths(value: Any, path: str = "") -> list[str]:
    """The field path of every non-finite float inside ``value`` (``budget.maxUsd``, ``sft.overrides.lr``)."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [path or "(input)"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in non_finite_paths(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in non_finite_paths(v, f"{path}.{i}" if path else str(i))]
    return []


def _named(field: str) -> str:
    return f"the run policy's {field}"


def effective_budget(run: RunInput, policy: RunPolicy) -> float:
    """The run's budget: its ``budget.maxUsd`` when given, else the lower of the default and the policy's."""
    if "maxUsd" in run.budget.model_fields_set:
        return run.budget.maxUsd
    return min(DEFAULT_BUDGET_USD, policy.maxUsdPerRun)


def request_problems(run: RunInput, policy: RunPolicy) -> list[str]:
    """What the request asks beyond the policy (budget, explicit runtimes, gate floor, Lambda concurrency)."""
    problems: list[str] = []
    if effective_budget(run, policy) > policy.maxUsdPerRun:
        problems.append(
            f"budget.maxUsd: {run.budget.maxUsd:g} exceeds {_named('maxUsdPerRun')} {policy.maxUsdPerRun:g}"
        )
    for field in ("sft", "rft", "evaluation"):
        hours = getattr(run, field).maxRuntimeHours
        if hours is not None and hours > policy.maxHoursPerJob:
            problems.append(
                f"{field}.maxRuntimeHours: {hours:g} exceeds {_named('maxHoursPerJob')} {policy.maxHoursPerJob:g}"
            )
    concurrency = run.rft.overrides.get(CONCURRENCY_OVERRIDE)
    if isinstance(concurrency, (int, float)) and concurrency > policy.maxLambdaConcurrency:
        problems.append(
            f"rft.overrides.{CONCURRENCY_OVERRIDE}: {concurrency!r} exceeds {_named('maxLambdaConcurrency')} "
            f"{policy.maxLambdaConcurrency}"
        )
    if run.stages.deploy:
        gate, given = run.gate, run.gate.model_fields_set
        for name in ("minScore", "minGainOverBaseline"):
            value, floor = getattr(gate, name), getattr(policy, name)
            if name in given and value < floor:
                problems.append(f"gate.{name}: {value:g} is below {_named(name)} {floor:g} (a run may only raise it)")
        if policy.mustBeatDeployed and not gate.mustBeatDeployed:
            problems.append(
                f"gate.mustBeatDeployed: false is not allowed: {_named('mustBeatDeployed')} is true "
                "(a deploying run must beat the deployed model)"
            )
    return problems


def apply_gate_floor(run: RunInput, policy: RunPolicy) -> RunInput:
    """``run`` with the gate values it leaves unset raised to the policy's floor (runs that deploy only)."""
    if not run.stages.deploy:
        return run
    given = run.gate.model_fields_set
    floor = {name: getattr(policy, name) for name in ("minScore", "minGainOverBaseline") if name not in given}
    if not floor:
        return run
    gate = run.gate.model_copy(update=floor)
    return run.model_copy(update={"gate": gate})


def job_problems(field: str, job: JobSettings, policy: RunPolicy) -> list[str]:
    """What a resolved job (recipe defaults applied) asks beyond the policy."""
    problems: list[str] = []
    if job.instanceType is None or job.instanceCount is None:
        return problems  # platform bedrock: no instances to allow
    if job.instanceType not in policy.allowedInstanceTypes:
        problems.append(
            f"{field}.instanceType: {job.instanceType!r} is not in {_named('allowedInstanceTypes')} "
            f"({', '.join(policy.allowedInstanceTypes)})"
        )
    if job.instanceCount > policy.maxInstancesPerJob:
        problems.append(
            f"{field}.instanceCount: {job.instanceCount} exceeds {_named('maxInstancesPerJob')} "
            f"{policy.maxInstancesPerJob}"
        )
    return problems


def capped_seconds(hours: float, policy: RunPolicy | None) -> int:
    """A job's ``MaxRuntimeInSeconds``: ``hours``, at most the policy's ``maxHoursPerJob``."""
    if policy is not None:
        hours = min(hours, policy.maxHoursPerJob)
    return int(math.ceil(hours * 3600))
