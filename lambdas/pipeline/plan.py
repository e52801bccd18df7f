"""Plan resolution: a valid run input becomes the run plan and the initial stage records.

"Validate run" calls :func:`resolve_plan`: every problem of the input
(:mod:`lambdas.pipeline.validation`, a ``resumeFrom.checkpoint`` checked against the account of the
execution's ARN), then whether each dataset exists, is readable and is not empty, and whether the
earlier run named by ``resumeFrom.run`` recorded the checkpoint (its ``runs/<run>/run.json``, one read),
raised together as one :class:`RunInputError`. The plan (:class:`Plan`)
names the run, the base model, the enabled stages (``plan.enabled``), the datasets with the
version that was seen and the copy the jobs will read, the grader, the job settings of
each method, the gate and the budget.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

from lambdas.common import layout
from lambdas.pipeline import naming
from lambdas.pipeline.catalog import MODELS
from lambdas.pipeline.outputs import metric_name
from lambdas.pipeline.policy import RunPolicy, effective_budget
from lambdas.pipeline.s3uri import parse_s3_uri
from lambdas.pipeline.schema import (
    BedrockPlan,
    DatasetRef,
    Enabled,
    EvaluationPlan,
    Execution,
    GateSettings,
    GraderRef,
    ModelRef,
    Plan,
    PlanBudget,
    PlanDatasets,
    PlanJobs,
    PlanResume,
    ResumeFrom,
    RunInput,
    StageRecord,
    StageRecords,
)
from lambdas.pipeline.validation import RunInputError, parse_input

MAX_JOB_ATTEMPTS = 4

# ``head_object(bucket, key)``: the object's metadata (``ETag``, ``ContentLength``, ``VersionId``),
# or ``LookupError`` (missing) / ``PermissionError`` (unreadable).
HeadObject = Callable[[str, str], Mapping[str, Any]]
# ``read_object(bucket, key)``: the object's bytes, or ``LookupError`` / ``PermissionError`` as above.
ReadObject = Callable[[str, str], bytes]
# A run record larger than this is not read (run.json files are a few hundred kilobytes at most).
MAX_RUN_RECORD_BYTES = 8 << 20
RESUMABLE_STAGES = ("sft", "rft")

# Platform bedrock (docs/contracts/bedrock-customization.md). What Converse takes for each base model: Nova 2
# Lite has no in-Region on-demand throughput and is invoked through its US inference profile; the Nova 1 models
# by their model ID. CreateModelCustomizationJob takes the catalog's model ID (``amazon.nova-2-lite-v1:0:256k``).
BEDROCK_INFERENCE_IDS = {
    "nova-2-lite": "us.amazon.nova-2-lite-v1:0",
    "nova-lite": "amazon.nova-lite-v1:0",
    "nova-micro": "amazon.nova-micro-v1:0",
    "nova-pro": "amazon.nova-pro-v1:0",
}
# Bedrock's RFT documentation names the base model (Nova 2 Lite) as what an RFT job customizes; it documents no
# RFT job starting from a fine-tuned custom model, so RFT starts from the base model.
BEDROCK_RFT_STARTS_FROM: Literal["sft", "base"] = "base"
RFT_FROM_BASE_NOTE = (
    "RFT on Bedrock starts from the base model, not from the SFT model: Bedrock's reinforcement fine-tuning "
    "customizes the base model (Nova 2 Lite). The SFT model is still trained, evaluated and can be chosen by the gate."
)


def resolve_plan(
    payload: object,
    *,
    execution: Execution,
    pipeline_name: str,
    data_bucket: str,
    artifacts_bucket: str,
    graders: Mapping[str, str],
    grader_version: Callable[[str], str | None],
    head_object: HeadObject,
    read_object: ReadObject,
    policy: RunPolicy | None = None,
) -> tuple[Plan, StageRecords]:
    """Validate ``payload`` completely (against the deployment's run ``policy``) and resolve the run plan and
    the initial stage records."""
    if not isinstance(payload, dict):
        raise RunInputError([f"(input): a run input is a JSON object, got {type(payload).__name__}"])
    account = naming.account_of_arn(execution.id)
    run, problems, resolved = parse_input(
        payload, data_bucket=data_bucket, graders=graders, account=account, policy=policy
    )
    if run is None or resolved is None:
        raise RunInputError(problems)
    # Only a resumeFrom with no problem yet is checked further (one refused outright, e.g. on platform bedrock,
    # is not also asked about its escrow bucket).
    if run.resumeFrom is not None and not any(p.startswith("resumeFrom") for p in problems):
        if account is None:
            problems.append(
                f"resumeFrom.checkpoint: the execution ARN {execution.id!r} names no account, so the checkpoint's "
                "escrow bucket cannot be checked"
            )
        else:
            problems.extend(
                _resume_problems(
                    run.resumeFrom,
                    pipeline_name=pipeline_name,
                    artifacts_bucket=artifacts_bucket,
                    read_object=read_object,
                )
            )

    seen: dict[str, DatasetRef] = {}
    for name in ("sft", "rft", "eval"):
        uri = getattr(run.datasets, name)
        if uri is None or any(p.startswith(f"datasets.{name}:") for p in problems):
            continue
        bucket, key = parse_s3_uri(uri)
        try:
            head = head_object(bucket, key)
        except LookupError as missing:
            # Where it was looked for, when that is not the key itself (a local folder standing in for S3).
            where = str(missing).strip("'")
            problems.append(
                f"datasets.{name}: {uri} does not exist" + (f" ({where})" if where not in ("", key) else "")
            )
            continue
        except PermissionError:
            problems.append(f"datasets.{name}: {uri} is not readable by the pipeline")
            continue
        size = int(head.get("ContentLength", 0))
        version = head.get("VersionId")
        seen[name] = DatasetRef(
            uri=uri,
            etag=str(head.get("ETag", "")).strip('"'),
            sizeBytes=size,
            versionId=None if version is None else str(version),
        )
        if size == 0:
            problems.append(f"datasets.{name}: {uri} is empty")
    if problems:
        raise RunInputError(problems)

    run_id = naming.run_id_from_execution(execution.name, execution.id)
    enabled = resolved.enabled
    model = MODELS[run.model]
    eval_file = "gen_qa.jsonl" if run.evaluation.task == "gen_qa" else "rft_eval.jsonl"
    staged = {"eval": layout.s3_uri(artifacts_bucket, layout.staged_eval_key(run_id, eval_file))}
    # Training reads the version pre-flight validated, copied under the run (a folder of its own: a channel
    # is a key prefix, so pointing it at datasets/rft.jsonl would also pull datasets/rft.jsonl.bak).
    for name in ("sft", "rft"):
        if enabled.runs(name) and name in seen:
            staged[name] = layout.s3_uri(artifacts_bucket, layout.staged_dataset_key(run_id, name, f"{name}.jsonl"))
    datasets = {name: ref.model_copy(update={"stagedUri": staged.get(name)}) for name, ref in seen.items()}
    grader = None
    if resolved.needs_grader:
        grader = GraderRef(name=run.grader, arn=graders[run.grader], version=grader_version(run.grader))
    resume = None
    if run.resumeFrom is not None:
        resume = PlanResume(stage=run.resumeFrom.stage, checkpoint=run.resumeFrom.checkpoint, run=run.resumeFrom.run)
    jobs = {method: settings for method, settings in resolved.jobs.items() if settings is not None}
    bedrock, notes = _bedrock_plan(run, model.model_type, enabled)
    plan = Plan(
        runId=run_id,
        pipelineName=pipeline_name,
        platform=run.platform,
        bedrock=bedrock,
        notes=notes,
        executionArn=execution.id,
        startedAt=execution.startTime,
        description=run.description,
        model=ModelRef(key=model.key, modelType=model.model_type, modelNameOrPath=model.model_name_or_path),
        enabled=enabled,
        resumeFrom=resume,
        datasets=PlanDatasets.model_validate(datasets),
        grader=grader,
        evaluation=EvaluationPlan(task=run.evaluation.task),
        jobs=PlanJobs.model_validate(jobs),
        gate=GateSettings(
            metric=_plan_metric(run),
            minScore=run.gate.minScore,
            minGainOverBaseline=run.gate.minGainOverBaseline,
            mustBeatDeployed=run.gate.mustBeatDeployed,
        ),
        budget=PlanBudget(maxUsd=run.budget.maxUsd if policy is None else effective_budget(run, policy)),
        maxJobAttempts=MAX_JOB_ATTEMPTS,
        artifactsBucket=artifacts_bucket,
        runPrefix=layout.s3_uri(artifacts_bucket, layout.run_prefix(run_id)),
        dryRun=run.dryRun,
    )
    return plan, initial_stage_records(enabled, resume)


def _bedrock_plan(run: RunInput, model_id: str, enabled: Enabled) -> tuple[BedrockPlan | None, list[str]]:
    """The Bedrock part of a plan on platform bedrock (None on sagemaker), and the notes it brings."""
    if run.platform != "bedrock":
        return None, []
    bedrock = BedrockPlan(
        baseModelIdentifier=model_id,
        inferenceModelId=BEDROCK_INFERENCE_IDS[run.model],
        rftStartsFrom=BEDROCK_RFT_STARTS_FROM,
    )
    notes = [RFT_FROM_BASE_NOTE] if enabled.rft and enabled.sft and bedrock.rftStartsFrom == "base" else []
    return bedrock, notes


def _resume_problems(
    resume: ResumeFrom, *, pipeline_name: str, artifacts_bucket: str, read_object: ReadObject
) -> list[str]:
    """Whether ``runs/<resume.run>/run.json`` of this pipeline records ``resume.checkpoint`` as a stage checkpoint."""
    run_id = str(resume.run)
    key = layout.run_record_key(run_id)
    where = layout.s3_uri(artifacts_bucket, key)
    try:
        body = read_object(artifacts_bucket, key)
    except LookupError:
        return [f"resumeFrom.run: no run {run_id!r} in this pipeline's artifacts bucket ({where} does not exist)"]
    except PermissionError:
        return [f"resumeFrom.run: {where} is not readable by the pipeline"]
    if len(body) > MAX_RUN_RECORD_BYTES:
        return [f"resumeFrom.run: {where} is larger than {MAX_RUN_RECORD_BYTES} bytes; it is not a run record"]
    try:
        record = json.loads(body)
    except ValueError as error:
        return [f"resumeFrom.run: {where} is not valid JSON ({error})"]
    if not isinstance(record, dict):
        return [f"resumeFrom.run: {where} is not a run record"]
    if record.get("pipeline") != pipeline_name:
        return [
            f"resumeFrom.run: run {run_id!r} was recorded by pipeline {record.get('pipeline')!r}, "
            f"not by this pipeline ({pipeline_name!r})"
        ]
    stages = record.get("stages")
    if not isinstance(stages, dict):
        stages = {}
    recorded: dict[str, str] = {}
    for stage in RESUMABLE_STAGES:
        entry = stages.get(stage)
        checkpoint = entry.get("checkpoint") if isinstance(entry, dict) else None
        if isinstance(checkpoint, str) and checkpoint:
            recorded[stage] = checkpoint
    if any(c.rstrip("/") == resume.checkpoint.rstrip("/") for c in recorded.values()):
        return []
    found = ", ".join(f"stages.{stage}.checkpoint = {c}" for stage, c in recorded.items()) or "no stage checkpoint"
    return [
        f"resumeFrom.checkpoint: {resume.checkpoint} is not a stage checkpoint of run {run_id!r} "
        f"({where} records {found})"
    ]


def _plan_metric(run: RunInput) -> str:
    """The metric name the gate looks up: gen_qa names normalized as the results are (``rougeL`` -> ``rougel``)."""
    return metric_name(run.gate.metric) if run.evaluation.task == "gen_qa" else run.gate.metric


def initial_stage_records(enabled: Enabled, resume: PlanResume | None) -> StageRecords:
    """``PENDING`` for stages that will run, ``SKIPPED`` for the others; a resumed checkpoint is kept."""
    records = {stage: StageRecord(status="PENDING" if enabled.runs(stage) else "SKIPPED") for stage in naming.STAGES}
    if resume is not None:
        holder = "sft" if resume.stage == "rft" else "rft"
        records[holder] = StageRecord(status="SKIPPED", checkpoint=resume.checkpoint, resumed=True)
    return StageRecords.model_validate(records)
