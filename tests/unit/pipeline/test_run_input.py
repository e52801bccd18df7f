"""Validate run: the run input model, every problem in one error, and the resolved plan."""

from __future__ import annotations

import pytest

from lambdas.pipeline import validation
from lambdas.pipeline.plan import resolve_plan
from lambdas.pipeline.schema import Execution, RunInput, StageRecord
from lambdas.pipeline.validation import RunInputError, input_problems
from tests.unit.pipeline import samples


def _resolve(
    payload: object, head=samples.head_ok, execution=samples.EXECUTION, read=samples.read_earlier_run
) -> tuple[dict, dict]:
    """The plan and the stage records as they cross Step Functions (JSON)."""
    plan, stages = resolve_plan(
        payload,
        execution=Execution.model_validate(execution),
        pipeline_name=samples.PIPELINE,
        data_bucket=samples.DATA_BUCKET,
        artifacts_bucket=samples.ARTIFACTS_BUCKET,
        graders=samples.GRADERS,
        grader_version=lambda name: "1.0.0",
        head_object=head,
        read_object=read,
    )
    return plan.to_json(), stages.to_json()


def _problems(payload: object, head=samples.head_ok, read=samples.read_earlier_run) -> list[str]:
    with pytest.raises(RunInputError) as caught:
        _resolve(payload, head=head, read=read)
    return caught.value.problems


def test_only_datasets_are_required_and_the_defaults_make_a_full_run() -> None:
    plan, stages = _resolve(samples.run_input())
    assert plan["runId"] == "run-1-0b9d6cbe"
    assert plan["enabled"] == {
        "baselineEval": True,
        "sft": True,
        "sftEval": True,
        "rft": True,
        "finalEval": True,
        "deploy": True,
    }
    assert plan["model"]["key"] == "nova-2-lite"
    assert plan["grader"] == {"name": "classification", "arn": samples.GRADER_ARN, "version": "1.0.0"}
    assert plan["jobs"]["sft"] == {
        "instanceType": "ml.p5.48xlarge",
        "instanceCount": 4,
        "maxRuntimeSeconds": 3 * 3600,
        "overrides": {},
    }
    assert plan["jobs"]["rft"]["instanceCount"] == 4 and plan["jobs"]["eval"]["instanceCount"] == 1
    assert plan["gate"] == {
        "metric": "exact_match",
        "minScore": 0.0,
        "minGainOverBaseline": 0.0,
        "mustBeatDeployed": True,
    }
    assert all(record == StageRecord(status="PENDING").to_json() for record in stages.values())


def test_the_design_example_input_is_valid() -> None:
    example = samples.run_input(
        model="nova-2-lite",
        grader="classification",
        stages={"baselineEval": True, "sft": True, "rft": True, "deploy": True},
        sft={"overrides": {"max_steps": 100, "lr": 5e-6}},
        rft={"overrides": {"max_steps": 40, "number_generation": 4}},
        gate={"metric": "exact_match", "minScore": 0.7, "minGainOverBaseline": 0.05, "mustBeatDeployed": True},
        budget={"maxUsd": 2000},
    )
    plan, _ = _resolve(example)
    assert plan["jobs"]["sft"]["overrides"] == {"max_steps": 100, "lr": 5e-6}
    assert plan["jobs"]["rft"]["overrides"] == {"max_steps": 40, "number_generation": 4}


def test_the_plan_records_dataset_etags_versions_and_the_staged_evaluation_file() -> None:
    plan, _ = _resolve(samples.run_input())
    eval_dataset = plan["datasets"]["eval"]
    assert eval_dataset["etag"] == "etag-datasets/eval.jsonl" and eval_dataset["versionId"] == "v1"
    assert eval_dataset["stagedUri"] == f"s3://{samples.ARTIFACTS_BUCKET}/runs/run-1-0b9d6cbe/inputs/eval/gen_qa.jsonl"


def test_every_problem_is_listed_in_one_error_with_its_field_path() -> None:
    bad = {
        "datasets": {"sft": "s3://somewhere-else/data.jsonl", "rft": "https://example.com/rft.jsonl"},
        "model": "nova-9",
        "stages": {"sft": "yes"},
        "colour": "blue",
        "sft": {"overrides": {"epochs": 2}},
        "budget": {"maxUsd": 0},
    }
    with pytest.raises(RunInputError) as caught:
        _resolve(bad)
    message = str(caught.value)
    assert message.startswith("The run input has ")
    for fragment in (
        "stages.sft: Input should be a valid boolean",
        "colour: unknown key (allowed: datasets, model, grader, stages",
        "model: unknown model 'nova-9'",
        "datasets.sft: s3://somewhere-else/data.jsonl is outside the project's data bucket",
        "datasets.rft: expected an s3://bucket/key URI",
        "datasets.eval: required",
        "budget.maxUsd: Input should be greater than 0",
    ):
        assert fragment in message, (fragment, message)
    assert all(line.startswith("- ") for line in message.splitlines()[1:])


def test_unknown_override_keys_list_the_allowed_ones() -> None:
    problems = _problems(samples.run_input(sft={"overrides": {"learning_rate": 1e-5}}, rft={"overrides": {"foo": 1}}))
    assert any(p.startswith("sft.overrides.learning_rate: unknown override") and "use lr" in p for p in problems)
    assert any(p.startswith("rft.overrides.foo: unknown override") and "number_generation" in p for p in problems)


def test_unknown_nested_keys_are_rejected() -> None:
    problems = _problems(samples.run_input(gate={"metric": "f1_score", "min_score": 0.5}))
    assert problems == [
        "gate.min_score: unknown key (allowed: metric, minScore, minGainOverBaseline, mustBeatDeployed)"
    ]


def test_wrong_types_are_not_coerced() -> None:
    problems = _problems(samples.run_input(budget={"maxUsd": "2000"}, stages={"deploy": 1}))
    assert any(p.startswith("budget.maxUsd:") for p in problems)
    assert any(p.startswith("stages.deploy:") for p in problems)


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("s3://other-bucket/datasets/sft.jsonl", "outside the project's data bucket"),
        (f"s3://{samples.DATA_BUCKET}/uploads/sft.jsonl", f"must be under s3://{samples.DATA_BUCKET}/datasets/"),
        (f"s3://{samples.DATA_BUCKET}/datasets/", "is a folder"),
        ("s3://", "does not name a valid bucket"),
    ],
)
def test_dataset_uris_must_be_files_in_the_data_bucket(uri: str, fragment: str) -> None:
    problems = _problems(
        samples.run_input(
            datasets={
                "sft": uri,
                "rft": samples.run_input()["datasets"]["rft"],
                "eval": samples.run_input()["datasets"]["eval"],
            }
        )
    )
    assert any(p.startswith("datasets.sft:") and fragment in p for p in problems), problems


def test_missing_and_unreadable_objects_are_reported() -> None:
    def head(bucket: str, key: str) -> dict:
        if key.endswith("sft.jsonl"):
            raise LookupError(key)
        if key.endswith("rft.jsonl"):
            raise PermissionError(key)
        return samples.head_ok(bucket, key)

    problems = _problems(samples.run_input(), head=head)
    assert f"datasets.sft: s3://{samples.DATA_BUCKET}/datasets/sft.jsonl does not exist" in problems
    assert f"datasets.rft: s3://{samples.DATA_BUCKET}/datasets/rft.jsonl is not readable by the pipeline" in problems


def test_an_empty_dataset_is_rejected() -> None:
    problems = _problems(samples.run_input(), head=lambda b, k: {"ETag": '"e"', "ContentLength": 0})
    assert len([p for p in problems if p.endswith("is empty")]) == 3


def test_rft_without_an_sft_checkpoint_cannot_work() -> None:
    problems = _problems(samples.run_input(stages={"sft": False}))
    assert any(p.startswith("stages.rft: RFT starts from an SFT checkpoint") for p in problems)


def test_nothing_to_train_is_rejected() -> None:
    problems = _problems(samples.run_input(stages={"sft": False, "rft": False}))
    assert any(p.startswith("stages: nothing to train") for p in problems)


def test_rft_on_a_model_without_an_rft_image_is_rejected() -> None:
    problems = _problems(samples.run_input(model="nova-pro"))
    assert any(p.startswith("stages.rft: nova-pro has no RFT training image") for p in problems)
    plan, _ = _resolve(samples.run_input(model="nova-pro", stages={"rft": False}))
    assert plan["enabled"]["rft"] is False and plan["grader"] is None


def test_a_grader_that_is_not_deployed_is_rejected_when_it_is_needed() -> None:
    problems = _problems(samples.run_input(grader="numeric"))
    assert problems == ["grader: 'numeric' is not a deployed grader (deployed: classification)"]
    plan, _ = _resolve(samples.run_input(grader="numeric", stages={"rft": False}))
    assert plan["grader"] is None


def test_resume_from_rft_skips_sft_and_keeps_the_checkpoint() -> None:
    plan, stages = _resolve(samples.run_input(resumeFrom=samples.resume("rft", samples.SFT_CHECKPOINT)))
    assert plan["enabled"]["sft"] is False and plan["enabled"]["rft"] is True and plan["enabled"]["sftEval"] is True
    assert stages["sft"] == StageRecord(status="SKIPPED", checkpoint=samples.SFT_CHECKPOINT, resumed=True).to_json()


def test_resume_from_final_evaluation_skips_training() -> None:
    plan, stages = _resolve(samples.run_input(resumeFrom=samples.resume("finalEval", samples.RFT_CHECKPOINT)))
    assert not plan["enabled"]["sft"] and not plan["enabled"]["rft"] and not plan["enabled"]["sftEval"]
    assert stages["rft"]["checkpoint"] == samples.RFT_CHECKPOINT
    assert plan["jobs"]["sft"] is None and plan["jobs"]["rft"] is None


def test_resume_contradicting_explicit_stages_is_rejected() -> None:
    problems = _problems(
        samples.run_input(stages={"sft": True}, resumeFrom={"stage": "rft", "checkpoint": "not-a-uri"})
    )
    assert any(p.startswith("stages.sft: true contradicts resumeFrom.stage='rft'") for p in problems)
    assert any(p.startswith("resumeFrom.checkpoint:") for p in problems)


def test_instance_settings_are_checked_against_the_recipe_and_the_price_table() -> None:
    problems = _problems(
        samples.run_input(
            sft={"instanceCount": 3, "instanceType": "ml.m5.large"},
            rft={"overrides": {"replicas": 4}, "instanceCount": 8},
        )
    )
    assert any(p.startswith("sft.instanceCount: 3 instances; nova-2-lite sft accepts [4, 8, 16, 32]") for p in problems)
    assert (
        "sft.instanceType: 'ml.m5.large' is not supported by the nova-2-lite sft recipe (allowed: ml.p5.48xlarge)"
        in problems
    )
    assert any(p.startswith("rft.overrides.replicas: 4 contradicts rft.instanceCount 8") for p in problems)


def test_replicas_override_sets_the_instance_count_and_hours_set_the_runtime() -> None:
    plan, _ = _resolve(samples.run_input(sft={"overrides": {"replicas": 8}, "maxRuntimeHours": 1.5}))
    assert plan["jobs"]["sft"]["instanceCount"] == 8 and plan["jobs"]["sft"]["maxRuntimeSeconds"] == 5400
    assert "replicas" not in plan["jobs"]["sft"]["overrides"]


def test_a_gain_over_a_baseline_that_is_not_evaluated_is_rejected() -> None:
    problems = _problems(samples.run_input(stages={"baselineEval": False}, gate={"minGainOverBaseline": 0.05}))
    assert problems == [
        "gate.minGainOverBaseline: 0.05 (given, or the run policy's floor for a deploying run): the gain over the "
        "baseline needs stages.baselineEval=true"
    ]


def test_rft_eval_needs_the_grader_and_stages_the_file_under_its_name() -> None:
    plan, _ = _resolve(
        samples.run_input(stages={"rft": False}, evaluation={"task": "rft_eval"}, gate={"metric": "mean_reward"})
    )
    assert plan["grader"]["name"] == "classification"
    assert plan["datasets"]["eval"]["stagedUri"].endswith("/inputs/eval/rft_eval.jsonl")


def test_a_non_object_input_is_rejected() -> None:
    assert _problems(["datasets"]) == ["(input): a run input is a JSON object, got list"]


def test_an_unsafe_execution_name_still_gives_a_run_id() -> None:
    plan, _ = _resolve(samples.run_input(), execution={**samples.EXECUTION, "name": "weekly retrain #3"})
    assert plan["runId"].startswith("weekly-retrain-3-")


def test_input_problems_checks_everything_but_s3_for_the_trigger() -> None:
    assert input_problems(samples.run_input(), data_bucket=samples.DATA_BUCKET, graders=samples.GRADERS) == []
    assert input_problems({"datasets": {"sft": "s3://x/y"}}) != []
    problems = input_problems({"datasets": {"eval": 5}})
    assert problems and problems[0].startswith("datasets.eval:")


def test_effective_stages_derive_the_sft_evaluation() -> None:
    only_sft = RunInput.model_validate(samples.run_input(stages={"rft": False}))
    assert validation.effective_stages(only_sft).sftEval is False  # the final evaluation judges SFT


# -- gate.metric, instance types, escrow checkpoints, skipped stages ---------------------------------


@pytest.mark.parametrize("metric", ["exact_match", "f1_score", "rougeL", "rouge1", "bleu", "em"])
def test_a_gen_qa_gate_metric_is_accepted_and_normalized_as_the_results_are(metric: str) -> None:
    from lambdas.pipeline.metrics import GEN_QA_METRICS
    from lambdas.pipeline.outputs import metric_name

    plan, _ = _resolve(samples.run_input(gate={"metric": metric}))
    assert plan["gate"]["metric"] == metric_name(metric) and plan["gate"]["metric"] in GEN_QA_METRICS


def test_a_gate_metric_that_gen_qa_does_not_report_is_rejected_by_the_trigger_check_too() -> None:
    payload = samples.run_input(gate={"metric": "accuracy"})
    problems = input_problems(payload, data_bucket=samples.DATA_BUCKET, graders=samples.GRADERS)
    assert problems == [
        "gate.metric: 'accuracy' is not a gen_qa metric (one of: exact_match, quasi_exact_match, "
        "f1_score, f1_score_quasi, rouge1, rouge2, rougel, bleu)"
    ]
    assert _problems(payload) == problems


def test_rft_eval_requires_an_explicit_gate_metric() -> None:
    payload = samples.run_input(evaluation={"task": "rft_eval"})
    (problem,) = input_problems(payload, data_bucket=samples.DATA_BUCKET, graders=samples.GRADERS)
    assert problem.startswith("gate.metric: required with evaluation.task 'rft_eval'")
    assert "'aggregate_reward_score' (the mean reward)" in problem  # the metric the reader always reports
    explicit = samples.run_input(evaluation={"task": "rft_eval"}, gate={"metric": "exact_match"})
    assert input_problems(explicit, data_bucket=samples.DATA_BUCKET, graders=samples.GRADERS) == []


@pytest.mark.parametrize(
    ("model", "method", "field", "allowed"),
    [
        ("nova-2-lite", "rft", "rft", "ml.p5.48xlarge"),
        ("nova-2-lite", "eval", "evaluation", "ml.p5.48xlarge"),
        ("nova-lite", "sft", "sft", "ml.p5.48xlarge, ml.p4d.24xlarge"),
    ],
)
def test_an_instance_type_outside_the_recipe_is_rejected_with_the_allowed_list(
    model: str, method: str, field: str, allowed: str
) -> None:
    stages = {"rft": False} if model != "nova-2-lite" else {}
    payload = samples.run_input(model=model, stages=stages, **{field: {"instanceType": "ml.g5.12xlarge"}})
    problems = input_problems(payload, data_bucket=samples.DATA_BUCKET, graders=samples.GRADERS)
    assert problems == [
        f"{field}.instanceType: 'ml.g5.12xlarge' is not supported by the {model} {method} recipe (allowed: {allowed})"
    ]


def test_every_recipe_instance_type_is_priced() -> None:
    from lambdas.pipeline import recipes
    from lambdas.pipeline.catalog import INSTANCE_PRICE_USD_PER_HOUR, METHODS, MODELS

    for model in MODELS:
        for method in METHODS:
            if recipes.available(model, method):
                template = recipes.load_template(model, method)
                assert template.instance_type in template.instance_types
                assert set(template.instance_types) <= set(INSTANCE_PRICE_USD_PER_HOUR), (model, method)


def test_a_resume_checkpoint_outside_the_escrow_buckets_is_rejected() -> None:
    payload = samples.run_input(resumeFrom=samples.resume("rft", "s3://my-bucket/checkpoints/sft/"))
    (problem,) = input_problems(payload, data_bucket=samples.DATA_BUCKET, graders=samples.GRADERS)
    assert problem.startswith("resumeFrom.checkpoint: s3://my-bucket/checkpoints/sft/ is not in an escrow bucket")
    assert "customer-escrow-<account>-smtj-<id>" in problem
    good = samples.run_input(resumeFrom=samples.resume("rft", samples.SFT_CHECKPOINT))
    assert input_problems(good, data_bucket=samples.DATA_BUCKET, graders=samples.GRADERS) == []


@pytest.mark.parametrize(
    ("checkpoint", "reason"),
    [
        (
            "s3://customer-escrow-111122223333-smtj-0a1b2c3d/nova-run-0-sft-a1/checkpoint/",
            "escrow bucket of account 111122223333, not of this account 123456789012",
        ),
        (
            f"s3://customer-escrow-{samples.ACCOUNT}-hp-0a1b2c3d/nova-run-0-sft-a1/checkpoint/",
            "training-job evaluation cannot use it",
        ),
        ("s3://customer-escrow-smtj-0a1b2c3d/nova-run-0-sft-a1/checkpoint/", "not a well-formed escrow bucket name"),
    ],
)
def test_validate_run_lists_a_checkpoint_of_another_account_or_hyperpod_under_its_field(
    checkpoint: str, reason: str
) -> None:
    # the run record names the checkpoint, the datasets are missing too: one error lists both problems
    def read(bucket: str, key: str) -> bytes:
        return samples.earlier_run_record(sft=checkpoint)

    def missing(bucket: str, key: str) -> dict:
        raise LookupError(key)

    with pytest.raises(RunInputError) as caught:
        _resolve(samples.run_input(resumeFrom=samples.resume("rft", checkpoint)), head=missing, read=read)
    problems = caught.value.problems
    (problem,) = [p for p in problems if p.startswith("resumeFrom.")]
    assert problem.startswith(f"resumeFrom.checkpoint: {checkpoint}")
    assert reason in problem
    assert "datasets.eval: s3://nova-data-test/datasets/eval.jsonl does not exist" in problems
    assert "resumeFrom.checkpoint:" in str(caught.value)


def test_the_account_comes_from_the_execution_arn() -> None:
    elsewhere = {**samples.EXECUTION, "id": "arn:aws:states:us-east-1:111122223333:execution:Pipeline:run-1-0b9d6cbe"}
    with pytest.raises(RunInputError) as caught:
        _resolve(samples.run_input(resumeFrom=samples.resume("rft", samples.SFT_CHECKPOINT)), execution=elsewhere)
    (problem,) = caught.value.problems
    assert "escrow bucket of account 123456789012, not of this account 111122223333" in problem


def test_a_resume_without_the_earlier_run_says_what_to_add() -> None:
    problems = _problems(samples.run_input(resumeFrom=samples.resume("rft", samples.SFT_CHECKPOINT, run=None)))
    (problem,) = problems
    assert problem.startswith("resumeFrom.run: required: name the earlier run whose run.json recorded the checkpoint")
    assert '"run": "<run-id>"' in problem


def test_a_resume_checkpoint_must_be_recorded_by_the_named_run() -> None:
    reads: list[tuple[str, str]] = []

    def read(bucket: str, key: str) -> bytes:
        reads.append((bucket, key))
        return samples.earlier_run_record(sft=samples.SFT_CHECKPOINT)

    unrecorded = f"s3://customer-escrow-{samples.ACCOUNT}-smtj-0a1b2c3d/nova-other-run-sft-a1/checkpoint/"
    (problem,) = _problems(samples.run_input(resumeFrom=samples.resume("rft", unrecorded)), read=read)
    assert problem.startswith(f"resumeFrom.checkpoint: {unrecorded} is not a stage checkpoint of run 'run-0-fc55bbdc'")
    assert f"stages.sft.checkpoint = {samples.SFT_CHECKPOINT}" in problem
    # one read: exactly the named run's record
    assert reads == [(samples.ARTIFACTS_BUCKET, "runs/run-0-fc55bbdc/run.json")]


def test_the_rft_checkpoint_of_the_named_run_resumes_too() -> None:
    plan, stages = _resolve(samples.run_input(resumeFrom=samples.resume("finalEval", samples.RFT_CHECKPOINT)))
    assert plan["resumeFrom"] == {"stage": "finalEval", "checkpoint": samples.RFT_CHECKPOINT, "run": "run-0-fc55bbdc"}
    assert stages["rft"]["checkpoint"] == samples.RFT_CHECKPOINT and stages["rft"]["resumed"] is True


@pytest.mark.parametrize(
    ("run", "read", "expected"),
    [
        (
            "run-9-0123abcd",
            samples.read_earlier_run,
            "resumeFrom.run: no run 'run-9-0123abcd' in this pipeline's artifacts bucket",
        ),
        ("../run-0-fc55bbdc", samples.read_earlier_run, "resumeFrom.run: '../run-0-fc55bbdc' is not a run id"),
        (
            "run-0-fc55bbdc",
            lambda b, k: samples.earlier_run_record(pipeline="other"),
            "resumeFrom.run: run 'run-0-fc55bbdc' was recorded by pipeline 'other', not by this pipeline ('nova')",
        ),
        (
            "run-0-fc55bbdc",
            lambda b, k: b"{not json",
            "resumeFrom.run: s3://nova-artifacts-test/runs/run-0-fc55bbdc/run.json is not valid",
        ),
    ],
)
def test_a_resume_from_a_run_this_pipeline_did_not_record_is_rejected(run: str, read, expected: str) -> None:
    (problem,) = _problems(
        samples.run_input(resumeFrom=samples.resume("rft", samples.SFT_CHECKPOINT, run=run)), read=read
    )
    assert problem.startswith(expected), problem


def test_an_unreadable_run_record_is_reported() -> None:
    def denied(bucket: str, key: str) -> bytes:
        raise PermissionError(key)

    (problem,) = _problems(samples.run_input(resumeFrom=samples.resume("rft", samples.SFT_CHECKPOINT)), read=denied)
    assert (
        problem
        == "resumeFrom.run: s3://nova-artifacts-test/runs/run-0-fc55bbdc/run.json is not readable by the pipeline"
    )


def test_settings_of_a_skipped_rft_are_still_checked_and_listed_with_the_others() -> None:
    payload = samples.run_input(
        stages={"rft": False}, rft={"overrides": {"epochs": 3}, "instanceCount": 1}, sft={"instanceCount": 3}
    )
    problems = input_problems(payload, data_bucket=samples.DATA_BUCKET, graders=samples.GRADERS)
    assert any(p.startswith("rft.overrides.epochs: unknown override") for p in problems), problems
    assert any(p.startswith("rft.instanceCount: 1 instances; nova-2-lite rft accepts") for p in problems), problems
    assert any(p.startswith("sft.instanceCount: 3 instances") for p in problems), problems
    skipped_sft = samples.run_input(resumeFrom=samples.resume("rft", samples.SFT_CHECKPOINT), sft={"instanceCount": 3})
    problems = input_problems(skipped_sft, data_bucket=samples.DATA_BUCKET, graders=samples.GRADERS)
    assert any(p.startswith("sft.instanceCount: 3 instances") for p in problems), problems


def test_override_errors_name_the_field_the_value_and_the_published_range() -> None:
    problems = _problems(
        samples.run_input(
            sft={"overrides": {"warmup_steps": 500, "max_steps": 1000}},
            rft={"overrides": {"lr": 1.0, "kl_loss_coef": float("nan"), "max_steps": 10**30}, "instanceCount": 3},
            evaluation={"overrides": {"max_new_tokens": 10**9}},
        )
    )
    for expected in (
        "sft.overrides.warmup_steps: 500 is above the maximum 100 (allowed: an integer >= 0 and <= 100",
        "rft.overrides.lr: 1.0 is above the maximum 0.001 (allowed: a number >= 1e-07 and <= 0.001)",
        "rft.overrides.kl_loss_coef: nan is not valid: expected a number >= 0 and <= 1",
        "rft.overrides.max_steps: 1000000000000000000000000000000 is above the maximum 100000",
        "rft.instanceCount: 3 instances; nova-2-lite rft accepts [2, 4, 8]",
        "evaluation.overrides.max_new_tokens: 1000000000 is above the maximum 32768",
    ):
        assert any(p.startswith(expected) for p in problems), (expected, problems)
