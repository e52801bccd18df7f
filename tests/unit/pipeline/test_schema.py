"""The run schema: run.json has one shape whoever writes it, and a record missing a field is refused by name."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from lambdas.notify.events import ExecutionStatusChange
from lambdas.notify.service import NotifyConfig, Trail, _record_if_absent, reconstruct_run
from lambdas.pipeline.record import build_record, record_run
from lambdas.pipeline.schema import SCHEMA_VERSION, Plan, RunRecord, RunState, StageRecord
from tests.unit.pipeline import samples
from tests.unit.pipeline.test_record import DEPLOYMENT, MODEL, _state


def _read(s3: Any, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=samples.ARTIFACTS_BUCKET, Key=key)["Body"].read())


def _aborted_event() -> ExecutionStatusChange:
    return ExecutionStatusChange.model_validate(
        {
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "region": "us-east-1",
            "detail": {
                "executionArn": samples.EXECUTION["id"],
                "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:Pipeline",
                "name": "run-2",
                "status": "ABORTED",
                "startDate": 1763719200000,
                "stopDate": 1763722800000,
                "input": json.dumps(samples.run_input()),
            },
        }
    )


def test_the_pipeline_writes_a_run_json_the_schema_reads_back_unchanged(s3: Any) -> None:
    record_run(
        RunState.model_validate(_state(model=MODEL, deployment=DEPLOYMENT)),
        s3=s3,
        bucket=samples.ARTIFACTS_BUCKET,
        ended_at="2026-11-21T13:00:00Z",
        region="us-east-1",
        pipeline_name=samples.PIPELINE,
        render_report=lambda run: "<html></html>",
    )
    written = _read(s3, "runs/run-1-0b9d6cbe/run.json")
    assert written["schemaVersion"] == SCHEMA_VERSION and written["recordedBy"] == "pipeline"
    assert RunRecord.model_validate(written).to_json() == written


def test_the_notify_function_writes_a_run_json_of_the_same_shape(s3: Any) -> None:
    run = reconstruct_run(
        _aborted_event(), run_id="run-2", pipeline=samples.PIPELINE, trail=Trail(last_state="Train with RFT")
    )
    config = NotifyConfig(pipeline=samples.PIPELINE, artifacts_bucket=samples.ARTIFACTS_BUCKET, topic_arn="arn:t")
    assert _record_if_absent(s3, config, run, lambda record: "<html></html>") is True
    written = _read(s3, "runs/run-2/run.json")
    assert written["recordedBy"] == "notify" and written["status"] == "ABORTED"
    assert RunRecord.model_validate(written).to_json() == written
    # the same keys as a record the pipeline writes
    pipeline_record = build_record(
        RunState.model_validate(_state()),
        status="SUCCEEDED",
        ended_at="t",
        region="us-east-1",
        pipeline_name=samples.PIPELINE,
    )
    assert set(written) == set(pipeline_record.to_json())
    # and it is never written twice
    assert _record_if_absent(s3, config, run, lambda record: "<html></html>") is False


@pytest.mark.parametrize("field", ["runId", "pipeline", "status"])
def test_a_run_record_missing_a_required_field_is_rejected_naming_it(field: str) -> None:
    record = {"schemaVersion": 1, "runId": "r", "pipeline": "nova", "status": "FAILED"}
    del record[field]
    with pytest.raises(ValidationError) as caught:
        RunRecord.model_validate(record)
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]
    assert field in str(caught.value)


def test_a_stage_record_missing_its_status_is_rejected_with_its_path() -> None:
    record = {"runId": "r", "pipeline": "nova", "status": "FAILED"}
    stages = {name: {"status": "SKIPPED"} for name in ("baselineEval", "sft", "sftEval", "rft", "finalEval")}
    stages["rft"] = {"jobName": "nova-run-1-0b9d6cbe-rft-a1"}
    with pytest.raises(ValidationError) as caught:
        RunRecord.model_validate({**record, "stages": stages})
    assert [error["loc"] for error in caught.value.errors()] == [("stages", "rft", "status")]


def test_a_plan_missing_a_field_or_with_the_old_stage_flags_is_rejected() -> None:
    plan = samples.plan().to_json()
    del plan["enabled"]
    with pytest.raises(ValidationError, match="enabled"):
        Plan.model_validate(plan)
    old = {**samples.plan().to_json(), "stages": {"sft": True}}
    with pytest.raises(ValidationError, match="stages"):
        Plan.model_validate(old)


def test_another_schema_version_is_refused() -> None:
    with pytest.raises(ValidationError, match="schemaVersion"):
        RunRecord.model_validate({"schemaVersion": 2, "runId": "r", "pipeline": "nova", "status": "FAILED"})


def test_the_plan_crosses_step_functions_with_the_field_names_the_state_machine_selects() -> None:
    plan = samples.plan().to_json()
    assert plan["runId"] == "run-1-0b9d6cbe" and plan["enabled"]["sft"] is True
    assert Plan.model_validate(json.loads(json.dumps(plan))) == samples.plan()
    assert StageRecord.model_validate({"status": "PENDING"}).to_json()["status"] == "PENDING"
