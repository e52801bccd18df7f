"""Whether a failed job attempt (a SageMaker training job, or a Bedrock customization job) is retried, and
after how long.

A job stage's attempt fails in one of two ways, and the state machine hands either
to :func:`decide` as ``{"Error": ..., "Cause": ...}``:

- the ``CreateTrainingJob`` call is refused: ``Error`` names the service error
  (``SageMaker.ResourceLimitExceededException``, ``SageMaker.ThrottlingException``...)
  and ``Cause`` is the service's message;
- the job ran and failed: ``Error`` is ``States.TaskFailed`` and ``Cause`` is the
  job's description as JSON, whose ``FailureReason`` says why
  (``CapacityError: Unable to provision requested ML compute capacity...``).

On platform bedrock the same two ways: the ``CreateModelCustomizationJob`` call is refused (``Error``
``Bedrock.<error code>``: ``Bedrock.ThrottlingException``, ``Bedrock.ServiceQuotaExceededException``,
``Bedrock.ValidationException``...), or the job ran and failed (``States.TaskFailed``, the cause the job's
description as JSON, whose ``failureMessage`` says why).

Capacity, quota, throttling and transient service errors are worth another attempt
(with a new job name, after a backoff); anything else (a bad recipe, an algorithm
error, a missing permission) fails the same way again and is not retried.
"""

from __future__ import annotations

import json

from lambdas.pipeline.jobs import max_attempts, retry_delay_seconds
from lambdas.pipeline.schema import JobAttempt, Plan, RetryDecision, StepError

# Words that identify each retryable kind of failure in an error name or a failure reason.
RETRYABLE: dict[str, tuple[str, ...]] = {
    "capacity": ("CapacityError", "InsufficientCapacity"),
    "quota": ("ResourceLimitExceeded", "ServiceQuotaExceeded"),
    "throttling": ("ThrottlingException", "Rate exceeded", "TooManyRequests"),
    "transient": ("InternalFailure", "InternalServerError", "InternalServerException", "ServiceUnavailable"),
}


def _failure_text(error: StepError) -> str:
    """The error name and, for a job that ran, its FailureReason; else the raw cause."""
    name, cause = error.Error or "", error.Cause
    if cause is None:
        return name
    try:
        described = json.loads(cause)
    except ValueError:
        return f"{name} {cause}"
    if isinstance(described, dict):
        # SageMaker's FailureReason; Bedrock's failureMessage (as the API spells it, or capitalized).
        for field in ("FailureReason", "failureMessage", "FailureMessage"):
            if field in described:
                return f"{name} {described.get(field) or ''}"
    return f"{name} {cause}"


def classify(error: StepError | None) -> str | None:
    """The retryable kind of ``error`` (``capacity``, ``quota``, ``throttling``, ``transient``), or None."""
    text = _failure_text(error or StepError())
    for kind, words in RETRYABLE.items():
        if any(word in text for word in words):
            return kind
    return None


def decide(*, stage: str, plan: Plan, job: JobAttempt) -> RetryDecision:
    """Retry ``job``'s failed attempt? Only a retryable error, and only below the stage's attempt limit."""
    kind = classify(job.lastError)
    name = (job.lastError.Error if job.lastError else None) or "an unknown error"
    if kind is None:
        return RetryDecision(
            retry=False, delaySeconds=0, reason=f"{name} is not a capacity, quota, throttling or transient error"
        )
    limit = max_attempts(stage, plan)
    if job.attempt >= limit:
        return RetryDecision(
            retry=False, delaySeconds=0, reason=f"{kind} error on attempt {job.attempt} of {limit}: no attempts left"
        )
    delay = retry_delay_seconds(job.attempt)
    reason = f"{kind} error on attempt {job.attempt} of {limit}: retrying in {delay} s"
    return RetryDecision(retry=True, delaySeconds=delay, reason=reason)
