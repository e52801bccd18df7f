"""The deployment's run policy: a request may only tighten it, and non-finite numbers are refused everywhere."""

from __future__ import annotations

import json

import pytest

from lambdas.common import strict_json
from lambdas.pipeline.policy import (
    DEFAULT_BUDGET_USD,
    RunPolicy,
    RunPolicyError,
    non_finite_paths,
    parse_policy,
)
from lambdas.pipeline.validation import RunInputError, input_problems
from tests.unit.pipeline import samples

POLICY = RunPolicy(
    maxUsdPerRun=3000.0,
    maxInstancesPerJob=4,
    maxHoursPerJob=24.0,
    allowedInstanceTypes=("ml.p5.48xlarge",),
    minScore=0.5,
    minGainOverBaseline=0.02,
    mustBeatDeployed=True,
    maxLambdaConcurrency=50,
)


def _resolve(policy: RunPolicy = POLICY, **changes: object) -> dict:
    return samples.plan(policy=policy, **changes).to_json()


def _problems(policy: RunPolicy = POLICY, **changes: object) -> list[str]:
    with pytest.raises(RunInputError) as caught:
        _resolve(policy, **changes)
    return caught.value.problems


def test_a_budget_and_runtimes_beyond_the_policy_are_rejected_naming_the_policy_value() -> None:
    # The measured abuse: 672 h on 8 x p5 with a budget of 1e12.
    problems = _problems(
        budget={"maxUsd": 1e12},
        sft={"instanceCount": 8, "maxRuntimeHours": 672.0},
        rft={"maxRuntimeHours": 100.0},
    )
    assert "budget.maxUsd: 1e+12 exceeds the run policy's maxUsdPerRun 3000" in problems
    assert "sft.maxRuntimeHours: 672 exceeds the run policy's maxHoursPerJob 24" in problems
    assert "rft.maxRuntimeHours: 100 exceeds the run policy's maxHoursPerJob 24" in problems
    assert "sft.instanceCount: 8 exceeds the run policy's maxInstancesPerJob 4" in problems


def test_an_instance_type_outside_the_policy_is_rejected_even_when_the_recipe_chose_it() -> None:
    no_p5 = POLICY.model_copy(update={"allowedInstanceTypes": ("ml.g5.48xlarge", "ml.p4d.24xlarge")})
    problems = _problems(no_p5, stages={"rft": False})
    allowed = "the run policy's allowedInstanceTypes (ml.g5.48xlarge, ml.p4d.24xlarge)"
    assert problems == [
        f"sft.instanceType: 'ml.p5.48xlarge' is not in {allowed}",
        f"evaluation.instanceType: 'ml.p5.48xlarge' is not in {allowed}",
    ]


def test_a_lambda_concurrency_beyond_the_policy_is_rejected() -> None:
    problems = _problems(rft={"overrides": {"lambda_concurrency_limit": 1000}})
    assert problems == ["rft.overrides.lambda_concurrency_limit: 1000 exceeds the run policy's maxLambdaConcurrency 50"]
    plan = _resolve(rft={"overrides": {"lambda_concurrency_limit": 20}})
    assert plan["jobs"]["rft"]["overrides"] == {"lambda_concurrency_limit": 20}


def test_must_beat_deployed_false_is_rejected_for_a_deploying_run() -> None:
    problems = _problems(gate={"mustBeatDeployed": False})
    assert problems == [
        "gate.mustBeatDeployed: false is not allowed: the run policy's mustBeatDeployed is true "
        "(a deploying run must beat the deployed model)"
    ]
    # A run that does not deploy may judge without the champion.
    plan = _resolve(gate={"mustBeatDeployed": False}, stages={"deploy": False})
    assert plan["gate"]["mustBeatDeployed"] is False


def test_gate_thresholds_below_the_floor_are_rejected_and_unset_ones_take_it() -> None:
    problems = _problems(gate={"minScore": 0.0, "minGainOverBaseline": 0.0})
    assert problems == [
        "gate.minScore: 0 is below the run policy's minScore 0.5 (a run may only raise it)",
        "gate.minGainOverBaseline: 0 is below the run policy's minGainOverBaseline 0.02 (a run may only raise it)",
    ]
    assert _resolve()["gate"] == {
        "metric": "exact_match",
        "minScore": 0.5,
        "minGainOverBaseline": 0.02,
        "mustBeatDeployed": True,
    }
    tighter = _resolve(gate={"minScore": 0.9, "minGainOverBaseline": 0.1})["gate"]
    assert (tighter["minScore"], tighter["minGainOverBaseline"]) == (0.9, 0.1)


def test_the_floor_requires_the_baseline_of_a_deploying_run() -> None:
    problems = _problems(stages={"baselineEval": False})
    assert problems == [
        "gate.minGainOverBaseline: 0.02 (given, or the run policy's floor for a deploying run): the gain over "
        "the baseline needs stages.baselineEval=true"
    ]


def test_the_budget_defaults_to_the_lower_of_the_default_and_the_policy() -> None:
    assert _resolve()["budget"] == {"maxUsd": DEFAULT_BUDGET_USD}
    small = POLICY.model_copy(update={"maxUsdPerRun": 500.0})
    assert _resolve(small)["budget"] == {"maxUsd": 500.0}
    assert _resolve(budget={"maxUsd": 100.0})["budget"] == {"maxUsd": 100.0}


def test_a_recipe_runtime_above_the_policy_is_lowered_to_it() -> None:
    short = POLICY.model_copy(update={"maxHoursPerJob": 2.0})
    jobs = _resolve(short)["jobs"]
    assert {job["maxRuntimeSeconds"] for job in jobs.values()} <= {7200, 5400}
    assert jobs["sft"]["maxRuntimeSeconds"] == 7200  # the SFT recipe's 3 h, lowered


def test_a_run_within_the_policy_resolves() -> None:
    plan = _resolve(budget={"maxUsd": 3000.0}, sft={"instanceCount": 4, "maxRuntimeHours": 24.0})
    assert plan["jobs"]["sft"]["instanceCount"] == 4 and plan["jobs"]["sft"]["maxRuntimeSeconds"] == 24 * 3600


# -- non-finite numbers -------------------------------------------------------------------------------


def test_1e309_is_rejected_at_json_parse_time_and_by_the_schema() -> None:
    text = '{"budget": {"maxUsd": 1e309}}'
    with pytest.raises(ValueError, match="1e309 is too large for a finite number"):
        strict_json.loads(text)
    with pytest.raises(ValueError, match="NaN is not a JSON number"):
        strict_json.loads('{"x": NaN}')
    assert strict_json.loads('{"x": 1.5e3}') == {"x": 1500.0}
    # What plain json.loads makes of it is still refused by the run schema.
    payload = samples.run_input(**json.loads(text))
    assert payload["budget"]["maxUsd"] == float("inf")
    problems = input_problems(payload)
    assert len(problems) == 1 and problems[0].startswith("budget.maxUsd: Input should be a finite number")
    with pytest.raises(RunInputError, match="budget.maxUsd: Input should be a finite number"):
        _resolve(budget={"maxUsd": float("inf")})


def test_non_finite_overrides_and_gate_values_are_rejected_with_their_path() -> None:
    payload = samples.run_input(sft={"overrides": {"lr": float("nan")}}, gate={"minScore": float("-inf")})
    problems = input_problems(payload)
    assert any(p.startswith("gate.minScore: Input should be a finite number") for p in problems)
    assert "sft.overrides.lr: must be a finite number" in problems
    assert non_finite_paths({"a": [1.0, {"b": float("inf")}]}) == ["a.1.b"]


# -- the policy itself --------------------------------------------------------------------------------


def test_the_policy_parses_from_context_json_and_names_every_bad_field() -> None:
    policy = parse_policy(json.loads(POLICY.to_env()))
    assert policy == POLICY
    assert parse_policy(POLICY.to_env()) == POLICY
    with pytest.raises(RunPolicyError) as caught:
        parse_policy({"maxUsdPerRun": -1, "mustBeatDeployed": "yes", "colour": 1})
    message = str(caught.value)
    for field in ("runPolicy.maxUsdPerRun", "runPolicy.mustBeatDeployed", "runPolicy.colour"):
        assert field in message, field
    with pytest.raises(RunPolicyError, match="ml.x1.huge not in the catalog"):
        parse_policy({"allowedInstanceTypes": ["ml.x1.huge"]})
    with pytest.raises(RunPolicyError, match="too large for a finite number"):
        parse_policy('{"maxUsdPerRun": 1e309}')
    with pytest.raises(RunPolicyError, match="finite number"):
        parse_policy({"maxUsdPerRun": float("inf")})


def test_the_documented_default_policy_is_cdk_json_s() -> None:
    from app import default_context

    assert parse_policy(default_context()["runPolicy"]) == RunPolicy()
