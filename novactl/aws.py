"""The commands that call AWS: start, watch, list, show, compare, approve, reject, rollback, cleanup.

Every command finds the deployed stack's buckets and state machine in its CloudFormation outputs
(``DataBucketName``, ``ArtifactsBucketName``, ``StateMachineArn``) and reads runs from their records,
``runs/<run-id>/run.json`` in the artifacts bucket. Clients are passed in, so the tests run the commands on
moto (or botocore's Stubber for the Bedrock calls moto lacks).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from lambdas.common import layout
from lambdas.notify.message import metrics_lines
from lambdas.pipeline import approval, runview
from lambdas.pipeline.record import champion_record
from lambdas.pipeline.schema import Champion, RunRecord

DEFAULT_STACK = "NovaCustomization"
DECISIONS = approval.DECISIONS


class CommandError(RuntimeError):
    """A command cannot go on; the message says what is missing and where."""


@dataclass(frozen=True)
class StackOutputs:
    data_bucket: str
    artifacts_bucket: str
    state_machine_arn: str


def stack_outputs(cloudformation: Any, stack_name: str) -> StackOutputs:
    """The outputs the commands need, from ``DescribeStacks``."""
    from botocore.exceptions import ClientError

    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        raise CommandError(f"--stack {stack_name}: {error.response['Error'].get('Message', error)}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    wanted = ("DataBucketName", "ArtifactsBucketName", "StateMachineArn")
    missing = [key for key in wanted if key not in outputs]
    if missing:
        raise CommandError(
            f"--stack {stack_name}: the stack has no output {', '.join(missing)} (is it this project's?)"
        )
    return StackOutputs(outputs["DataBucketName"], outputs["ArtifactsBucketName"], outputs["StateMachineArn"])


# -- start and watch ------------------------------------------------------------------------------------


def start(
    run_input: dict[str, Any],
    files: dict[str, Path],
    *,
    stack: StackOutputs,
    s3: Any,
    sfn: Any,
    name: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[str, dict[str, Any]]:
    """Upload ``files`` (key -> local file) to the data bucket, point the input's dataset URIs there, start an
    execution; its ARN and the input it was given."""
    from rehearsal.datasets import in_bucket

    moved = in_bucket(run_input, stack.data_bucket)
    for key, path in files.items():
        if not key.startswith(layout.DATASETS_PREFIX):
            raise CommandError(f"{path}: its URI's key {key!r} must be under {layout.DATASETS_PREFIX}")
        s3.upload_file(str(path), stack.data_bucket, key)
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d-%H%M%S")
    arn: str = sfn.start_execution(
        stateMachineArn=stack.state_machine_arn, name=name or f"run-{stamp}", input=json.dumps(moved)
    )["executionArn"]
    return arn, moved


def _history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token = None
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {}))
        events.extend(page["events"])
        token = page.get("nextToken")
        if not token:
            return events


def watch(
    sfn: Any, arn: str, out: TextIO, *, interval: float = 30.0, sleep: Callable[[float], None] = time.sleep
) -> str:
    """Print the execution's progress as it happens (the rehearsal's progress lines); its final status."""
    from rehearsal.progress import ProgressView

    description = sfn.describe_execution(executionArn=arn)
    view = ProgressView(out, description["startDate"])
    while True:
        view.feed(_history(sfn, arn))
        description = sfn.describe_execution(executionArn=arn)
        if description["status"] != "RUNNING":
            view.feed(_history(sfn, arn))
            status: str = description["status"]
            out.write(f"Execution {description['name']}: {status}\n")
            if description.get("error"):
                out.write(f"  {description['error']}: {(description.get('cause') or '')[:500]}\n")
            return status
        sleep(interval)


# -- run records ----------------------------------------------------------------------------------------


def read_run(s3: Any, bucket: str, run_id: str) -> RunRecord:
    from botocore.exceptions import ClientError

    key = layout.run_record_key(run_id)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        raise CommandError(f"run {run_id}: s3://{bucket}/{key}: {error.response['Error'].get('Code')}") from None
    return RunRecord.model_validate_json(body)


def run_ids(s3: Any, bucket: str) -> list[str]:
    """Every run folder under ``runs/``."""
    found: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=layout.RUNS_PREFIX, Delimiter="/"):
        found.extend(p["Prefix"][len(layout.RUNS_PREFIX) :].rstrip("/") for p in page.get("CommonPrefixes", []))
    return found


def list_runs(s3: Any, bucket: str, limit: int) -> list[RunRecord]:
    """The newest ``limit`` runs that have a record, newest first."""
    records = []
    for run_id in run_ids(s3, bucket):
        try:
            records.append(read_run(s3, bucket, run_id))
        except (CommandError, ValueError):
            continue  # a run still in progress has no record yet
    records.sort(key=lambda r: r.startedAt or "", reverse=True)
    return records[:limit]


def run_line(run: RunRecord) -> str:
    metric = runview.gate_metric(run) or (run.metrics.metric if run.metrics else None)
    value = None
    if run.metrics is not None and metric:
        value = (run.metrics.column(run.metrics.candidate) or {}).get(metric)
    score = f"{metric}={runview.format_value(value)}" if metric and value is not None else "-"
    return (
        f"{run.runId:<40} {run.status:<14} {run.startedAt or '-':<26} {score:<24} {runview.deployment_arn(run) or '-'}"
    )


def show_lines(run: RunRecord) -> list[str]:
    lines = [f"Run {run.runId} ({run.pipeline}): {run.status}"]
    stage, cause = runview.error(run)
    if stage:
        lines.append(f"Failed at {stage}: {cause}")
    for view in runview.stage_views(run):
        lines.append(f"  {view.label:<22} {view.status:<14} {runview.format_duration(view.duration_seconds)}")
    lines.extend(metrics_lines(run))
    passed, reasons = runview.gate(run)
    if passed is not None:
        lines.append(f"Gate: {'passed' if passed else 'rejected'}" + "".join(f"\n  - {r}" for r in reasons))
    if runview.model_arn(run):
        lines.append(f"Model: {runview.model_arn(run)}")
    if runview.deployment_arn(run):
        lines.append(f"Deployment (modelId for Converse): {runview.deployment_arn(run)}")
    if run.report:
        lines.append(f"Report: {run.report}")
    return lines


def compare_lines(runs: Sequence[RunRecord]) -> list[str]:
    """The candidate's metrics of each run side by side (the model each run would deploy)."""
    columns = [(r.metrics.column(r.metrics.candidate) or {}) if r.metrics else {} for r in runs]
    names = sorted({name for column in columns for name in column})
    width = max([len(n) for n in names] + [6])
    header = f"{'metric':<{width}}  " + "  ".join(f"{r.runId[:24]:>24}" for r in runs)
    lines = [header]
    for name in names:
        cells = "  ".join(f"{runview.format_value(c.get(name)):>24}" for c in columns)
        lines.append(f"{name:<{width}}  {cells}")
    if not names:
        lines.append("(no evaluation metrics recorded in these runs)")
    return lines


# -- approvals ------------------------------------------------------------------------------------------


def decide(s3: Any, stack: StackOutputs, run_id: str, decision: str, reason: str) -> str:
    """Write ``approvals/<run-id>.json`` = ``{"decision", "reason"}`` to the data bucket, where its upload
    is applied to the waiting run (:mod:`lambdas.pipeline.approval`); its URI."""
    if decision not in DECISIONS:
        raise CommandError(f"decision {decision!r}: expected one of {', '.join(DECISIONS)}")
    body = json.dumps({"decision": decision, "reason": reason}).encode()
    try:
        approval.parse_decision(body, "--reason")  # what the decision function will accept
    except approval.ApprovalError as error:
        raise CommandError(str(error)) from None
    require_waiting(s3, stack.artifacts_bucket, run_id)
    key = approval.decision_key(run_id)
    s3.put_object(Bucket=stack.data_bucket, Key=key, Body=body, ContentType="application/json")
    return layout.s3_uri(stack.data_bucket, key)


def require_waiting(s3: Any, bucket: str, run_id: str) -> None:
    """A decision names a run that waits for approval: its token is under ``runs/<run-id>/``."""
    key = approval.token_key(run_id)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    if not listed.get("KeyCount"):
        raise CommandError(f"run {run_id}: not waiting for approval (no s3://{bucket}/{key})")


# -- rollback and cleanup -------------------------------------------------------------------------------


def read_champion(s3: Any, bucket: str, pipeline: str) -> Champion:
    from botocore.exceptions import ClientError

    key = layout.champion_key(pipeline)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        raise CommandError(
            f"s3://{bucket}/{key}: {error.response['Error'].get('Code')} (no model deployed yet?)"
        ) from None
    return Champion.model_validate_json(body)


def rollback(s3: Any, bedrock: Any, bucket: str, pipeline: str, to_run: str) -> Champion:
    """Move the champion's deployment to the model run ``to_run`` imported (``UpdateCustomModelDeployment``: the
    deployment ARN, the clients' ``modelId``, stays) and make that run the champion."""
    champion = read_champion(s3, bucket, pipeline)
    if not champion.deploymentArn:
        raise CommandError(f"{layout.champion_key(pipeline)}: the champion has no deployment to move")
    target = read_run(s3, bucket, to_run)
    if target.model is None or target.model.status != "Active":
        raise CommandError(f"run {to_run}: its run.json records no active imported model (model.arn)")
    bedrock.update_custom_model_deployment(
        customModelDeploymentIdentifier=champion.deploymentArn, modelArn=target.model.arn
    )
    moved = champion_record(target, bucket).model_copy(
        update={"deploymentArn": champion.deploymentArn, "deploymentName": champion.deploymentName}
    )
    s3.put_object(
        Bucket=bucket,
        Key=layout.champion_key(pipeline),
        Body=json.dumps(moved.to_json(), indent=2).encode(),
        ContentType="application/json",
    )
    return moved


def cleanup_candidates(s3: Any, bucket: str, pipeline: str, keep: int) -> list[tuple[str, str]]:
    """``(kind, arn)`` of the Bedrock deployments and models of this pipeline's runs that are neither the
    champion's nor among the ``keep`` newest runs with a model."""
    try:
        champion: Champion | None = read_champion(s3, bucket, pipeline)
    except CommandError:
        champion = None
    protected = {champion.modelArn, champion.deploymentArn} if champion else set()
    with_model = [r for r in list_runs(s3, bucket, limit=10_000) if r.pipeline == pipeline and r.model is not None]
    found: list[tuple[str, str]] = []
    for run in with_model[keep:]:
        deployment = runview.deployment_arn(run)
        if deployment and deployment not in protected:
            found.append(("deployment", deployment))
        model = runview.model_arn(run)
        if model and model not in protected:
            found.append(("model", model))
    return found


def cleanup(bedrock: Any, candidates: Sequence[tuple[str, str]]) -> list[str]:
    """Delete the deployments first (a model cannot be deleted while deployed), then the models; what failed."""
    from botocore.exceptions import ClientError

    failures = []
    for kind, arn in sorted(candidates, key=lambda c: c[0] != "deployment"):
        try:
            if kind == "deployment":
                bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=arn)
            else:
                bedrock.delete_custom_model(modelIdentifier=arn)
        except ClientError as error:
            if error.response["Error"].get("Code") != "ResourceNotFoundException":
                failures.append(f"{arn}: {error.response['Error'].get('Message', error)}")
    return failures
