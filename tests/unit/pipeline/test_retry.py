"""The retry decision for failed job attempts, on the error shapes Step Functions hands over."""

from __future__ import annotations

import json

import pytest

from lambdas.pipeline import jobs, retry
from lambdas.pipeline.schema import JobAttempt, RetryDecision, StepError
from tests.unit.pipeline import samples

# CreateTrainingJob refused: the integration's error name and the service's message.
QUOTA = {
    "Error": "SageMaker.ResourceLimitExceededException",
    "Cause": "The account-level service limit 'ml.p5.48xlarge for training job usage' is 4 Instances, with current "
    "utilization of 4 Instances and a request delta of 4 Instances. (Service: SageMaker, Status Code: 400, "
    "Error Code: ResourceLimitExceeded, Request ID: 0f1e2d3c)",
}
THROTTLED = {"Error": "SageMaker.AmazonSageMakerException", "Cause": "Rate exceeded (Error Code: ThrottlingException)"}
UNAVAILABLE = {"Error": "SageMaker.ServiceUnavailable", "Cause": "Service is unavailable (Service: SageMaker)"}
INTERNAL = {"Error": "SageMaker.InternalFailure", "Cause": "We encountered an internal error. Please try again."}


def _failed_job(reason: str, **extra: object) -> dict:
    """A job that ran and failed: .sync reports States.TaskFailed with the job's description as the cause."""
    described = {
        "TrainingJobName": "nova-run-1-0b9d6cbe-sft-a1",
        "TrainingJobStatus": "Failed",
        "FailureReason": reason,
    }
    return {"Error": "States.TaskFailed", "Cause": json.dumps({**described, **extra})}


CAPACITY = _failed_job("CapacityError: Unable to provision requested ML compute capacity. Please retry later.")
ALGORITHM = _failed_job("AlgorithmError: recipe key training_config.max_length must be one of 8192, 16384")


def _job(error: dict, attempt: int = 1, stage: str = "sft") -> JobAttempt:
    name = f"nova-run-1-0b9d6cbe-{stage}-a{attempt}"
    return JobAttempt.model_validate({"stage": stage, "name": name, "attempt": attempt, "lastError": error})


def _classify(error: dict) -> str | None:
    return retry.classify(StepError.model_validate(error))


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (QUOTA, "quota"),
        (THROTTLED, "throttling"),
        (UNAVAILABLE, "transient"),
        (INTERNAL, "transient"),
        (CAPACITY, "capacity"),
    ],
)
def test_capacity_quota_throttling_and_transient_errors_are_retried_after_the_backoff(error: dict, kind: str) -> None:
    decision = retry.decide(stage="sft", plan=samples.plan(), job=_job(error, attempt=2))
    assert _classify(error) == kind
    assert decision.retry is True
    assert decision.delaySeconds == jobs.retry_delay_seconds(2) == 600
    assert kind in decision.reason


@pytest.mark.parametrize(
    "error",
    [
        ALGORITHM,
        {"Error": "SageMaker.ValidationException", "Cause": "1 validation error detected: Value 'ml.p9' ..."},
        {"Error": "States.Timeout", "Cause": ""},
        {"Error": "States.TaskFailed"},
        {},
    ],
)
def test_other_errors_fail_the_stage_at_once(error: dict) -> None:
    decision = retry.decide(stage="sft", plan=samples.plan(), job=_job(error))
    assert decision.retry is False and decision.delaySeconds == 0
    assert "not a capacity, quota, throttling or transient error" in decision.reason


def test_a_failed_job_is_judged_by_its_failure_reason_not_by_other_fields_of_its_description() -> None:
    # a hyperparameter or tag that happens to contain a retryable word must not make an algorithm error retryable
    error = _failed_job("AlgorithmError: out of memory", HyperParameters={"note": "CapacityError"})
    assert _classify(error) is None


def test_a_cause_that_is_not_a_job_description_is_read_as_text() -> None:
    assert _classify({"Error": "States.TaskFailed", "Cause": '["CapacityError"]'}) == "capacity"
    assert _classify({"Error": "States.TaskFailed", "Cause": "not JSON: ThrottlingException"}) == "throttling"
    assert retry.classify(None) is None


def test_no_attempt_is_made_past_the_stages_limit() -> None:
    plan = samples.plan(stages={"baselineEval": False})  # SFT alone: the plan's attempt limit
    limit = jobs.max_attempts("sft", plan)
    assert retry.decide(stage="sft", plan=plan, job=_job(QUOTA, attempt=limit - 1)).retry is True
    last = retry.decide(stage="sft", plan=plan, job=_job(QUOTA, attempt=limit))
    assert last.retry is False and "no attempts left" in last.reason


def test_a_job_beside_another_gets_the_longer_limit_of_its_phase() -> None:
    plan = samples.plan()  # the baseline evaluation runs beside SFT
    attempt = plan.maxJobAttempts
    assert jobs.max_attempts("baselineEval", plan) > attempt
    decision = retry.decide(stage="baselineEval", plan=plan, job=_job(QUOTA, attempt, stage="baselineEval"))
    assert decision.retry is True and decision.delaySeconds == jobs.retry_delay_seconds(attempt)


def test_the_payload_has_the_fields_the_state_machine_reads() -> None:
    payload = retry.decide(stage="sft", plan=samples.plan(), job=_job(QUOTA)).to_json()
    assert payload == {"retry": True, "delaySeconds": 300, "reason": payload["reason"]}
    assert RetryDecision.model_validate(json.loads(json.dumps(payload))).retry is True
