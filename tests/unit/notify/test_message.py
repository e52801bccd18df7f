"""Notification text (pure): subject, outcome, metrics table, gate, deployment, links."""

from __future__ import annotations

import copy
import json

from lambdas.notify import message
from lambdas.notify.message import MAX_SUBJECT, ExecutionEnd, Notification
from lambdas.pipeline.schema import RunRecord
from tests.unit.report.samples import (
    EXECUTION_ARN,
    SUCCEEDED_RUN,
    bedrock_run,
    failed_run,
    gate_rejected_run,
    preflight_with_dataset_notes,
)


def render_notification(run: dict, end: ExecutionEnd, *, report_uri: str | None = None) -> Notification:
    """The notification of a run.json as read from S3 (the schema validates it first)."""
    return message.render_notification(RunRecord.model_validate(run), end, report_uri=report_uri)


def _end(status: str, **kwargs: str) -> ExecutionEnd:
    return ExecutionEnd(status=status, execution_arn=EXECUTION_ARN, pipeline="nova", **kwargs)


def test_a_deployed_run_reports_metrics_gate_deployment_and_links() -> None:
    note = render_notification(SUCCEEDED_RUN, _end("SUCCEEDED"), report_uri="s3://artifacts/runs/r/report.html")
    assert note.subject == "[nova] Nova run request-weekly-0123456789abcdef: SUCCEEDED, deployed"
    lines = note.body.splitlines()
    header = next(line for line in lines if line.strip().startswith("metric"))
    assert header.split() == ["metric", "Baseline", "SFT", "RFT"]
    row = next(line for line in lines if line.strip().startswith("exact_match"))
    assert row.split() == ["exact_match", "*", "0.52", "0.66", "0.78"]
    assert "* gate metric (exact_match)" in note.body
    assert "Quality gate: PASSED" in note.body
    assert "  - gain over baseline 0.26 >= 0.05" in lines
    assert "Deployment: arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/dep789" in lines
    assert "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/" in note.body
    assert "sagemaker/home?region=us-east-1#/jobs/nova-weekly-sft-1" in note.body
    assert "Run report: s3://artifacts/runs/r/report.html" in note.body
    assert "What went wrong" not in note.body


def test_a_failed_run_says_which_stage_failed_and_why_first() -> None:
    note = render_notification(failed_run(), _end("FAILED", error="States.TaskFailed"))
    assert note.subject == "[nova] Nova run request-weekly-failed: FAILED at rft"
    assert note.body.index("What went wrong") < note.body.index("Metrics")
    assert "  stage: rft" in note.body
    assert "  cause: ClientError: ResourceLimitExceeded for ml.p5.48xlarge" in note.body
    assert "Quality gate: not reached" in note.body
    assert "Deployment: none" in note.body


def test_a_gate_rejection_lists_the_reasons() -> None:
    note = render_notification(gate_rejected_run(), _end("SUCCEEDED"))
    assert note.subject.endswith("GATE REJECTED (not deployed)")
    assert "Quality gate: REJECTED" in note.body
    assert "  - exact_match 0.55 < 0.7" in note.body


def test_a_rejected_model_the_run_deleted_is_named_as_deleted() -> None:
    run = gate_rejected_run()
    run["model"] = {**SUCCEEDED_RUN["model"], "status": "Deleted", "deletedAt": "2026-01-05T09:00:00Z"}
    note = render_notification(run, _end("SUCCEEDED"))
    arn = SUCCEEDED_RUN["model"]["arn"]
    assert f"Custom model: {arn} (deleted at 2026-01-05T09:00:00Z: the run did not deploy it)" in note.body
    # a deployed model is named by its ARN alone
    assert f"Custom model: {arn}\n" in render_notification(SUCCEEDED_RUN, _end("SUCCEEDED")).body + "\n"


def test_aborted_and_timed_out_runs_are_notified_with_what_is_known() -> None:
    minimal = {
        "runId": "r1",
        "pipeline": "nova",
        "status": "ABORTED",
        "error": {"stage": "Train with RFT", "cause": "stopped by alice"},
    }
    aborted = render_notification(minimal, _end("ABORTED"))
    assert aborted.subject == "[nova] Nova run r1: ABORTED"
    assert "stopped by alice" in aborted.body
    assert "No evaluation metrics were recorded." in aborted.body
    timed_out = render_notification(
        {"runId": "r2", "pipeline": "nova", "status": "FAILED"}, _end("TIMED_OUT", cause="timeout")
    )
    assert timed_out.subject == "[nova] Nova run r2: TIMED OUT"
    assert "  cause: timeout" in timed_out.body


def test_the_subject_fits_sns_limits() -> None:
    run = {
        "runId": "r" * 150 + "\u00e9\n\t",
        "pipeline": "nova",
        "status": "FAILED",
        "error": {"stage": "x" * 50, "cause": "?"},
    }
    subject = render_notification(run, _end("FAILED")).subject
    assert len(subject) <= MAX_SUBJECT
    assert subject.isascii() and "\n" not in subject and "\t" not in subject


def test_a_mean_over_samples_shows_its_standard_error_and_the_sample_count() -> None:
    from tests.unit.report.test_report import _measured_run

    lines = message.metrics_lines(RunRecord.model_validate(_measured_run()))
    text = "\n".join(lines)
    assert "0.79 ± 0.018" in text
    assert any(line.split()[:2] == ["samples", "(n)"] and line.split()[2:] == ["500"] * 3 for line in lines)
    assert "standard error" in lines[-1]


def test_dataset_warnings_name_the_leaked_evaluation_prompts_and_repeated_rows() -> None:
    run = {**SUCCEEDED_RUN, "preflight": preflight_with_dataset_notes()}
    lines = render_notification(run, _end("SUCCEEDED")).body.splitlines()
    start = lines.index("Dataset warnings")
    assert lines[start + 1 : start + 3] == [
        "  - 17 of 54 evaluation prompts appear verbatim in the sft data",
        "  - sft: 2 rows repeat an earlier row exactly (first at line 9)",
    ]
    assert "Dataset warnings" not in render_notification(SUCCEEDED_RUN, _end("SUCCEEDED")).body


def test_a_failed_run_offers_the_input_that_continues_from_its_sft_checkpoint() -> None:
    run = failed_run()
    run["stages"]["sft"]["checkpoint"] = "s3://customer-escrow-123456789012-smtj-a/nova-weekly-sft-1/checkpoint/"
    note = render_notification(run, _end("FAILED", error="States.TaskFailed"))
    lines = note.body.splitlines()
    offered = lines[lines.index("Continue from what finished (start an execution with this input)") + 1]
    resume = json.loads(offered)
    assert resume["resumeFrom"] == {
        "stage": "rft",
        "checkpoint": "s3://customer-escrow-123456789012-smtj-a/nova-weekly-sft-1/checkpoint/",
        "run": "request-weekly-failed",
    }
    assert resume["datasets"] == run["input"]["datasets"]


def test_the_stage_table_shows_the_bedrock_import_and_deployment_with_their_durations() -> None:
    run = copy.deepcopy(SUCCEEDED_RUN)
    run["model"].update({"startedAt": "2025-06-01T13:00:00Z", "endedAt": "2025-06-01T13:15:00Z", "status": "Active"})
    run["deployment"].update({"startedAt": "2025-06-01T13:15:00Z", "endedAt": "2025-06-01T13:25:00Z"})
    run["deployment"]["status"] = "Active"
    body = render_notification(run, _end("SUCCEEDED")).body
    (imported,) = [line for line in body.splitlines() if line.strip().startswith("Bedrock import")]
    (deployed,) = [line for line in body.splitlines() if line.strip().startswith("Bedrock deployment")]
    assert "Active" in imported and "15 min" in imported and run["model"]["name"] in imported
    assert "Active" in deployed and "10 min" in deployed


def test_the_notification_shows_each_stages_cost_and_the_runs_beside_the_estimate() -> None:
    run = copy.deepcopy(SUCCEEDED_RUN)
    run["stages"]["rft"].update(instanceType="ml.p5.48xlarge", instanceCount=2, billableSeconds=5400, actualUsd=61.2)
    run["preflight"] = preflight_with_dataset_notes()
    body = render_notification(run, _end("SUCCEEDED")).body
    (rft,) = [line for line in body.splitlines() if line.strip().startswith("RFT training") and "SUCCEEDED" in line]
    assert "$61.20" in rft
    assert (
        "GPU cost: actual $61.20 (3.00 instance-hours billed, failed attempts included); expected not estimated; "
        "worst case $0.00" in body
    )


def test_a_bedrock_run_names_its_road_and_the_resources_of_each_stage() -> None:
    run = bedrock_run()
    run["preflight"] = preflight_with_dataset_notes()
    run["stages"]["sft"]["billableSeconds"] = 3600
    note = render_notification(run, _end("SUCCEEDED"))
    lines = note.body.splitlines()
    assert lines[1] == "Road: Amazon Bedrock model customization jobs, evaluated through Bedrock inference"
    assert f"  RFT training custom model: {run['stages']['rft']['customModelArn']}" in lines
    assert f"  RFT training customization job: {run['stages']['rft']['jobArn']}" in lines
    assert f"  Final evaluation provisional deployment: {run['deployment']['arn']} (serving)" in lines
    assert f"Deployment: {run['stages']['finalEval']['deploymentArn']}" in lines
    assert "sagemaker/home" not in note.body
    # billed by tokens, not instance time: no GPU cost line, whatever the stage records hold
    assert "GPU cost" not in note.body and "Bedrock cost: actual not measured by the run" in note.body


def test_a_failed_bedrock_run_offers_no_resume_input() -> None:
    # The same failed record with an SFT checkpoint offers resumeFrom on the SageMaker road only
    run = bedrock_run(failed=True)
    run["stages"]["sft"]["checkpoint"] = "s3://customer-escrow-123456789012-smtj-0a1b2c3d/sft/checkpoint/"
    failed = render_notification(run, _end("FAILED"))
    assert "Continue from what finished" not in failed.body
    run["plan"]["platform"] = "sagemaker"
    assert "Continue from what finished" in render_notification(run, _end("FAILED")).body
    assert "SFT evaluation provisional deployment" in failed.body and "(deleted)" in failed.body
    sagemaker = render_notification(failed_run(), _end("FAILED"))
    assert sagemaker.body.splitlines()[1] == "Road: Amazon SageMaker training jobs"


def test_a_run_refused_by_validation_names_the_road_its_input_asked_for() -> None:
    # Given a Bedrock run input that failed validation (no plan), when notified, then the road is Bedrock's
    run = failed_run()
    run["plan"] = None
    run["input"] = {"platform": "bedrock", "sft": {"instanceType": "ml.p5.48xlarge"}}
    assert render_notification(run, _end("FAILED")).body.splitlines()[1].startswith("Road: Amazon Bedrock")
    run["input"] = {"platform": "somewhere-else"}
    assert render_notification(run, _end("FAILED")).body.splitlines()[1] == "Road: Amazon SageMaker training jobs"
