"""Record run / record failed run: run.json on success, gate rejection and failure; the champion record."""

from __future__ import annotations

import json
from typing import Any

from lambdas.pipeline.record import record_failed_run, record_run
from lambdas.pipeline.schema import RunState
from tests.unit.pipeline import samples

MODEL = {
    "arn": "arn:aws:bedrock:us-east-1:123456789012:custom-model/imported/abc",
    "name": "nova-run-1-0b9d6cbe",
    "checkpoint": samples.RFT_CHECKPOINT,
    "status": "Active",
}
DEPLOYMENT = {
    "arn": "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abc",
    "name": "nova-run-1-0b9d6cbe-od",
    "modelArn": MODEL["arn"],
    "status": "Active",
}


def _state(**extra: Any) -> dict:
    stages = samples.stages_after_training().to_json()
    stages["finalEval"] = {
        "status": "SUCCEEDED",
        "metrics": {"exact_match": 0.8},
        "jobName": "nova-run-1-0b9d6cbe-eval-final-a1",
    }
    stages["baselineEval"] = {"status": "SUCCEEDED", "metrics": {"exact_match": 0.4}}
    stages["sftEval"] = {"status": "SUCCEEDED", "metrics": {"exact_match": 0.7}}
    state = {
        "input": samples.run_input(),
        "execution": samples.EXECUTION,
        "plan": samples.plan().to_json(),
        "stages": stages,
        "preflight": {
            "datasets": {},
            "cost": {"estimatedUsd": 1788.8, "maxUsd": 2000.0, "items": []},
            "quotas": {"status": "checked"},
        },
        "metrics": {
            "metric": "exact_match",
            "candidate": "rft",
            "table": {"baseline": {"exact_match": 0.4}, "sft": {"exact_match": 0.7}, "rft": {"exact_match": 0.8}},
        },
        "gate": {"passed": True, "reasons": ["ok"], "checks": [], "champion": None},
    }
    state.update(extra)
    return state


def _read(s3: Any, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=samples.ARTIFACTS_BUCKET, Key=key)["Body"].read())


def _record(s3: Any, state: dict, failed: bool = False, **kwargs: Any) -> dict:
    """Record the run state as the state machine hands it over (JSON)."""
    writer = record_failed_run if failed else record_run
    return writer(
        RunState.model_validate(state),
        s3=s3,
        bucket=samples.ARTIFACTS_BUCKET,
        ended_at="2026-11-21T13:00:00Z",
        region="us-east-1",
        pipeline_name=samples.PIPELINE,
        render_report=kwargs.get("render", lambda run: "<html></html>"),
        log=kwargs.get("log"),
    )


def test_a_deployed_run_is_recorded_with_its_lineage_and_becomes_the_champion(s3: Any) -> None:
    result = _record(s3, _state(model=MODEL, deployment=DEPLOYMENT))
    assert result["status"] == "SUCCEEDED"
    assert result["runRecord"] == f"s3://{samples.ARTIFACTS_BUCKET}/runs/run-1-0b9d6cbe/run.json"
    run = _read(s3, "runs/run-1-0b9d6cbe/run.json")
    assert run["status"] == "SUCCEEDED" and run["error"] is None
    assert run["model"]["arn"] == MODEL["arn"] and run["deployment"]["arn"] == DEPLOYMENT["arn"]
    assert run["stages"]["sft"]["checkpoint"] == samples.SFT_CHECKPOINT
    assert run["stages"]["rft"]["checkpoint"] == samples.RFT_CHECKPOINT
    assert run["datasets"]["eval"]["etag"] == "etag-datasets/eval.jsonl"
    assert run["grader"] == {"name": "classification", "arn": samples.GRADER_ARN, "version": "1.0.0"}
    assert run["input"] == samples.run_input() and run["plan"]["runId"] == "run-1-0b9d6cbe"
    assert run["gate"]["passed"] is True and run["gate"]["metric"] == "exact_match"
    assert run["executionArn"] == samples.EXECUTION["id"] and run["startedAt"] == samples.EXECUTION["startTime"]
    for stage in run["stages"].values():
        assert {"status", "jobName", "checkpoint", "metrics", "startedAt", "endedAt"} <= set(stage)
    assert run["report"] == f"s3://{samples.ARTIFACTS_BUCKET}/runs/run-1-0b9d6cbe/report.html"
    champion = _read(s3, "champions/nova.json")
    assert champion["runId"] == "run-1-0b9d6cbe" and champion["metrics"] == {"exact_match": 0.8}
    assert champion["deploymentArn"] == DEPLOYMENT["arn"] and champion["evalDatasetEtag"] == "etag-datasets/eval.jsonl"


def _plan(run_id: str) -> dict:
    return samples.plan().model_copy(update={"runId": run_id}).to_json()


def _gate_read(s3: Any) -> dict:
    """The gate decision as "Apply quality gate" leaves it: with the ETag of the champion record it read."""
    try:
        etag = s3.head_object(Bucket=samples.ARTIFACTS_BUCKET, Key="champions/nova.json")["ETag"]
    except s3.exceptions.ClientError:
        etag = None
    return {"passed": True, "reasons": ["ok"], "checks": [], "champion": None, "championEtag": etag}


def test_two_runs_gated_on_the_same_champion_cannot_both_replace_it(s3: Any) -> None:
    # Given a champion, and two runs whose gates both read that same version of it
    _record(s3, _state(model=MODEL, deployment=DEPLOYMENT))
    first_gate, second_gate = _gate_read(s3), _gate_read(s3)
    assert first_gate["championEtag"]
    first = _state(model=MODEL, deployment=DEPLOYMENT, gate=first_gate, plan=_plan("run-2"))
    second = _state(model=MODEL, deployment=DEPLOYMENT, gate=second_gate, plan=_plan("run-3"))
    # When both record their deployment, one after the other
    problems: list[str] = []
    written = _record(s3, first)
    refused = _record(s3, second, log=lambda message, error: problems.append(message))
    # Then the first replaced the champion and the second did not overwrite it (no last writer wins)
    assert written["champion"] == f"s3://{samples.ARTIFACTS_BUCKET}/champions/nova.json"
    assert refused["champion"] is None and refused["status"] == "SUCCEEDED"
    assert _read(s3, "champions/nova.json")["runId"] == "run-2"
    assert problems == ["champion not replaced: another run replaced it after this run's gate read it"]


def test_the_first_champion_is_written_only_if_none_appeared_since_the_gate(s3: Any) -> None:
    # Given two first runs whose gates both found no champion
    first = _state(model=MODEL, deployment=DEPLOYMENT, gate=_gate_read(s3), plan=_plan("run-2"))
    second = _state(model=MODEL, deployment=DEPLOYMENT, gate=_gate_read(s3), plan=_plan("run-3"))
    # Then only the first to record becomes the champion
    assert _record(s3, first)["champion"] is not None
    assert _record(s3, second)["champion"] is None
    assert _read(s3, "champions/nova.json")["runId"] == "run-2"


def test_a_gate_rejection_is_recorded_and_does_not_touch_the_champion(s3: Any) -> None:
    state = _state(
        gate={"passed": False, "reasons": ["exact_match 0.5 < minScore 0.7"], "checks": [], "champion": None}
    )
    assert _record(s3, state)["status"] == "GATE_REJECTED"
    run = _read(s3, "runs/run-1-0b9d6cbe/run.json")
    assert run["status"] == "GATE_REJECTED" and run["gate"]["reasons"] == ["exact_match 0.5 < minScore 0.7"]
    assert run["model"] is None and run["deployment"] is None
    assert "champions/nova.json" not in [
        o["Key"] for o in s3.list_objects_v2(Bucket=samples.ARTIFACTS_BUCKET)["Contents"]
    ]


def test_a_run_without_deploy_is_succeeded_without_a_champion(s3: Any) -> None:
    result = _record(s3, _state())
    assert result["status"] == "SUCCEEDED" and result["champion"] is None


def test_a_failed_validation_is_recorded_under_the_execution_run_id(s3: Any) -> None:
    cause = json.dumps(
        {
            "errorMessage": "The run input has 1 problem:\n- datasets: required",
            "errorType": "RunInputError",
            "stackTrace": [],
        }
    )
    state = {
        "input": {"oops": 1},
        "execution": samples.EXECUTION,
        "failedStage": "validateRun",
        "error": {"Error": "RunInputError", "Cause": cause},
    }
    result = _record(s3, state, failed=True)
    assert result["error"] == "RunInputError"
    assert result["cause"] == "Validate run failed: The run input has 1 problem:\n- datasets: required"
    run = _read(s3, "runs/run-1-0b9d6cbe/run.json")
    assert run["status"] == "FAILED" and run["error"]["stage"] == "validateRun"
    assert run["input"] == {"oops": 1} and run["plan"] is None


def test_a_failed_training_branch_records_the_job_and_the_failure_reason(s3: Any) -> None:
    job = {
        "stage": "sft",
        "name": "nova-run-1-0b9d6cbe-sft-a2",
        "attempt": 2,
        "startedAt": "2026-11-21T10:01:00Z",
        "errors": [
            {"attempt": 1, "job": "nova-run-1-0b9d6cbe-sft-a1", "error": "SageMaker.ThrottlingException", "cause": ""}
        ],
        "request": samples.job_request("sft", recipeFile="s3://a/runs/run-1-0b9d6cbe/recipes/sft/recipe.yaml"),
        "lastError": {
            "Error": "States.TaskFailed",
            "Cause": json.dumps({"TrainingJobStatus": "Failed", "FailureReason": "AlgorithmError: OOM"}),
        },
    }
    state = _state(
        stages={**samples.stages_after_training().to_json(), "sft": {"status": "PENDING"}},
        error={"Error": "SftFailed", "Cause": json.dumps({"stage": "sft", "job": job})},
        failedStage="trainAndBaseline",
    )
    result = _record(s3, state, failed=True)
    assert result["error"] == "SftFailed"
    assert result["cause"] == "SFT training job nova-run-1-0b9d6cbe-sft-a2 failed after 2 attempts: AlgorithmError: OOM"
    run = _read(s3, "runs/run-1-0b9d6cbe/run.json")
    sft = run["stages"]["sft"]
    assert sft["status"] == "FAILED" and sft["jobName"] == "nova-run-1-0b9d6cbe-sft-a2" and sft["attempts"] == 2
    assert sft["error"] == {"error": "States.TaskFailed", "cause": "AlgorithmError: OOM"}
    assert sft["earlierAttempts"][0]["job"] == "nova-run-1-0b9d6cbe-sft-a1"
    assert run["error"] == {"stage": "sft", "error": "SftFailed", "cause": result["cause"]}


def test_a_failed_final_evaluation_records_its_stage(s3: Any) -> None:
    job = {
        "stage": "finalEval",
        "name": "nova-run-1-0b9d6cbe-eval-final-a1",
        "attempt": 1,
        "lastError": {
            "Error": "JobOutputError",
            "Cause": json.dumps({"errorType": "JobOutputError", "errorMessage": "no results"}),
        },
    }
    state = _state(stageFailure={"stage": "finalEval", "job": job}, failedStage="finalEval")
    state.pop("gate")
    result = _record(s3, state, failed=True)
    assert result["error"] == "FinalEvaluationFailed"
    assert result["cause"] == "Final evaluation stage failed (JobOutputError): no results"
    assert _read(s3, "runs/run-1-0b9d6cbe/run.json")["stages"]["finalEval"]["status"] == "FAILED"


def test_a_throttled_read_of_a_completed_job_says_the_job_completed(s3: Any) -> None:
    # Given the final evaluation job completed, and Lambda throttled "Read final evaluation results" past its retries
    job = {
        "stage": "finalEval",
        "name": "nova-run-1-eval-final-a1",
        "attempt": 1,
        "result": {"name": "nova-run-1-eval-final-a1", "status": "Completed", "arn": "arn:aws:sagemaker:job"},
        "lastError": {"Error": "Lambda.TooManyRequestsException", "Cause": "Rate Exceeded."},
    }
    state = _state(stageFailure={"stage": "finalEval", "job": job}, failedStage="finalEval")
    state.pop("gate")
    result = _record(s3, state, failed=True)
    # Then the recorded cause says what happened: the job is fine, reading its output was throttled
    assert result["cause"] == (
        "Final evaluation job nova-run-1-eval-final-a1 completed, but reading its output failed: "
        "Lambda.TooManyRequestsException: Rate Exceeded."
    )


def test_a_failed_deployment_keeps_and_records_the_imported_model(s3: Any) -> None:
    state = _state(
        model=MODEL,
        deployment={**DEPLOYMENT, "status": "Failed"},
        failedStage="deploy",
        error={"Error": "DeploymentFailed", "Cause": "Bedrock could not deploy: capacity"},
    )
    result = _record(s3, state, failed=True)
    assert (
        result["cause"] == "Deploy model on demand failed: Bedrock could not deploy: capacity "
        f"(the imported model {MODEL['arn']} is kept)"
    )
    run = _read(s3, "runs/run-1-0b9d6cbe/run.json")
    assert run["model"]["arn"] == MODEL["arn"] and run["deployment"]["status"] == "Failed"


def test_stages_still_pending_at_a_failure_are_marked_not_completed(s3: Any) -> None:
    state = _state(failedStage="preflight", error={"Error": "PreflightError", "Cause": "{}"})
    state["stages"] = {name: {"status": "PENDING"} for name in state["stages"]}
    _record(s3, state, failed=True)
    run = _read(s3, "runs/run-1-0b9d6cbe/run.json")
    assert {s["status"] for s in run["stages"].values()} == {"NOT_COMPLETED"}


def test_a_report_that_cannot_be_rendered_does_not_stop_the_record(s3: Any) -> None:
    logged = []

    def broken(run: dict) -> str:
        raise ValueError("bad chart")

    result = _record(s3, _state(), render=broken, log=lambda message, error: logged.append(message))
    assert result["report"] is None and logged == ["report not written"]
    assert _read(s3, "runs/run-1-0b9d6cbe/run.json")["report"] is None


def test_the_real_report_renders_every_kind_of_record(s3: Any) -> None:
    from lambdas.pipeline.report import render_report

    for state, failed in (
        (_state(model=MODEL, deployment=DEPLOYMENT), False),
        (_state(failedStage="import", error={"Error": "ModelImportFailed", "Cause": "x"}), True),
    ):
        result = _record(s3, state, failed=failed, render=render_report)
        assert result["report"]


def test_an_evaluation_that_failed_beside_training_is_recorded_failed_with_its_error(s3: Any) -> None:
    from tests.unit.pipeline.test_metrics_and_gate import BASELINE_JOB, _noted_failure

    state = _state()
    state["stages"]["baselineEval"] = _noted_failure("baselineEval", BASELINE_JOB)
    state["gate"] = {
        "passed": False,
        "reasons": ["the baseline evaluation failed (...)"],
        "checks": [],
        "champion": None,
    }
    assert _record(s3, state)["status"] == "GATE_REJECTED"
    run = _read(s3, "runs/run-1-0b9d6cbe/run.json")
    baseline = run["stages"]["baselineEval"]
    assert baseline["status"] == "FAILED" and baseline["jobName"] == "nova-run-1-0b9d6cbe-eval-base-a1"
    assert baseline["error"] == {"error": "States.TaskFailed", "cause": "AlgorithmError: CUDA OOM"}
    assert baseline["endedAt"] == "2026-11-21T10:30:00Z" and baseline["failure"] is None
    assert run["stages"]["sft"]["checkpoint"] == samples.SFT_CHECKPOINT  # training went on
    # the same settling applies to a run that fails later
    failed = _record(
        s3, _state(stages=state["stages"], failedStage="import", error={"Error": "E", "Cause": "c"}), failed=True
    )
    assert failed["error"] == "E"
    assert _read(s3, "runs/run-1-0b9d6cbe/run.json")["stages"]["baselineEval"]["status"] == "FAILED"


def test_a_noted_failure_without_a_job_name_still_records_the_error(s3: Any) -> None:
    state = _state()
    job = {
        "stage": "sftEval",
        "attempt": 0,
        "errors": [],
        "lastError": {"Error": "MissingCheckpointError", "Cause": '{"errorMessage": "no SFT checkpoint"}'},
    }
    state["stages"]["sftEval"] = {"status": "FAILED", "failure": {"stage": "sftEval", "job": job}, "endedAt": "t"}
    _record(s3, state)
    sft_eval = _read(s3, "runs/run-1-0b9d6cbe/run.json")["stages"]["sftEval"]
    assert sft_eval["status"] == "FAILED" and sft_eval["error"]["cause"] == "no SFT checkpoint"


def test_a_rejected_or_expired_approval_is_recorded_and_notified_without_a_champion(s3: Any) -> None:
    from lambdas.notify.message import ExecutionEnd, render_notification
    from lambdas.pipeline.schema import RunRecord

    decisions = {
        "REJECTED": {"decision": "reject", "reason": "regressed on long prompts", "file": "s3://d/approvals/x.json"},
        "APPROVAL_EXPIRED": {"decision": "expired", "reason": "no decision within 259200 seconds"},
    }
    for status, decision in decisions.items():
        approval = {"mode": "required", "timeoutSeconds": 259200, "decision": decision}
        assert _record(s3, _state(approval=approval))["status"] == status
        run = _read(s3, "runs/run-1-0b9d6cbe/run.json")
        assert run["status"] == status and run["approval"]["decision"]["reason"] == decision["reason"]
        assert run["model"] is None and run["deployment"] is None
        end = ExecutionEnd(status="SUCCEEDED", execution_arn=samples.EXECUTION["id"], pipeline="nova")
        note = render_notification(RunRecord.model_validate(run), end)
        assert "(not deployed)" in note.subject and f"  reason: {decision['reason']}" in note.body
    assert not s3.list_objects_v2(Bucket=samples.ARTIFACTS_BUCKET, Prefix="champions/").get("KeyCount")
    approved = {"mode": "required", "timeoutSeconds": 3600, "decision": {"decision": "approve", "reason": "ok"}}
    assert _record(s3, _state(approval=approved, model=MODEL, deployment=DEPLOYMENT))["status"] == "SUCCEEDED"
    assert _read(s3, "champions/nova.json")["deploymentArn"] == DEPLOYMENT["arn"]


def test_a_failed_jobs_cause_reads_as_its_failure_message_on_either_road() -> None:
    from lambdas.pipeline.record import readable_cause

    assert readable_cause(json.dumps({"TrainingJobStatus": "Failed", "FailureReason": "CapacityError"})) == (
        "CapacityError"
    )
    bedrock = {"JobName": "nova-run-rft-a1", "Status": "Failed", "FailureMessage": "Internal error"}
    assert readable_cause(json.dumps(bedrock)) == "Internal error"
    assert readable_cause(json.dumps({"status": "Failed", "failureMessage": "Validation error"})) == "Validation error"
