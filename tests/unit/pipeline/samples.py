"""Sample data of the pipeline's unit tests: datasets in the documented formats and resolved plans."""

from __future__ import annotations

import copy
import json
from typing import Any

from lambdas.pipeline.policy import RunPolicy
from lambdas.pipeline.schema import Champion, Deployment, Execution, Plan, StageRecords
from lambdas.pipeline.serving import check_serving, crown
from rehearsal import clock

PIPELINE = "nova"
DATA_BUCKET = "nova-data-test"
ARTIFACTS_BUCKET = "nova-artifacts-test"
ACCOUNT = "123456789012"
IMPORT_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/BedrockImportRole"
KMS_KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
GRADER_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:NovaCustomization-SageMakerGradersClassification"
GRADERS = {"classification": GRADER_ARN}
SFT_CHECKPOINT = f"s3://customer-escrow-{ACCOUNT}-smtj-0a1b2c3d/nova-run-1-0b9d6cbe-sft-a1/checkpoint/"
RFT_CHECKPOINT = f"s3://customer-escrow-{ACCOUNT}-smtj-0a1b2c3d/nova-run-1-0b9d6cbe-rft-a1/checkpoint/"
SYSTEM = "Label the question: HQ, LQ_EDIT or LQ_CLOSE."
LABELS = ("HQ", "LQ_EDIT", "LQ_CLOSE")


def _question(index: int) -> tuple[str, str]:
    return f"Title: question {index}\nBody: how do I do thing {index}?\nLabel:", LABELS[index % 3]


def sft_rows(count: int = 64) -> list[dict]:
    return [
        {
            "schemaVersion": "bedrock-conversation-2024",
            "system": [{"text": SYSTEM}],
            "messages": [{"role": "user", "content": [{"text": q}]}, {"role": "assistant", "content": [{"text": a}]}],
        }
        for q, a in map(_question, range(count))
    ]


def rft_rows(count: int = 64) -> list[dict]:
    return [
        {
            "id": f"q-{i}",
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}],
            "reference_answer": a,
        }
        for i, (q, a) in enumerate(map(_question, range(count)))
    ]


def eval_rows(count: int = 12) -> list[dict]:
    return [{"query": q, "response": a, "system": SYSTEM} for q, a in map(_question, range(count))]


def jsonl(rows: list[Any]) -> bytes:
    return ("\n".join(json.dumps(row) for row in rows) + "\n").encode()


def run_input(**changes: Any) -> dict:
    payload = {
        "datasets": {
            "sft": f"s3://{DATA_BUCKET}/datasets/sft.jsonl",
            "rft": f"s3://{DATA_BUCKET}/datasets/rft.jsonl",
            "eval": f"s3://{DATA_BUCKET}/datasets/eval.jsonl",
        }
    }
    payload.update(copy.deepcopy(changes))
    return payload


EXECUTION = {
    "id": f"arn:aws:states:us-east-1:{ACCOUNT}:execution:Pipeline:run-1",
    "name": "run-1",
    "startTime": "2026-11-21T10:00:00.000Z",
}


EARLIER_RUN = "run-0-fc55bbdc"


def head_ok(bucket: str, key: str) -> dict:
    return {"ETag": f'"etag-{key}"', "ContentLength": 1024, "VersionId": "v1"}


def earlier_run_record(run_id: str = EARLIER_RUN, *, pipeline: str = PIPELINE, **checkpoints: str) -> bytes:
    """The ``run.json`` of an earlier run whose stages recorded ``checkpoints`` (stage -> URI); by default the
    SFT and RFT checkpoints of the samples."""
    checkpoints = checkpoints or {"sft": SFT_CHECKPOINT, "rft": RFT_CHECKPOINT}
    stages: dict[str, Any] = {
        name: {"status": "SUCCEEDED"} for name in ("baselineEval", "sft", "sftEval", "rft", "finalEval")
    }
    for stage, uri in checkpoints.items():
        stages[stage]["checkpoint"] = uri
    record = {"schemaVersion": 1, "runId": run_id, "pipeline": pipeline, "status": "SUCCEEDED", "stages": stages}
    return json.dumps(record).encode()


def read_earlier_run(bucket: str, key: str) -> bytes:
    """``read_object`` of an artifacts bucket that holds only the earlier run's record."""
    if bucket == ARTIFACTS_BUCKET and key == f"runs/{EARLIER_RUN}/run.json":
        return earlier_run_record()
    raise LookupError(key)


def resume(stage: str, checkpoint: str, run: str | None = EARLIER_RUN) -> dict:
    """A ``resumeFrom`` of the run input (``run`` None: the shape without the earlier run's id)."""
    return {"stage": stage, "checkpoint": checkpoint, **({"run": run} if run is not None else {})}


def resolve(payload: Any, *, head_object: Any = None, read_object: Any = None, policy: RunPolicy | None = None) -> Plan:
    """The plan of run input ``payload`` (by default every dataset exists and the earlier run is recorded), held
    to ``policy``."""
    from lambdas.pipeline.plan import resolve_plan

    resolved, _ = resolve_plan(
        payload,
        execution=Execution.model_validate(EXECUTION),
        pipeline_name=PIPELINE,
        data_bucket=DATA_BUCKET,
        artifacts_bucket=ARTIFACTS_BUCKET,
        graders=GRADERS,
        grader_version=lambda name: "1.0.0",
        head_object=head_object or head_ok,
        read_object=read_object or read_earlier_run,
        policy=policy,
    )
    return resolved


def plan(*, policy: RunPolicy | None = None, **input_changes: Any) -> Plan:
    """A resolved plan (every dataset exists) for ``run_input(**input_changes)``, held to ``policy``."""
    return resolve(run_input(**input_changes), policy=policy)


def stages_after_training(*, rft: bool = True) -> StageRecords:
    """Stage records after SFT (and RFT) succeeded."""
    records: dict[str, Any] = {name: {"status": "PENDING"} for name in ("baselineEval", "sftEval", "finalEval")}
    records["sft"] = {"status": "SUCCEEDED", "checkpoint": SFT_CHECKPOINT}
    records["rft"] = {"status": "SUCCEEDED", "checkpoint": RFT_CHECKPOINT} if rft else {"status": "SKIPPED"}
    return StageRecords.model_validate(records)


def job_request(stage: str = "sft", **changes: Any) -> dict:
    """The request of a prepared job of ``stage`` (as ``$.job.request`` holds it)."""
    prefix = f"s3://{ARTIFACTS_BUCKET}/runs/run-1-0b9d6cbe"
    request = {
        "image": "708977205387.dkr.ecr.us-east-1.amazonaws.com/nova-fine-tune-repo:SM-TJ-SFT-V2-latest",
        "recipeUri": f"{prefix}/recipes/{stage}/",
        "recipeFile": f"{prefix}/recipes/{stage}/recipe.yaml",
        "dataUri": f"{prefix}/inputs/{stage}/{stage}.jsonl",
        "outputPath": f"{prefix}/jobs/{stage}",
        "outputArchive": f"{prefix}/jobs/{stage}/nova-run-1-0b9d6cbe-{stage}-a1/output/output.tar.gz",
        "modelLocation": "nova-2-lite",
        "instanceType": "ml.p5.48xlarge",
        "instanceCount": 4,
        "volumeSizeInGb": 100,
        "maxRuntimeInSeconds": 10800,
        "hyperParameters": {"sagemaker_recipe_local_path": "/opt/ml/input/data/recipe/recipe.yaml"},
    }
    request.update(changes)
    return request


def until_active(client: Any, deployment: Deployment) -> Deployment:
    """Check as the state machine does: wait the poll's seconds, then check, until Active or Failed."""
    current = deployment
    for _ in range(10):
        assert current.poll is not None
        clock.advance(current.poll.waitSeconds)
        current = check_serving(bedrock=client, deployment=current)
        if current.status in {"Active", "Failed"}:
            break
    return current


def crowned(run: str, deployment: Deployment, previous: Champion | None, **fields: Any) -> Champion:
    """The champion record after ``run`` deployed ``deployment``'s model, the previous one leading its history."""
    new = Champion(
        pipeline=PIPELINE,
        runId=run,
        modelArn=deployment.modelArn,
        deploymentArn=deployment.arn,
        deploymentName=deployment.name,
        **fields,
    )
    return crown(new, previous)
