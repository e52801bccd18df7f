"""The execution state stays under a fixed size: the largest valid input and the worst retry storm the policy
allows, composed into the state "Record failed run" receives."""

from __future__ import annotations

import json
from typing import Any

from lambdas.pipeline import jobs, naming
from lambdas.pipeline.policy import RunPolicy
from lambdas.pipeline.schema import (
    MAX_NAME,
    MAX_OVERRIDES,
    MAX_URI,
    JobAttempt,
    NotedFailure,
    RunState,
    StageFailure,
    StageRecord,
    StageRecords,
    StepError,
)
from lambdas.pipeline.stages import job_record
from lambdas.pipeline.validation import MAX_SHOWN, input_problems
from tests.unit.pipeline import samples
from tests.unit.pipeline.test_jobs import FakeSageMaker

# Step Functions' limits: the state is at most 256 KB; a caught error's name at most 256 characters and its
# cause at most 32,768 (TaskFailedEventDetails, Step Functions API Reference).
STATE_LIMIT_BYTES = 256 * 1024
BUDGET_BYTES = 200 * 1024
MAX_STEP_CAUSE = 32_768
MAX_STEP_ERROR = 256


def _largest_valid_input() -> dict[str, Any]:
    """A valid run input with every free string at its length limit (the datasets at the longest URI)."""
    prefix = f"s3://{samples.DATA_BUCKET}/datasets/"
    longest = {
        name: prefix + name * ((MAX_URI - len(prefix) - len(".jsonl")) // len(name)) + ".jsonl"
        for name in ("sft", "rft", "eval")
    }
    return samples.run_input(
        datasets=longest,
        description="d" * 1000,
        evaluation={"task": "rft_eval"},
        gate={"metric": "m" * MAX_NAME, "minScore": 0.5, "minGainOverBaseline": 0.05},
        sft={"overrides": {"max_steps": 100, "lr": 5e-6}},
        rft={"overrides": {"max_steps": 40, "number_generation": 4, "lambda_concurrency_limit": 50}},
    )


def _storm(s3: Any, plan: Any, stage: str) -> JobAttempt:
    """The job of ``stage`` after the most attempts any stage may make, each failing with the longest cause."""
    previous = JobAttempt.model_validate({"stage": stage, "attempt": 0, "startedAt": "t0", "errors": []})
    for _ in range(jobs.MAX_ATTEMPTS_BESIDE_SIBLING):
        previous = jobs.prepare_job(
            stage=stage,  # type: ignore[arg-type]
            plan=plan,
            stages=samples.stages_after_training(),
            previous=previous,
            region="us-east-1",
            s3=s3,
            sagemaker=FakeSageMaker(),
        )
        previous.lastError = StepError(Error="E" * MAX_STEP_ERROR, Cause="c" * MAX_STEP_CAUSE)
    return previous


def test_the_largest_valid_input_is_valid() -> None:
    assert input_problems(_largest_valid_input(), data_bucket=samples.DATA_BUCKET, graders=samples.GRADERS) == []


def test_an_invalid_input_error_quotes_a_bounded_part_of_each_value() -> None:
    payload = samples.run_input(model="x" * 100_000, sft={"overrides": {f"k{i}": 1 for i in range(MAX_OVERRIDES + 1)}})
    problems = input_problems(payload)
    assert problems and all(len(p) < 2 * MAX_SHOWN + 200 for p in problems), [len(p) for p in problems]


def test_the_state_of_the_worst_failed_run_stays_under_200_kb(s3: Any) -> None:
    # Given the largest valid input, resolved under the most permissive policy
    payload = _largest_valid_input()
    plan = samples.plan(policy=RunPolicy(maxLambdaConcurrency=1000), **{k: v for k, v in payload.items()})
    # And the worst retry storm in every job stage: the most attempts, each failing with the longest error
    storms = {stage: _storm(s3, plan, stage) for stage in naming.STAGES}
    records: dict[str, StageRecord] = {}
    for stage, job in storms.items():
        record = job_record(job, status="FAILED", ended_at="t1")
        # Evaluations beside training note their failure (with the failed job) and their branch goes on.
        if stage in ("baselineEval", "sftEval"):
            record.failure = NotedFailure(stage=stage, job=job)  # type: ignore[arg-type]
        records[stage] = record
    # When the run ends on the last failure, with the longest error cause Step Functions can carry
    state = RunState(
        input=payload,
        execution=samples.EXECUTION,  # type: ignore[arg-type]
        plan=plan,
        stages=StageRecords.model_validate({k: v.to_json() for k, v in records.items()}),
        error=StepError(Error="States.TaskFailed", Cause="c" * MAX_STEP_CAUSE),
        failedStage="finalEval",
        stageFailure=StageFailure(stage="finalEval", job=storms["finalEval"]),
    )
    size = len(json.dumps(state.model_dump(mode="json"), separators=(",", ":")).encode())
    # Then the whole state stays under the budget, well inside Step Functions' limit
    assert size < BUDGET_BYTES < STATE_LIMIT_BYTES, size
    # And each stage's kept errors are the last few, truncated
    for job in storms.values():
        assert len(job.errors) == jobs.MAX_KEPT_ERRORS
        assert all(len(e.cause) <= jobs.MAX_CAUSE_CHARS for e in job.errors)
