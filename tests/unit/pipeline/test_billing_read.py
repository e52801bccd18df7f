"""The step after a finished job reads its billable time, and a description it cannot read never fails it."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdas.pipeline import handlers
from lambdas.pipeline.schema import JobAttempt


def _finished(billable: int | None = None) -> JobAttempt:
    result: dict[str, Any] = {
        "name": "nova-run-1-sft-a1",
        "status": "Completed",
        "arn": "arn:aws:sagemaker:us-east-1:1:training-job/x",
    }
    if billable is not None:
        result["billableSeconds"] = billable
    return JobAttempt.model_validate({"stage": "sft", "name": "nova-run-1-sft-a1", "attempt": 1, "result": result})


class _SageMaker:
    def __init__(self, answer: Any) -> None:
        self.answer, self.calls = answer, 0

    def describe_training_job(self, TrainingJobName: str) -> dict:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return dict(self.answer)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"BillableTimeInSeconds": 2400}, 2400),
        ({}, None),  # a description without the field: the attempt stays unknown
        ({"BillableTimeInSeconds": -5}, None),
        (ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeTrainingJob"), None),
    ],
)
def test_the_billable_time_of_a_finished_attempt_is_read_when_it_can_be(
    monkeypatch: pytest.MonkeyPatch, answer: Any, expected: int | None
) -> None:
    sagemaker = _SageMaker(answer)
    monkeypatch.setattr(handlers, "client", lambda service: sagemaker)
    job = handlers._with_billable_seconds(_finished())
    assert sagemaker.calls == 1
    assert job.result is not None and job.result.billableSeconds == expected


def test_a_known_billable_time_is_not_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    sagemaker = _SageMaker({"BillableTimeInSeconds": 1})
    monkeypatch.setattr(handlers, "client", lambda service: sagemaker)
    job = handlers._with_billable_seconds(_finished(billable=30))
    assert sagemaker.calls == 0 and job.result is not None and job.result.billableSeconds == 30
