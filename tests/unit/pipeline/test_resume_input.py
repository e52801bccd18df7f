"""A failed run's record offers the run input that continues from its newest checkpoint, and that input is valid."""

from __future__ import annotations

import json

import pytest

from lambdas.pipeline import runview
from lambdas.pipeline.schema import RunRecord
from tests.unit.pipeline import samples


def _failed_record(status: str = "FAILED", **stages: dict) -> RunRecord:
    records = {name: {"status": "NOT_COMPLETED"} for name in ("baselineEval", "sft", "sftEval", "rft", "finalEval")}
    records.update(stages)
    return RunRecord.model_validate(
        {
            "runId": samples.EARLIER_RUN,
            "pipeline": samples.PIPELINE,
            "status": status,
            "input": samples.run_input(),
            "plan": samples.plan().to_json(),
            "stages": records,
        }
    )


def _resolve(payload: dict, record: RunRecord) -> dict:
    def read(bucket: str, key: str) -> bytes:
        assert (bucket, key) == (samples.ARTIFACTS_BUCKET, f"runs/{samples.EARLIER_RUN}/run.json")
        return json.dumps(record.to_json()).encode()

    plan = samples.resolve(payload, read_object=read)
    return plan.to_json()


def test_a_failed_rft_resumes_rft_from_the_sft_checkpoint_and_the_input_validates() -> None:
    record = _failed_record(
        sft={"status": "SUCCEEDED", "checkpoint": samples.SFT_CHECKPOINT},
        sftEval={"status": "SUCCEEDED", "metrics": {"exact_match": 0.7}},
        rft={"status": "FAILED"},
    )

    resume = runview.resume_input(record)

    assert resume is not None
    assert resume["resumeFrom"] == {"stage": "rft", "checkpoint": samples.SFT_CHECKPOINT, "run": samples.EARLIER_RUN}
    assert resume["datasets"] == samples.run_input()["datasets"]
    plan = _resolve(resume, record)
    assert plan["enabled"]["sft"] is False and plan["enabled"]["rft"] is True


def test_a_failure_after_rft_resumes_at_the_final_evaluation() -> None:
    record = _failed_record(
        sft={"status": "SUCCEEDED", "checkpoint": samples.SFT_CHECKPOINT},
        rft={"status": "SUCCEEDED", "checkpoint": samples.RFT_CHECKPOINT},
        finalEval={"status": "FAILED"},
    )
    resume = runview.resume_input(record)
    assert resume is not None and resume["resumeFrom"]["stage"] == "finalEval"
    assert resume["resumeFrom"]["checkpoint"] == samples.RFT_CHECKPOINT
    assert _resolve(resume, record)["enabled"]["rft"] is False


@pytest.mark.parametrize("status", ["SUCCEEDED", "GATE_REJECTED"])
def test_a_run_that_ended_normally_offers_no_resume(status: str) -> None:
    record = _failed_record(status, sft={"status": "SUCCEEDED", "checkpoint": samples.SFT_CHECKPOINT})
    assert runview.resume_input(record) is None


def test_a_run_that_failed_before_any_checkpoint_offers_no_resume() -> None:
    assert runview.resume_input(_failed_record(sft={"status": "FAILED"})) is None
