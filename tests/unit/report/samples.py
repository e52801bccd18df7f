"""Run records as the pipeline writes them (runs/<run-id>/run.json): succeeded, gate rejected, failed."""

from __future__ import annotations

import copy

from tests.unit.pipeline import samples as pipeline_samples

REGION = "us-east-1"
EXECUTION_ARN = f"arn:aws:states:{REGION}:123456789012:execution:Pipeline:request-weekly-0123456789abcdef"
MODEL_ARN = f"arn:aws:bedrock:{REGION}:123456789012:custom-model/imported/abc123"


def _stage(job: str | None, start: str, end: str, metrics: dict | None = None, status: str = "SUCCEEDED") -> dict:
    stage: dict[str, object] = {"status": status, "startedAt": start, "endedAt": end}
    if job:
        stage["jobName"] = job
    if metrics is not None:
        stage["metrics"] = metrics
    return stage


SUCCEEDED_RUN: dict = {
    "runId": "request-weekly-0123456789abcdef",
    "pipeline": "nova",
    "status": "SUCCEEDED",
    "executionArn": EXECUTION_ARN,
    "input": {
        "datasets": {"sft": "s3://data/datasets/nova/sft.jsonl", "rft": "s3://data/datasets/nova/rft.jsonl"},
        "model": "nova-2-lite",
        "gate": {"metric": "exact_match", "minScore": 0.7},
    },
    "plan": pipeline_samples.plan(gate={"metric": "exact_match", "minScore": 0.7}).to_json(),
    "datasets": {
        "sft": {"uri": "s3://data/datasets/nova/sft.jsonl", "etag": "etag-sft-1", "sizeBytes": 2048},
        "rft": {"uri": "s3://data/datasets/nova/rft.jsonl", "etag": "etag-rft-1", "sizeBytes": 1024},
        "eval": {"uri": "s3://data/datasets/nova/eval.jsonl", "etag": "etag-eval-1", "sizeBytes": 512},
    },
    "grader": {"name": "classification", "version": "3", "arn": pipeline_samples.GRADER_ARN},
    "stages": {
        "baselineEval": _stage(
            "nova-weekly-baseline-eval-1",
            "2025-06-01T10:00:00Z",
            "2025-06-01T10:40:00Z",
            {"exact_match": 0.52, "f1": 0.61, "latency_ms": 820},
        ),
        "sft": _stage("nova-weekly-sft-1", "2025-06-01T10:00:00Z", "2025-06-01T12:10:00Z"),
        "sftEval": _stage(
            "nova-weekly-sft-eval-1",
            "2025-06-01T12:12:00Z",
            "2025-06-01T12:50:00Z",
            {"exact_match": 0.66, "f1": 0.70, "latency_ms": 800},
        ),
        "rft": _stage("nova-weekly-rft-1", "2025-06-01T12:12:00Z", "2025-06-01T15:30:00Z"),
        "finalEval": _stage(
            "nova-weekly-final-eval-1",
            "2025-06-01T15:32:00Z",
            "2025-06-01T16:05:00Z",
            {"exact_match": 0.78, "f1": 0.80, "latency_ms": 790},
        ),
    },
    "gate": {"passed": True, "reasons": ["exact_match 0.78 >= 0.7", "gain over baseline 0.26 >= 0.05"]},
    "model": {
        "arn": MODEL_ARN,
        "name": "nova-request-weekly",
        "checkpoint": pipeline_samples.RFT_CHECKPOINT,
        "status": "Active",
    },
    "deployment": {
        "arn": f"arn:aws:bedrock:{REGION}:123456789012:custom-model-deployment/dep789",
        "name": "nova-request-weekly-od",
        "modelArn": MODEL_ARN,
        "status": "Active",
    },
    "startedAt": "2025-06-01T09:58:00Z",
    "endedAt": "2025-06-01T16:40:00Z",
}


def gate_rejected_run() -> dict:
    run = copy.deepcopy(SUCCEEDED_RUN)
    run["runId"] = "request-weekly-rejected"
    run["status"] = "GATE_REJECTED"
    run["stages"]["finalEval"]["metrics"] = {"exact_match": 0.55, "f1": 0.62, "latency_ms": 810}
    run["gate"] = {"passed": False, "reasons": ["exact_match 0.55 < 0.7", "gain over baseline 0.03 < 0.05"]}
    del run["model"], run["deployment"]
    return run


def failed_run() -> dict:
    run = copy.deepcopy(SUCCEEDED_RUN)
    run["runId"] = "request-weekly-failed"
    run["status"] = "FAILED"
    run["error"] = {"stage": "rft", "cause": "ClientError: ResourceLimitExceeded for ml.p5.48xlarge"}
    run["stages"]["rft"] = {
        "status": "FAILED",
        "jobName": "nova-weekly-rft-1",
        "startedAt": "2025-06-01T12:12:00Z",
        "endedAt": "2025-06-01T12:20:00Z",
    }
    run["stages"]["finalEval"] = {"status": "NOT_COMPLETED"}
    del run["gate"], run["model"], run["deployment"]
    run["endedAt"] = "2025-06-01T12:21:00Z"
    return run


def preflight_with_dataset_notes() -> dict:
    """A preflight summary with every dataset note: leakage, repeated rows, schemaVersion added."""
    return {
        "datasets": {
            "sft": {
                "kind": "sft",
                "rows": 64,
                "bytes": 9000,
                "invalidLines": 0,
                "schemaVersionAdded": 64,
                "duplicateRows": 2,
                "warnings": ["2 rows repeat an earlier row exactly (first at line 9)"],
            },
        },
        "cost": {"estimatedUsd": 0.0, "maxUsd": 2000.0, "items": []},
        "quotas": {"status": "not needed"},
        "leakage": {
            "evalPrompts": 54,
            "found": {"sft": 17, "rft": 0},
            "examples": ["What is <the> holding?"],
            "warnings": ["17 of 54 evaluation prompts appear verbatim in the sft data"],
        },
    }


def bedrock_run(*, failed: bool = False) -> dict:
    """A run of the Bedrock road: customization jobs made the custom models, the evaluations deployed them
    provisionally; the final evaluation's deployment was adopted as the pipeline's, the SFT evaluation's deleted.
    ``failed``: RFT failed after SFT (nothing adopted, the SFT evaluation's deployment deleted)."""
    run = copy.deepcopy(SUCCEEDED_RUN)
    run["plan"]["platform"] = "bedrock"
    account = f"arn:aws:bedrock:{REGION}:123456789012"
    for stage in ("sft", "rft"):
        run["stages"][stage]["jobArn"] = (
            f"{account}:model-customization-job/amazon.nova-2-lite-v1:0:256k/{stage}job123456"
        )
        run["stages"][stage]["customModelArn"] = f"{account}:custom-model/amazon.nova-2-lite-v1:0:256k/{stage}mdl123456"
    for stage in ("sftEval", "finalEval"):
        run["stages"][stage]["deploymentArn"] = f"{account}:custom-model-deployment/{stage.lower()[:12]:0<12}"
    final, sft_eval = run["stages"]["finalEval"]["deploymentArn"], run["stages"]["sftEval"]["deploymentArn"]
    run["model"] = {
        "arn": run["stages"]["rft"]["customModelArn"],
        "name": "nova-request-weekly-rft",
        "status": "Active",
        "origin": "customization",
        "stage": "rft",
        "provisionalDeploymentArn": final,
    }
    run["deployment"] = {**run["deployment"], "arn": final, "modelArn": run["model"]["arn"], "action": "adopted"}
    run["provisionalDeployments"] = [
        {"stage": "sftEval", "arn": sft_eval, "outcome": "deleted"},
        {"stage": "finalEval", "arn": final, "outcome": "serving"},
    ]
    if failed:
        run["status"], run["error"] = "FAILED", {"stage": "rft", "cause": "the customization job failed"}
        run["stages"]["rft"] = {"status": "FAILED", "jobArn": run["stages"]["rft"]["jobArn"]}
        run["stages"]["finalEval"] = {"status": "NOT_COMPLETED"}
        del run["gate"], run["model"], run["deployment"]
        run["provisionalDeployments"] = [{"stage": "sftEval", "arn": sft_eval, "outcome": "deleted"}]
    return run
