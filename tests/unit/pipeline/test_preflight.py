"""Preflight checks: budget, datasets streamed from S3, the grader smoke test, the staged eval file."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lambdas.pipeline import preflight
from lambdas.pipeline.plan import resolve_plan
from lambdas.pipeline.preflight import PreflightError, estimate_cost, run_preflight
from lambdas.pipeline.schema import Execution, Plan
from lambdas.reward.config import reward_function
from lambdas.reward.engine import RewardFunction
from lambdas.reward.presets import load_preset
from lambdas.reward.verify import verify_grader
from tests.unit.pipeline import samples


def _plan(s3: Any, **changes: Any) -> Plan:
    return samples.resolve(samples.run_input(**changes), head_object=lambda b, k: s3.head_object(Bucket=b, Key=k))


def _local_grader(arn: str):
    assert arn == samples.GRADER_ARN
    return reward_function(preset="classification")


def _quotas(value: float):
    """A Service Quotas lookup that answers ``value`` for every instance type."""
    return lambda names: {name: {"value": value, "code": "L-TEST0001", "source": "applied"} for name in names}


def _run(plan: Plan, s3: Any, grade_batch_for=_local_grader, quota_lookup=None) -> dict:
    quota_lookup = _quotas(8) if quota_lookup is None else quota_lookup
    summary = run_preflight(
        plan,
        s3=s3,
        grade_batch_for=grade_batch_for,
        verify_grader=verify_grader,
        grader_spec=lambda name: load_preset(name).spec,
        quota_lookup=quota_lookup,
    )
    return summary.to_json()


def test_valid_datasets_and_a_sound_grader_pass_and_the_eval_file_is_staged(s3: Any, datasets: dict) -> None:
    plan = _plan(s3)
    summary = _run(plan, s3)
    assert summary["datasets"]["sft"]["rows"] == 64 and summary["datasets"]["rft"]["invalidLines"] == 0
    assert summary["grader"]["passed"] is True and summary["grader"]["rowsSampled"] == preflight.GRADER_SAMPLE_ROWS
    staged = s3.get_object(Bucket=samples.ARTIFACTS_BUCKET, Key="runs/run-1-0b9d6cbe/inputs/eval/gen_qa.jsonl")[
        "Body"
    ].read()
    assert staged == samples.jsonl(samples.eval_rows())
    assert summary["cost"]["estimatedUsd"] <= 2000
    assert summary["quotas"]["status"] == "checked" and summary["quotas"]["warnings"] == []
    json.dumps(summary)  # goes into the state machine's state


def test_the_validated_version_is_the_one_staged(s3: Any, datasets: dict) -> None:
    plan = _plan(s3)
    s3.put_object(Bucket=samples.DATA_BUCKET, Key="datasets/eval.jsonl", Body=b'{"query": "changed"}\n')
    _run(plan, s3)
    staged = s3.get_object(Bucket=samples.ARTIFACTS_BUCKET, Key="runs/run-1-0b9d6cbe/inputs/eval/gen_qa.jsonl")[
        "Body"
    ].read()
    assert staged == samples.jsonl(samples.eval_rows())


def test_the_training_datasets_are_staged_at_the_validated_version_in_folders_of_their_own(
    s3: Any, datasets: dict
) -> None:
    plan = _plan(s3)
    assert (
        plan.datasets.require("sft").stagedUri
        == f"s3://{samples.ARTIFACTS_BUCKET}/runs/run-1-0b9d6cbe/inputs/sft/sft.jsonl"
    )
    assert (
        plan.datasets.require("rft").stagedUri
        == f"s3://{samples.ARTIFACTS_BUCKET}/runs/run-1-0b9d6cbe/inputs/rft/rft.jsonl"
    )
    # replaced after validation, and a neighbour sharing the key prefix: neither may reach a job
    s3.put_object(Bucket=samples.DATA_BUCKET, Key="datasets/sft.jsonl", Body=b'{"changed": true}\n')
    s3.put_object(Bucket=samples.DATA_BUCKET, Key="datasets/rft.jsonl.bak", Body=b'{"old": true}\n')
    summary = _run(plan, s3)
    for name, rows in (("sft", samples.sft_rows()), ("rft", samples.rft_rows())):
        listed = s3.list_objects_v2(Bucket=samples.ARTIFACTS_BUCKET, Prefix=f"runs/run-1-0b9d6cbe/inputs/{name}/")
        assert [o["Key"] for o in listed["Contents"]] == [f"runs/run-1-0b9d6cbe/inputs/{name}/{name}.jsonl"]
        staged = s3.get_object(Bucket=samples.ARTIFACTS_BUCKET, Key=f"runs/run-1-0b9d6cbe/inputs/{name}/{name}.jsonl")
        assert staged["Body"].read() == samples.jsonl(rows)
        assert summary["datasets"][name]["stagedUri"] == plan.datasets.require(name).stagedUri


def test_a_skipped_stage_dataset_is_neither_checked_nor_staged(s3: Any, datasets: dict) -> None:
    plan = _plan(s3, stages={"rft": False})
    assert plan.datasets.require("rft").stagedUri is None
    _run(plan, s3)
    listed = s3.list_objects_v2(Bucket=samples.ARTIFACTS_BUCKET, Prefix="runs/run-1-0b9d6cbe/inputs/rft/")
    assert listed.get("KeyCount", 0) == 0


def test_every_problem_is_reported_together_and_nothing_is_staged(s3: Any, datasets: dict) -> None:
    broken = samples.jsonl(samples.sft_rows(10)).replace(b'"assistant"', b'"bot"', 1) + b"{oops\n"
    s3.put_object(Bucket=samples.DATA_BUCKET, Key="datasets/sft.jsonl", Body=broken)
    plan = _plan(s3, budget={"maxUsd": 100})
    with pytest.raises(PreflightError) as caught:
        _run(plan, s3, quota_lookup=_quotas(2))
    message = str(caught.value)
    assert """datasets.sft (sft): line 1: messages[1].role: is "bot", expected 'assistant'""" in message
    assert "datasets.sft (sft): 9 valid rows; the job's global_batch_size is 32" in message
    assert "datasets.sft (sft): line 11: not valid JSON" in message
    assert "budget.maxUsd: the worst-case GPU cost $1,788.80 exceeds the budget $100.00" in message
    assert "SFT training 4 x ml.p5.48xlarge x 3 h = $660.48" in message
    assert "quota 'ml.p5.48xlarge for training job usage' (L-TEST0001) is 2" in message
    assert "the SFT training job alone needs 4 x ml.p5.48xlarge" in message
    listed = s3.list_objects_v2(Bucket=samples.ARTIFACTS_BUCKET).get("KeyCount", 0)
    assert listed == 0


def test_contending_jobs_pass_with_a_warning_in_the_summary(s3: Any, datasets: dict) -> None:
    summary = _run(_plan(s3), s3, quota_lookup=_quotas(4))
    [warning] = summary["quotas"]["warnings"]
    assert "baseline evaluation and SFT training run at the same time and need 5 x ml.p5.48xlarge" in warning


def test_a_hackable_grader_fails_the_smoke_test(s3: Any, datasets: dict) -> None:
    def always_full_marks(arn: str):
        return lambda items: [{"id": item["id"], "aggregate_reward_score": 1.0} for item in items]

    with pytest.raises(PreflightError, match="grader 'classification' failed the smoke test"):
        _run(_plan(s3), s3, grade_batch_for=always_full_marks)


def test_the_deployed_grader_is_invoked_synchronously_with_a_bare_list() -> None:
    class FakeLambda:
        def __init__(self, error: bool = False) -> None:
            self.calls: list[dict] = []
            self.error = error

        def invoke(self, **kwargs: Any) -> dict:
            self.calls.append(kwargs)
            items = json.loads(kwargs["Payload"])
            body = (
                {"errorMessage": "boom"}
                if self.error
                else [{"id": i["id"], "aggregate_reward_score": 0.5} for i in items]
            )
            response: dict[str, object] = {"Payload": io.BytesIO(json.dumps(body).encode())}
            if self.error:
                response["FunctionError"] = "Unhandled"
            return response

    fake = FakeLambda()
    assert preflight.lambda_grade_batch(fake, "arn:g")([{"id": "a"}]) == [{"id": "a", "aggregate_reward_score": 0.5}]
    assert fake.calls[0]["InvocationType"] == "RequestResponse" and fake.calls[0]["FunctionName"] == "arn:g"
    with pytest.raises(preflight.GraderInvocationError, match="boom"):
        preflight.lambda_grade_batch(FakeLambda(error=True), "arn:g")([{"id": "a"}])


def test_the_cost_estimate_counts_only_the_jobs_that_run() -> None:
    plan = samples.plan(stages={"baselineEval": False, "rft": False})
    cost = estimate_cost(plan)
    assert [item.stage for item in cost.items] == ["sft", "finalEval"]
    assert cost.estimatedUsd == pytest.approx(55.04 * 4 * 3 + 55.04 * 1 * 1.5, abs=0.01)


def test_only_the_datasets_the_plan_uses_are_checked() -> None:
    plan = samples.plan(stages={"rft": False}, evaluation={"task": "gen_qa"})
    assert preflight.dataset_kinds(plan) == {"eval": "gen_qa", "sft": "sft"}


def test_a_batch_override_sets_the_rows_a_training_dataset_needs(s3: Any, datasets: dict) -> None:
    plan = _plan(s3, sft={"overrides": {"global_batch_size": 128}})
    with pytest.raises(PreflightError) as caught:
        _run(plan, s3)
    assert caught.value.problems == [
        "datasets.sft (sft): 64 valid rows; the job's global_batch_size is 128, so the dataset needs at least 128 rows"
    ]


def test_the_rules_follow_the_plan_model(s3: Any, datasets: dict) -> None:
    image = {"format": "png", "source": {"s3Location": {"uri": "s3://media/a.png", "bucketOwner": samples.ACCOUNT}}}
    rows = samples.sft_rows()
    for row in rows:
        row["messages"][0]["content"].append({"image": image})
    s3.put_object(Bucket=samples.DATA_BUCKET, Key="datasets/sft.jsonl", Body=samples.jsonl(rows))
    micro = _plan(s3, model="nova-micro", stages={"rft": False})
    with pytest.raises(PreflightError) as caught:
        _run(micro, s3)
    assert caught.value.problems[0] == (
        "datasets.sft (sft): line 1: messages[0].content[1].image: nova-micro is a text-only model"
    )
    assert _run(_plan(s3), s3)["datasets"]["sft"]["invalidLines"] == 0


def test_rows_without_schema_version_gain_it_in_the_staged_copy_only(s3: Any, datasets: dict) -> None:
    rows = samples.sft_rows()
    for row in rows[::2]:
        del row["schemaVersion"]
    original = samples.jsonl(rows)
    s3.put_object(Bucket=samples.DATA_BUCKET, Key="datasets/sft.jsonl", Body=original)
    summary = _run(_plan(s3), s3)
    assert summary["datasets"]["sft"]["schemaVersionAdded"] == 32
    assert summary["datasets"]["rft"]["schemaVersionAdded"] == 0
    staged_key = "runs/run-1-0b9d6cbe/inputs/sft/sft.jsonl"
    staged = s3.get_object(Bucket=samples.ARTIFACTS_BUCKET, Key=staged_key)["Body"].read()
    assert [json.loads(line) for line in staged.splitlines()] == [
        {"schemaVersion": "bedrock-conversation-2024", **row} for row in rows
    ]
    source = s3.get_object(Bucket=samples.DATA_BUCKET, Key="datasets/sft.jsonl")["Body"].read()
    assert source == original


def test_evaluation_prompts_in_the_training_data_are_a_counted_warning(s3: Any, datasets: dict) -> None:
    eval_rows = [{**row, "query": f"unseen question {i}"} for i, row in enumerate(samples.eval_rows())]
    eval_rows[0]["query"] = "  " + samples.sft_rows()[5]["messages"][0]["content"][0]["text"].replace(" ", "\n ")
    eval_rows[1]["query"] = samples.rft_rows()[7]["messages"][1]["content"]
    eval_rows[2]["query"] = samples.rft_rows()[9]["messages"][1]["content"]
    s3.put_object(Bucket=samples.DATA_BUCKET, Key="datasets/eval.jsonl", Body=samples.jsonl(eval_rows))
    leakage = _run(_plan(s3), s3)["leakage"]
    assert leakage["evalPrompts"] == 12
    # the SFT and RFT samples share their questions: every leaked prompt is in both splits
    assert leakage["found"] == {"sft": 3, "rft": 3}
    assert leakage["warnings"][0].startswith("3 of 12 evaluation prompts appear verbatim in the sft data")


def test_no_leakage_is_reported_as_zero_per_split(s3: Any, datasets: dict) -> None:
    eval_rows = [{**row, "query": f"unseen question {i}"} for i, row in enumerate(samples.eval_rows())]
    s3.put_object(Bucket=samples.DATA_BUCKET, Key="datasets/eval.jsonl", Body=samples.jsonl(eval_rows))
    leakage = _run(_plan(s3), s3)["leakage"]
    assert leakage == {"evalPrompts": 12, "found": {"sft": 0, "rft": 0}, "examples": [], "warnings": []}


@given(st.lists(st.binary(max_size=60), max_size=80), st.sampled_from([1, 7, 64, 4096, -1]))
def test_the_staged_copy_reader_returns_every_byte_in_pieces_no_larger_than_asked(
    pieces: list[bytes], size: int
) -> None:
    reader = preflight._Lines(iter(pieces))
    out = []
    while chunk := reader.read(size):
        assert size < 0 or len(chunk) <= size
        out.append(chunk)
    assert b"".join(out) == b"".join(pieces)


def test_a_custom_python_grader_passes_the_smoke_test_through_its_deployed_function(s3: Any, datasets: dict) -> None:
    from lambdas.pipeline import handlers

    # Given a run naming a custom grader module, deployed as its own function like a preset
    arn = samples.GRADER_ARN.replace("Classification", "ShortAnswer")
    plan, _ = resolve_plan(
        samples.run_input(grader="short_answer"),
        execution=Execution.model_validate(samples.EXECUTION),
        pipeline_name=samples.PIPELINE,
        data_bucket=samples.DATA_BUCKET,
        artifacts_bucket=samples.ARTIFACTS_BUCKET,
        graders={**samples.GRADERS, "short_answer": arn},
        grader_version=handlers._grader_version,
        head_object=lambda b, k: s3.head_object(Bucket=b, Key=k),
        read_object=samples.read_earlier_run,
    )
    assert plan.grader is not None and (plan.grader.version or "").startswith("sha256:")
    deployed = reward_function(preset="short_answer")

    def grade_batch_for(called: str) -> RewardFunction:
        assert called == arn
        return deployed

    summary = run_preflight(
        plan,
        s3=s3,
        grade_batch_for=grade_batch_for,
        verify_grader=verify_grader,
        grader_spec=handlers._grader_spec,
        quota_lookup=_quotas(8),
    ).to_json()
    # Then preflight verified it with the spec the preflight function reads: the reference wins, hacks lose
    assert summary["grader"]["name"] == "short_answer"
    assert summary["grader"]["passed"] is True
    assert {case["case"] for case in summary["grader"]["cases"]} >= {"reference", "empty", "padded"}
