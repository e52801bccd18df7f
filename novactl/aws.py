"""The commands that call AWS: start, watch, list, show, compare, approve, reject, rollback, cleanup.

Every command finds the deployed stack's buckets and state machine in its CloudFormation outputs
(``DataBucketName``, ``ArtifactsBucketName``, ``StateMachineArn``) and reads runs from their records,
``runs/<run-id>/run.json`` in the artifacts bucket. ``rollback`` and ``cleanup`` act on the champion record
``champions/<pipeline>.json`` with the pipeline's own functions (:mod:`lambdas.pipeline.serving`,
:func:`lambdas.pipeline.record.write_champion`); ``cleanup`` takes the pipeline's retention from the
``MODEL_RETENTION`` of the stack's pipeline functions. Clients are passed in, so the tests run the commands on
moto, the rehearsal's Bedrock simulator (the custom-model calls moto lacks) or botocore's Stubber.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from lambdas.common import env_names, layout
from lambdas.common.aws_errors import is_precondition_failed
from lambdas.notify.message import dataset_warnings, metrics_lines
from lambdas.pipeline import approval, record, runview, serving
from lambdas.pipeline.schema import Champion, Deployment, RunRecord, ServedModel

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


def candidate(run: RunRecord) -> str | None:
    """The column of the model the run deploys: the gate's choice (``gate.candidate``), else the metrics'."""
    chosen = run.gate.candidate if run.gate is not None else None
    return chosen or (run.metrics.candidate if run.metrics is not None else None)


def cost_text(run: RunRecord) -> str | None:
    """Expected vs worst-case cost (GPU instance time, or Bedrock's units on the Bedrock road), as preflight
    recorded it."""
    cost = run.preflight.cost if run.preflight is not None else None
    if cost is None:
        return None
    expected = f"${cost.expectedUsd:,.2f}" if cost.expectedUsd is not None else "not estimated"
    return f"expected {expected}, worst case ${cost.estimatedUsd:,.2f} of the ${cost.maxUsd:,.2f} budget"


def deployment_text(run: RunRecord) -> str | None:
    """How the run served its model: created, updated (from which model) or replaced (which deployment)."""
    deployment = run.deployment
    if deployment is None:
        return None
    if deployment.action == "updated":
        return f"updated (the deployment served {deployment.previousModelArn or 'an earlier model'} before)"
    if deployment.action == "replaced":
        return f"replaced (a new deployment; {deployment.replacedDeploymentArn} is deleted)"
    if deployment.action == "adopted":
        return "adopted (the deployment the model's evaluation created became the pipeline's)"
    return "created"


def show_lines(run: RunRecord) -> list[str]:
    lines = [f"Run {run.runId} ({run.pipeline}): {run.status}", f"Road: {runview.road_text(run)}"]
    stage, cause = runview.error(run)
    if stage:
        lines.append(f"Failed at {stage}: {cause}")
    for view in runview.stage_views(run):
        lines.append(f"  {view.label:<22} {view.status:<14} {runview.format_duration(view.duration_seconds)}")
    lines.extend(metrics_lines(run))
    passed, reasons = runview.gate(run)
    if passed is not None:
        lines.append(f"Gate: {'passed' if passed else 'rejected'}" + "".join(f"\n  - {r}" for r in reasons))
    if candidate(run):
        lines.append(f"Candidate: the {str(candidate(run)).upper()} model")
    if cost_text(run):
        road = "Bedrock" if runview.platform(run) == "bedrock" else "GPU"
        lines.append(f"{road} cost: {cost_text(run)}")
    warnings = dataset_warnings(run)
    if warnings:
        lines.append("Dataset warnings:")
        lines.extend(f"  - {w}" for w in warnings)
    if runview.model_arn(run):
        lines.append(f"Model: {runview.model_arn(run)}")
    if runview.deployment_arn(run):
        lines.append(f"Deployment (modelId for Converse): {runview.deployment_arn(run)}, {deployment_text(run)}")
    lines += [f"  {resource.text()}" for resource in runview.bedrock_resources(run)]
    if run.report:
        lines.append(f"Report: {run.report}")
    return lines


def compare_lines(runs: Sequence[RunRecord]) -> list[str]:
    """The candidate's metrics of each run side by side (the model each run would deploy), ``± standard error``
    and the samples they come from, then the candidate, the cost and how the model was served."""
    tables = [runview.metrics_table(r) for r in runs]
    keys = [candidate(r) or "" for r in runs]
    columns = [{name: values.get(key) for name, values in t.rows} for t, key in zip(tables, keys, strict=True)]
    names = sorted({name for column in columns for name, value in column.items() if value is not None})
    rows = [
        [name] + [t.cell(name, key, c.get(name)) for t, key, c in zip(tables, keys, columns, strict=True)]
        for name in names
    ]
    if not names:
        rows.append(["(no evaluation metrics recorded in these runs)"] + [""] * len(runs))
    samples = [str(t.samples().get(key, "-")) for t, key in zip(tables, keys, strict=True)]
    rows.append(["samples (n)", *samples])
    rows.append(["candidate", *[key or "-" for key in keys]])
    rows.append(["expected cost", *[_usd(r, "expectedUsd") for r in runs]])
    rows.append(["worst-case cost", *[_usd(r, "estimatedUsd") for r in runs]])
    rows.append(["deployment", *[r.deployment.action if r.deployment else "-" for r in runs]])
    width = max(len(row[0]) for row in rows)
    header = f"{'metric':<{width}}  " + "  ".join(f"{r.runId[:24]:>24}" for r in runs)
    lines = [header]
    lines.extend(f"{row[0]:<{width}}  " + "  ".join(f"{cell:>24}" for cell in row[1:]) for row in rows)
    if any(sample != "-" for sample in samples):
        lines.append("± the standard error of a mean over the evaluation's samples")
    return lines


def _usd(run: RunRecord, field: str) -> str:
    cost = run.preflight.cost if run.preflight is not None else None
    value = getattr(cost, field, None) if cost is not None else None
    return f"${value:,.2f}" if isinstance(value, int | float) else "-"


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


def pause(seconds: float) -> None:
    """Wait between two checks of a deployment (the tests replace it with the simulated clock)."""
    time.sleep(seconds)


def _champion_uri(bucket: str, pipeline: str) -> str:
    return layout.s3_uri(bucket, layout.champion_key(pipeline))


def read_champion(s3: Any, bucket: str, pipeline: str) -> tuple[Champion, str | None]:
    """The champion record and its ETag; a :class:`CommandError` when the pipeline has deployed nothing yet."""
    champion, etag = record.read_champion(s3, bucket, pipeline)
    if champion is None:
        raise CommandError(
            f"{_champion_uri(bucket, pipeline)}: no champion record (pipeline {pipeline} has no model "
            "deployed yet; is --pipeline the stack's pipelineName?)"
        )
    return champion, etag


def _write_champion(s3: Any, bucket: str, champion: Champion, etag: str | None, done: str) -> None:
    """Write the champion record as "Record run" does: only over the version read (``If-Match``)."""
    try:
        record.write_champion(champion, s3=s3, bucket=bucket, etag=etag)
    except Exception as error:
        if not is_precondition_failed(error):
            raise
        raise CommandError(
            f"{_champion_uri(bucket, champion.pipeline)}: a run replaced the champion record after this command read "
            f"it, so the record was not rewritten; {done}. Check it with novactl show, then run the command again"
        ) from None


def rollback(s3: Any, bedrock: Any, bucket: str, pipeline: str, to_run: str | None = None) -> tuple[Champion, Champion]:
    """Move the champion's deployment back to an earlier model of its history (``serving.rollback``: the
    previous one, or run ``to_run``'s) and write the new champion record; the records before and after."""
    champion, etag = read_champion(s3, bucket, pipeline)
    try:
        rolled = serving.rollback(bedrock=bedrock, champion=champion, to_run=to_run)
    except serving.NothingToRollBackTo as error:
        raise CommandError(f"{_champion_uri(bucket, pipeline)}: {error}") from None
    moved = f"deployment {rolled.deploymentArn} is moving to model {rolled.modelArn} of run {rolled.runId}"
    _write_champion(s3, bucket, rolled, etag, moved)
    return champion, rolled


def wait_for_deployment(
    bedrock: Any, deployment: Deployment, out: TextIO, *, interval: float | None = None
) -> Deployment:
    """Poll ``GetCustomModelDeployment`` as "Check deployment" does (``serving.check_serving``) until the
    deployment serves its model (``Active``), failed, or the polls run out; every ``interval`` seconds, or
    the pipeline's back-off (60 s, doubling, at most 600 s) when None."""
    current = deployment
    while current.status not in ("Active", "Failed") and not (current.poll and current.poll.exhausted):
        pause(interval if interval is not None else (current.poll.waitSeconds if current.poll else 60))
        current = serving.check_serving(bedrock=bedrock, deployment=current)
        out.write(f"  {current.arn}: {current.status}\n")
    return current


@dataclass(frozen=True)
class CleanupPlan:
    """What a cleanup deletes: models of the champion's history beyond the retention (``serving.retirable``)
    and deployments that run records name other than the champion's (replaced or per-run deployments)."""

    champion: Champion
    etag: str | None
    retention: int
    models: list[ServedModel]
    deployments: list[str]

    def lines(self, verb: str) -> list[str]:
        return [f"{verb} deployment {arn}" for arn in self.deployments] + [
            f"{verb} model {m.modelArn} (run {m.runId})" for m in self.models
        ]


def model_retention(cloudformation: Any, lambda_client: Any, stack_name: str, pipeline: str) -> int:
    """The deployed pipeline's ``modelRetention``: ``MODEL_RETENTION`` of the stack's function that runs
    pipeline ``pipeline``."""
    pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name)
    for page in pages:
        for resource in page.get("StackResourceSummaries", []):
            if resource.get("ResourceType") != "AWS::Lambda::Function":
                continue
            variables = (
                lambda_client.get_function_configuration(FunctionName=resource["PhysicalResourceId"])
                .get("Environment", {})
                .get("Variables", {})
            )
            if variables.get(env_names.PIPELINE_NAME) == pipeline and env_names.MODEL_RETENTION in variables:
                return int(variables[env_names.MODEL_RETENTION])
    raise CommandError(
        f"--stack {stack_name}: no function of pipeline {pipeline} has {env_names.MODEL_RETENTION} (a stack deployed "
        "before modelRetention existed?); give --keep N"
    )


def cleanup_plan(s3: Any, bedrock: Any, bucket: str, pipeline: str, retention: int) -> CleanupPlan:
    """The models ``serving.retire`` would delete at this retention, and the deployments of this pipeline's
    runs that still exist and are not the champion's (its deployment and model are never deleted), with the Bedrock
    road's provisional deployments that the run record could not delete."""
    champion, etag = read_champion(s3, bucket, pipeline)
    deployments: list[str] = []
    for run in list_runs(s3, bucket, limit=10_000):
        if run.pipeline != pipeline:
            continue
        named = [run.deployment.arn, run.deployment.replacedDeploymentArn] if run.deployment is not None else []
        # The Bedrock road: provisional deployments "Record run" could not delete.
        named += [left.arn for left in run.provisionalDeployments if left.outcome == "not deleted"]
        for arn in named:
            if arn and arn != champion.deploymentArn and arn not in deployments:
                deployments.append(arn)
    deployments = [arn for arn in deployments if serving.existing_deployment(bedrock, arn) is not None]
    return CleanupPlan(champion, etag, retention, serving.retirable(champion, retention), deployments)


def cleanup(s3: Any, bedrock: Any, bucket: str, plan: CleanupPlan) -> list[str]:
    """Delete what ``plan`` lists with ``serving.retire`` (deployments first; a model already gone counts as
    deleted) and write the champion record with the deleted models marked; what failed."""
    retired, problems = serving.retire(
        bedrock=bedrock, champion=plan.champion, retention=plan.retention, replaced_deployments=plan.deployments
    )
    if retired != plan.champion:
        deleted = ", ".join(str(s.modelArn) for s in retired.history if s.deleted and s not in plan.champion.history)
        try:
            _write_champion(s3, bucket, retired, plan.etag, f"models deleted: {deleted}")
        except CommandError as error:
            problems.append(str(error))
    return problems
